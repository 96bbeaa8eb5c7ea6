"""Comparing law forms: PSIS-LOO, leave-future-out, stacking and model averaging.

Ordinary leave-one-out rewards interpolation. What matters for a scaling law is
extrapolation, so :func:`compare` can also refit every law on the runs below a
compute (or size) cutoff and score the log predictive density of the runs above
it: the *leave-future-out* (LFO) score.

Scores are on the scale the likelihood lives on: ``log y`` for laws with a log
link (all loss laws), ``y`` for identity links. Comparing a log-link law with an
identity-link law would mix scales, so :func:`compare` refuses it.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .data import as_rows, is_count, is_real_number
from .errors import BayescaleError, DataError
from .errors import warn as _user_warn
from .likelihoods import get_likelihood
from .model import param_draws, run_offsets
from .sampling import check_seed

#: Pareto-k above this marks a PSIS-LOO estimate as unreliable (Vehtari et al. 2017/2024).
PARETO_K_BAD = 0.7


# ----------------------------------------------------------------------------------------
# scoring helpers


def named_fits(fits: Mapping[str, Any] | Sequence[Any], what: str, *, at_least: int = 1
               ) -> dict[str, Any]:
    """``fits`` as ``{name: Fit}``: a dict as given, a list named by each fit's law.

    A clear error when there are too few fits, when a value is not a fitted model
    (``bs.fit``'s result), or when two fits of a list share a law (name them in a dict).

    Examples
    --------
    >>> named_fits({"a": "chinchilla"}, "compare")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescale.errors.BayescaleError: compare takes fits (the results of bs.fit) ... 'a' is a str.
    """
    count = "at least two fits" if at_least > 1 else "fits"
    usage = (f"{what} needs {count}: a dict {{name: Fit, ...}} or a list of fits of "
             "different laws")
    if isinstance(fits, Mapping):
        named = dict(fits)
    elif isinstance(fits, Sequence) and not isinstance(fits, str):
        named = {}
        for i, value in enumerate(fits):
            name = getattr(getattr(value, "law", None), "name", f"fit {i}")
            if name in named:
                raise BayescaleError(
                    f"{usage}: two fits of the list are of law {name!r}. Name them in a "
                    f"dict, e.g. {{'{name}_a': fit_a, '{name}_b': fit_b}}."
                )
            named[name] = value
    else:
        raise BayescaleError(f"{usage}; got a {type(fits).__name__}.")
    if len(named) < at_least:
        raise BayescaleError(f"{usage}; got {len(named)}.")
    for name, value in named.items():
        if not (hasattr(value, "law") and hasattr(value, "idata")):
            raise BayescaleError(
                f"{what} takes fits (the results of bs.fit) as the dict's values; {name!r} is "
                f"a {type(value).__name__}."
            )
    return named


def crps_ensemble(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Continuous ranked probability score of predictive draws (energy form).

    ``CRPS(F, y) = E|X - y| - 0.5 E|X - X'|`` estimated from the draws of each
    column (lower is better; same units as ``y``). The pairwise term uses the
    sorted-sample identity, so the cost is ``O(S log S)`` per point.

    Parameters
    ----------
    draws : array (samples, rows) or (samples,)
    y : array (rows,) or scalar

    Examples
    --------
    For a standard normal and ``y = 0`` the exact value is ``(sqrt(2) - 1) / sqrt(pi)``:

    >>> x = np.random.default_rng(0).standard_normal(200_000)
    >>> round(float(crps_ensemble(x, 0.0)), 3), round(float((np.sqrt(2) - 1) / np.sqrt(np.pi)), 3)
    (0.234, 0.234)
    """
    x = np.asarray(draws, dtype=float)
    squeeze = x.ndim == 1
    if squeeze:
        x = x[:, None]
    yy = np.broadcast_to(np.asarray(y, dtype=float), (x.shape[1],))
    s = x.shape[0]
    term1 = np.mean(np.abs(x - yy[None, :]), axis=0)
    xs = np.sort(x, axis=0)
    i = np.arange(1, s + 1)[:, None]
    # E|X - X'| = 2 / S^2 * sum_i (2i - S - 1) x_(i)
    term2 = 2.0 / s**2 * np.sum((2 * i - s - 1) * xs, axis=0)
    out = term1 - 0.5 * term2
    return out[0] if squeeze else out


def _logmeanexp(a: np.ndarray, axis: int = 0) -> np.ndarray:
    m = np.max(a, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    return np.squeeze(m, axis=axis) + np.log(np.mean(np.exp(a - m), axis=axis))


def _validated(fit, data: pd.DataFrame) -> pd.DataFrame:
    """Validate ``data`` (original column names, with the response) for ``fit``."""
    from .fit import validate_observed

    spec = fit.spec
    groups = [g for g in spec.group_columns if g in data.columns]
    run = spec.run if spec.run and spec.run in data.columns else None
    lik = get_likelihood(spec.likelihood)
    # counts given as correct/trials: the fit's response (accuracy) is made from them
    y = None if lik.needs_trials and spec.y not in data.columns else spec.y
    frame, _, _ = validate_observed(data, fit.law, lik, y=y, x=spec.x, trials=spec.trials,
                                    groups=groups, run=run, optional_trials=True)
    return frame


def pointwise_log_density(fit, data: pd.DataFrame, *, random_seed: int | None = None,
                          extrapolation: bool | str = False) -> np.ndarray:
    """Log density of each row's response per posterior draw, shape ``(samples, rows)``.

    ``data`` has the columns the fit was given (original names, response included).
    The density is on the likelihood's scale (``log y`` for log-link laws).
    ``extrapolation`` as in :meth:`Fit.draws` (default off: the law's own density, what
    leave-future-out compares): on, each draw's law is moved by one draw of the calibrated
    drift at rows beyond the fitted range, so the mean over draws is the density of the
    forecast whose intervals :meth:`Fit.predict` gives.
    """
    frame = _validated(fit, data)
    spec = fit.spec
    lik = get_likelihood(spec.likelihood)
    if lik.logpdf is None:
        raise BayescaleError(
            f"Likelihood {spec.likelihood!r} has no numpy log density (logpdf); "
            "leave-future-out scores and backtests need one."
        )
    rng = fit._rng(random_seed)
    params = param_draws(spec, fit.posterior, frame, rng=rng)
    args = [frame[i].to_numpy(dtype=float)[None, :] for i in fit.law.inputs]
    mu = np.asarray(fit.law(*args, **params), dtype=float)
    s = max(p.shape[0] for p in params.values())
    mu = np.broadcast_to(mu, (s, len(frame)))
    if fit._use_extrapolation(extrapolation):  # the law moved as Fit.draws moves a draw
        from .calibration import add_drift

        mu = add_drift(fit, frame, mu, rng)
    y = frame["y"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if fit.law.link == "log":
            eta, yt = np.log(mu), np.log(y)
        else:
            eta, yt = mu, y
    off = run_offsets(spec, fit.posterior, frame, rng)
    if off is not None:
        eta = eta + off
    # the fit's training rows too: an "ar1" row conditions on the last fitted one, as draws do
    lp = lik.logpdf(yt[None, :], eta, fit._noise(), fit._lik_data(frame))
    lp = np.asarray(lp, dtype=float)
    return np.where(np.isfinite(lp), lp, -np.inf)


def log_predictive_density(
    fit, data: pd.DataFrame, *, random_seed: int | None = None,
    extrapolation: bool | str = False,
) -> np.ndarray:
    """Log posterior predictive density of each row: ``log mean_s p(y_i | theta_s)``.

    ``extrapolation`` as in :func:`pointwise_log_density` (the backtest scores its
    forecasts with the calibrated drift; leave-future-out compares the laws without it).

    Examples
    --------
    >>> lpd = log_predictive_density(f, held_out)  # doctest: +SKIP
    """
    return _logmeanexp(pointwise_log_density(fit, data, random_seed=random_seed,
                                             extrapolation=extrapolation), axis=0)


def stacking_weights(lpd: np.ndarray) -> np.ndarray:
    """Stacking weights from pointwise log predictive densities ``(rows, models)``.

    Maximises ``sum_i log sum_k w_k exp(lpd_ik)`` over the simplex (Yao et al. 2018).

    Examples
    --------
    >>> lpd = np.log(np.array([[0.9, 0.1], [0.8, 0.3], [0.7, 0.2]]))
    >>> stacking_weights(lpd).round(2).tolist()
    [1.0, 0.0]
    """
    from scipy.optimize import Bounds, LinearConstraint, minimize

    lpd = np.asarray(lpd, dtype=float)
    n, k = lpd.shape
    if k == 1:
        return np.ones(1)
    m = np.max(lpd, axis=1, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    dens = np.exp(lpd - m)  # each row scaled: the same maximiser

    def negll(w: np.ndarray) -> float:
        return -float(np.sum(np.log(dens @ w + 1e-300)))

    def grad(w: np.ndarray) -> np.ndarray:
        return -np.sum(dens / (dens @ w + 1e-300)[:, None], axis=0)

    # on the simplex itself, as ArviZ's stacking: softmax logits lost their gradient where a
    # weight neared 1, and BFGS stopped at that corner when the optimum was beside it
    res = minimize(negll, np.full(k, 1.0 / k), jac=grad, method="SLSQP",
                   bounds=Bounds(np.zeros(k), np.ones(k)),
                   constraints=LinearConstraint(np.ones((1, k)), 1.0, 1.0))
    w = np.clip(res.x, 0.0, None)
    w[w < 1e-6] = 0.0
    return w / w.sum()


# ----------------------------------------------------------------------------------------
# refits


def refit_kwargs(fit, **overrides: Any) -> dict[str, Any]:
    """Keyword arguments that refit ``fit``'s law with the same priors and sampler settings.

    The one source of :meth:`Fit.refit`'s settings too (calibration, leave-future-out).
    The refit keeps ``fit``'s levels of its run and group columns (``levels=``): a run
    held out whole keeps its place, with the population's offset as a new run would have,
    so the refit reuses ``fit``'s compiled model.
    """
    spec = fit.spec
    kw: dict[str, Any] = dict(
        y=spec.y,
        x=dict(spec.x),
        priors=dict(spec.priors),
        pooled={k: list(v) for k, v in spec.pooled.items()} or None,
        run=spec.run,
        likelihood=spec.likelihood,
        group_scale=dict(spec.group_scale) or None,
        correlated=spec.correlated,
        levels=dict(spec.levels) or None,
    )
    if spec.trials:
        kw["trials"] = spec.trials
    for k in ("sampler", "draws", "tune", "chains", "random_seed", "target_accept"):
        if k in fit.settings:
            kw[k] = fit.settings[k]
    if kw.get("sampler") == "jax-batch":  # a fit of bs.fit_batch: refitted alone, same path
        kw["sampler"] = "jax"
    kw.update(fit.settings.get("sampler_kwargs", {}))  # max_tree_depth, nutpie's options
    kw.update(overrides)
    # another grouping: the fit's levels, group scales and run prior are of its own grouping
    if "pooled" in overrides and "levels" not in overrides and kw["levels"]:
        kw["levels"] = {c: v for c, v in kw["levels"].items() if c == kw.get("run")} or None
    if "pooled" in overrides and "group_scale" not in overrides:
        kw["group_scale"] = None
    if "run" in overrides and overrides["run"] != spec.run:
        if "levels" not in overrides and kw["levels"]:
            kept = {c: v for c, v in kw["levels"].items() if c != spec.run}
            kw["levels"] = kept or None
        if not overrides["run"]:
            kw["priors"] = {k: v for k, v in kw["priors"].items() if k != "sigma_run"}
    new_lik = overrides.get("likelihood", spec.likelihood)
    if new_lik != spec.likelihood and new_lik not in (None, "auto") and "priors" not in overrides:
        # another likelihood: the old one's noise priors (nu of a Student-t, corr_length of
        # ar1) are not the new one's; refused as unknown priors, or kept as if given
        old_noise = set(get_likelihood(spec.likelihood).priors)
        keep = set(get_likelihood(new_lik).priors) | set(spec.law.params)
        kw["priors"] = {k: v for k, v in kw["priors"].items()
                        if k not in old_noise or k in keep}
    return kw


def scale_column(data: pd.DataFrame, by: str) -> np.ndarray:
    """Return column ``by`` of ``data``; ``"C"`` falls back to ``6 N D`` when absent.

    Its values must be finite numbers (a NaN said "cutoff must be a number, got nan" with
    no cutoff given; text raised NumPy's own error).
    """
    from .data import _check_finite, _numeric, compute_6nd

    if not isinstance(by, str):
        raise BayescaleError(
            f"by= names one column (or law input) to split the rows by, e.g. by='C'; "
            f"got {by!r}."
        )
    role = "the column the split is by"
    if by in data.columns:
        s = _numeric(data, by, role)
        _check_finite(data, s, by, role)
        return s.to_numpy(dtype=float)
    if by == "C" and {"N", "D"} <= set(data.columns):
        return compute_6nd(data, "N", "D", f"for C = 6*N*D, {role}").to_numpy(dtype=float)
    raise DataError(
        f"Cutoff column {by!r} is missing (columns: {list(data.columns)}); pass by= one of "
        "them (C is computed as 6*N*D when N and D are present)."
    )


def split_future(
    data: pd.DataFrame, *, by: str = "C", cutoff: float | None = None,
    quantile: float | None = None, falling: bool = False,
) -> np.ndarray:
    """Boolean mask of the 'future' rows: ``by > cutoff`` (or above a quantile of ``by``).

    ``falling=True`` for a column that falls as models grow (a loss, the input of
    ``sigmoid_of_loss``): the future is ``by < cutoff``, and ``quantile=0.8`` holds out
    the lowest fifth.

    Examples
    --------
    >>> df = pd.DataFrame({"L": [4.0, 3.5, 3.0, 2.5, 2.0]})
    >>> split_future(df, by="L", quantile=0.8, falling=True).tolist()
    [False, False, False, False, True]
    """
    s = scale_column(data, by)
    if (cutoff is None) == (quantile is None):
        raise BayescaleError("Give exactly one of cutoff= (a value of by) or quantile= (0-1).")
    if quantile is not None:
        if not is_real_number(quantile) or not 0 < quantile < 1:
            raise BayescaleError(f"quantile must be between 0 and 1, got {quantile!r}.")
        cutoff = float(np.quantile(s, 1.0 - quantile if falling else quantile))
    if not is_real_number(cutoff) or not np.isfinite(float(cutoff)):
        raise BayescaleError(f"cutoff must be a number (a value of {by}), got {cutoff!r}.")
    mask = s < float(cutoff) if falling else s > float(cutoff)
    if mask.all() or not mask.any():
        raise DataError(
            f"Cutoff {by} {'<' if falling else '>'} {float(cutoff):.4g} leaves "
            f"{int((~mask).sum())} training and {int(mask.sum())} held-out rows; choose a "
            f"cutoff inside the data range [{np.min(s):.4g}, {np.max(s):.4g}]."
        )
    return mask


def falls(laws: Sequence[tuple[Any, Mapping[str, Any] | None]], by: str,
          what: str = "Leave-future-out") -> bool:
    """Whether split column ``by`` is a falling input (its name or its column) of the laws.

    ``laws``: ``(law, x)`` pairs, ``x`` each fit's column mapping. The laws that read ``by``
    (an input, or the column an input is mapped to) must agree: a column that falls for one
    law and rises for another has no one future. A law that does not read it has no say.

    Examples
    --------
    >>> import bayescale as bs
    >>> falls([(bs.get_law("sigmoid_of_loss"), None)], "L")
    True
    >>> falls([(bs.get_law("chinchilla"), None)], "N")
    False
    """
    def reads(law: Any, x: Mapping[str, Any] | None, inputs: Sequence[str]) -> bool:
        return any(by in (i, (x or {}).get(i, i)) for i in inputs)

    down = {reads(law, x, law.falling_inputs) for law, x in laws if reads(law, x, law.inputs)}
    if len(down) > 1:
        raise BayescaleError(
            f"{what} by={by!r}: the column falls as models grow for some laws (a loss input) "
            "and rises for others, so 'the future' differs; use laws that share the "
            "direction, or split by another column."
        )
    return bool(down) and down.pop()


def _scale_column(fit: Any) -> str:
    """User column that measures scale for leave-future-out splits of ``fit``'s data."""
    inputs = [i for i in fit.law.inputs if fit.law.is_positive(i)] or list(fit.law.inputs)
    if _has_compute(fit.law):
        return fit.spec.x.get("C", "C")
    return fit.spec.x.get(inputs[0], inputs[0])


def _resolves(fit: Any, by: str) -> bool:
    """Whether :func:`_by_frame` finds the split column ``by`` for ``fit``."""
    if by in fit.user_frame().columns or by in fit.data.columns:
        return True
    return by == "C" and _has_compute(fit.law)


def _has_compute(law: Any) -> bool:
    """Whether the law's scale is compute: its input ``C``, or ``6 N D`` from ``N`` and ``D``."""
    return "C" in law.inputs or {"N", "D"} <= set(law.inputs)


def default_lfo(fits: Any, lfo: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Leave-future-out split options with the defaults filled in.

    ``fits``: one fit or ``{name: fit}``. ``by`` defaults to the scale of the fits (``C``
    for laws of ``N`` and ``D``, else the single input's column): the first fit's that every
    fit has (a law of ``N`` alone has no compute, so beside ``chinchilla`` the split is by
    ``N``), whatever their order. Without a ``cutoff``, ``quantile`` defaults to 0.8: the
    largest fifth of the training rows is forecast from the rest.

    Examples
    --------
    >>> default_lfo(fit)  # doctest: +SKIP
    {'by': 'C', 'quantile': 0.8}
    """
    members = list(fits.values()) if isinstance(fits, Mapping) else [fits]
    opts = _lfo_options(lfo or {})
    if "by" not in opts:
        candidates = [_scale_column(f) for f in members]
        shared = [c for c in candidates if all(_resolves(f, c) for f in members)]
        if not shared:
            raise BayescaleError(
                f"No column measures scale for every fit (their scales: {candidates}); "
                "pass lfo=dict(by=<a column every fit was given>)."
            )
        opts["by"] = shared[0]
    if "cutoff" not in opts:
        opts.setdefault("quantile", 0.8)
    return opts


def _lfo_options(lfo: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(lfo, Mapping):
        raise BayescaleError(
            f"lfo= takes a dict of split options, e.g. lfo=dict(quantile=0.8, by='C') or "
            f"lfo=dict(cutoff=1e21, by='C'); got {lfo!r}."
        )
    allowed = {"cutoff", "quantile", "by", "draws", "tune", "chains", "sampler", "random_seed"}
    bad = set(lfo) - allowed
    if bad:
        raise BayescaleError(f"Unknown lfo= option(s) {sorted(bad)}; allowed: {sorted(allowed)}.")
    return dict(lfo)


def runs_seen_note(train: pd.DataFrame, future: pd.DataFrame, run: str | None) -> str | None:
    """Why a leave-future-out split may not score forecasts of new runs, or ``None``.

    When every run with rows above the cutoff (``future``) also has rows below it
    (``train``), the refits forecast later rows of runs they have seen (more tokens, later
    checkpoints), not new runs (larger models): on a ladder of a few models' checkpoints
    such weights were unstable (docs/calibration.md, "Structural uncertainty").

    Examples
    --------
    >>> df = pd.DataFrame({"model": ["a", "a", "b", "b"], "C": [1.0, 4.0, 2.0, 8.0]})
    >>> runs_seen_note(df.iloc[[0, 2]], df.iloc[[1, 3]], "model") is not None
    True
    >>> runs_seen_note(df.iloc[:2], df.iloc[2:], "model") is None
    True
    """
    if run is None or run not in future.columns or future.empty:
        return None
    held = pd.unique(future[run])
    if not set(held) <= set(train[run]):
        return None
    shown = ", ".join(repr(r) for r in held[:3]) + (", ..." if len(held) > 3 else "")
    return (
        f"leave-future-out: every run with rows above the cutoff ({shown}) also has rows "
        "below it, so the refits forecast later rows of runs they have seen, not new runs "
        "(larger models); on a ladder of a few runs such weights can be unstable. To score "
        "forecasts of new runs, cut by a column that is constant within each run: "
        "lfo=dict(by='N', cutoff=<a model size>) holds out the larger models whole."
    )


def leave_future_out(
    fits: Mapping[str, Any],
    *,
    cutoff: float | None = None,
    quantile: float | None = None,
    by: str = "C",
    executor: Executor | str | None = None,
    warn: bool = True,
    **overrides: Any,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Refit each law below the cutoff and score the rows above it.

    Returns a table (``lfo_elpd``, ``lfo_se``, ``lfo_n``, ``lfo_weight``, ``lfo_note``)
    indexed by name and a dict with the pointwise densities (``"pointwise"``: rows x
    laws) and the refits. A law with fewer rows below the cutoff than free parameters
    cannot be refitted: it is left out (NaN scores, weight 0, the reason in ``lfo_note``);
    if no law can be refitted, a :class:`BayescaleError` says so.
    """
    from .parallel import run_fits
    from .sampling import warn_problems

    names = list(fits)
    falling = falls([(fits[n].law, fits[n].spec.x) for n in names], by)
    tasks, tests = [], []
    masks, first = [], None
    for name in names:
        f = fits[name]
        orig = f.user_frame()
        frame = _by_frame(f, orig, by)
        s = scale_column(frame, by)
        if first is not None and len(s) == len(first[0]) and np.allclose(s, first[0],
                                                                         rtol=1e-9):
            mask = first[1]  # one split: C and 6 N D of one run may differ in the last bit
        else:
            mask = split_future(frame, by=by, cutoff=cutoff, quantile=quantile, falling=falling)
        first = first or (s, mask)
        masks.append(mask)
        tasks.append((orig.loc[~mask], f.law, refit_kwargs(f, **overrides)))
        tests.append(orig.loc[mask])
    n_test = {len(t) for t in tests}
    if len(n_test) != 1 or any(not np.array_equal(m, masks[0]) for m in masks[1:]):
        raise BayescaleError(
            "The laws' training data differ, so their leave-future-out scores would not "
            "be comparable; fit every law on the same rows."
        )
    seen = runs_seen_note(tasks[0][0], tests[0], fits[names[0]].spec.run)
    if seen and warn:
        _user_warn(seen, UserWarning)
    notes = {}
    for name, (rows, _, _) in zip(names, tasks):
        k = fits[name].spec.free_parameter_count()
        if len(rows) < k:
            notes[name] = (
                f"left out: {len(rows)} rows below the cutoff for {k} free parameters"
            )
    ok = [i for i, name in enumerate(names) if name not in notes]
    if not ok:
        raise BayescaleError(
            "No law can be refitted on the rows below the leave-future-out cutoff ("
            + "; ".join(f"{n!r}: {v}" for n, v in notes.items())
            + "); move the cutoff up (lfo=dict(quantile=...)) or add data."
        )
    # a fit keeps its refits for this split and these settings: bs.average(weights="lfo")
    # after bs.compare(lfo=...) (or a second compare) scores them without refitting
    key = (by, cutoff, quantile, repr(sorted(overrides.items())))
    stores = {i: _lfo_refit_store(fits[names[i]]) for i in ok}
    todo = [i for i in ok if key not in stores[i]]
    labels = {i: f"leave-future-out refit of {names[i]!r}" for i in ok}
    for i, r in zip(todo, run_fits(
        [tasks[i] for i in todo], executor=executor, warn=warn, labels=[labels[i] for i in todo]
    )):
        stores[i][key] = r
    if warn:  # the kept refits' sampling problems are reported again
        for i in sorted(set(ok) - set(todo)):
            warn_problems(dict(stores[i][key].diagnostics), labels[i])
    refits = [stores[i][key] for i in ok]
    pw_ok = np.column_stack(
        [log_predictive_density(r, tests[i]) for r, i in zip(refits, ok)]
    )
    n = pw_ok.shape[0]
    pw = np.full((n, len(names)), np.nan)
    pw[:, ok] = pw_ok
    w = np.zeros(len(names))
    w[ok] = stacking_weights(pw_ok)
    table = pd.DataFrame(
        {
            "lfo_elpd": pw.sum(axis=0),
            "lfo_se": np.sqrt(n * np.var(pw, axis=0)),
            "lfo_n": n,
            "lfo_weight": w,
            "lfo_note": [notes.get(name, "") for name in names],
        },
        index=pd.Index(names, name="law"),
    )
    refit_map = {names[i]: r for r, i in zip(refits, ok)}
    return table, {"pointwise": pd.DataFrame(pw, columns=names), "refits": refit_map}


def _lfo_refit_store(fit) -> dict:
    """Leave-future-out refits of ``fit`` made in this process, by split and settings.

    Not pickled or saved with the fit.
    """
    return fit.__dict__.setdefault("_lfo_refits", {})


def _by_frame(fit, orig: pd.DataFrame, by: str) -> pd.DataFrame:
    """Return a frame holding the cutoff column ``by`` (user or canonical name)."""
    from .fit import scale_of

    if by in orig.columns:
        return orig
    if by in fit.data.columns:
        return fit.data
    if by == "C" and _has_compute(fit.law):
        return pd.DataFrame({"C": scale_of(fit.law, fit.data)}, index=fit.data.index)
    if by == "C":  # a law of N alone: its scale is not compute (it split by N, unsaid)
        raise DataError(
            f"Leave-future-out by='C': law {fit.law.name!r} (inputs {list(fit.law.inputs)}) "
            "has no compute, neither an input C nor N and D, and its data no column 'C'; "
            "pass lfo=dict(by=<a column every fit was given>), e.g. by='"
            f"{_scale_column(fit)}'."
        )
    return orig


def _pareto_note(k: np.ndarray, good_k: float = PARETO_K_BAD) -> tuple[int, str]:
    """Points above ``good_k`` (ArviZ's ``min(1 - 1/log10(S), 0.7)`` for ``S`` draws), in words."""
    good_k = float(min(good_k, PARETO_K_BAD))
    bad = int(np.sum(k > good_k))
    n = len(k)
    if bad == 0:
        return 0, f"all {n} Pareto k <= {good_k:.2f}: PSIS-LOO estimate is reliable"
    return bad, (
        f"{bad} of {n} points have Pareto k > {good_k:.2f}: leaving each of them out "
        "changes the posterior too much for importance sampling, so this law's ELPD is "
        "unreliable (usually optimistic); these are influential runs (often the largest "
        "or outliers). Trust the leave-future-out score, or refit without them."
    )


#: ArviZ's weighting methods of a PSIS-LOO comparison (``az.compare(method=...)``).
LOO_METHODS = ("stacking", "BB-pseudo-BMA", "pseudo-BMA")


def check_comparable(fits: Mapping[str, Any], what: str) -> None:
    """Refuse fits whose densities cannot be compared or mixed row by row.

    They must share the response scale (link), the kind of density (a count's probability
    against a score's density differ by about ``log n`` a row) and the rows themselves (the
    same responses in the same order; the inputs may differ, e.g. ``C`` against ``N, D``).
    """
    names = list(fits)
    links = {fits[n].law.link for n in names}
    if len(links) > 1:
        raise BayescaleError(
            f"The fits use different links {sorted(links)}: their densities are on different "
            f"scales and cannot be {what}. Use laws of the same response scale."
        )
    counts = {n: get_likelihood(fits[n].spec.likelihood).needs_trials for n in names}
    if len(set(counts.values())) > 1:
        kinds = {n: fits[n].spec.likelihood for n in names}
        raise BayescaleError(
            f"The fits' likelihoods {kinds} mix counts (the probability of k correct of n) "
            f"with scores (a density on [0, 1]): their log densities differ by about log n a "
            f"row whatever the law, so they cannot be {what}. Fit every law with the same "
            "likelihood (likelihood=...)."
        )
    sizes = {n: len(fits[n].data) for n in names}
    if len(set(sizes.values())) > 1:
        raise BayescaleError(
            f"The fits have different numbers of rows {sizes}; fits {what} need the same data "
            "for every law."
        )
    first = fits[names[0]].data
    for n in names[1:]:
        other = fits[n].data
        if not (np.allclose(other["y"].to_numpy(dtype=float), first["y"].to_numpy(dtype=float),
                            rtol=1e-12, atol=0.0) and other.index.equals(first.index)):
            raise BayescaleError(
                f"Fits {names[0]!r} and {n!r} were fitted to different rows (other responses "
                f"or another order); fits {what} need the same data for every law."
            )


def compare(
    fits: Mapping[str, Any] | Sequence[Any],
    *,
    lfo: Mapping[str, Any] | None = None,
    method: str = "stacking",
    sort_by: str | None = None,
    executor: Executor | str | None = None,
    warn: bool = True,
    random_seed: int | None = 0,
) -> pd.DataFrame:
    """Rank law forms by PSIS-LOO and, optionally, by a leave-future-out score.

    Parameters
    ----------
    fits : dict or list
        ``{name: Fit}``, all fitted to the same rows; a list of fits of different laws is
        named by their laws (``[f1, f2]`` -> ``{"chinchilla": f1, "kaplan": f2}``).
    lfo : dict, optional
        Leave-future-out: ``dict(cutoff=value, by="C")`` or ``dict(quantile=0.8, by="C")``
        refits each law (same priors and sampler settings) on the rows with
        ``by <= cutoff`` and scores the log predictive density of the rows above.
        ``by="C"`` uses the fits' compute (``C``, else ``6 N D``); any input name
        (``"N"``, ``"x"``) works too. Extra keys ``draws``, ``tune``, ``chains``,
        ``sampler`` or ``random_seed`` override the refits' settings.
    method : str
        ArviZ weighting method (``"stacking"``, ``"BB-pseudo-BMA"``, ``"pseudo-BMA"``).
    sort_by : {"loo", "lfo"}, optional
        Ranking; default ``"lfo"`` when ``lfo`` is given, else ``"loo"``.
    executor : None, "serial" or Executor
        Where the LFO refits run (see :mod:`bayescale.parallel`).
    random_seed : int
        Seed of ``"BB-pseudo-BMA"``'s Bayesian bootstrap (the same weights every call).

    Returns
    -------
    DataFrame
        One row per law: ``rank``, ``elpd_loo``, ``se``, ``p_loo``, ``elpd_diff``,
        ``dse``, ``weight`` (ArviZ's weights by ``method``), ``likelihood`` (each fit's:
        with the default ``likelihood="auto"`` a law whose residuals are autocorrelated carries
        ``"ar1"``, whose pointwise terms are the densities of each row given the one
        before, summing to the joint density), ``n_pareto_k_high`` and
        ``pareto_k_note`` (in words); with ``lfo``: ``lfo_elpd``, ``lfo_se``,
        ``lfo_n``, ``lfo_diff``, ``lfo_weight`` (stacking on the held-out rows) and
        ``lfo_rank`` (from 0, as ``rank``). ``table.attrs["lfo"]`` holds the pointwise
        densities and refits.

    Examples
    --------
    >>> table = bs.compare({"chinchilla": f1, "kaplan": f2},
    ...                    lfo=dict(quantile=0.8, by="C"))  # doctest: +SKIP
    """
    import arviz as az

    from .parallel import check_executor

    check_executor(executor)  # also without lfo=, where it is not used: a typo is a typo
    # before the PSIS-LOO work and the refits: a typo here threw them away
    key = sort_by or ("lfo" if lfo is not None else "loo")
    if key not in ("loo", "lfo"):
        raise BayescaleError(f"sort_by must be 'loo' or 'lfo', got {sort_by!r}.")
    if key == "lfo" and lfo is None:
        raise BayescaleError("sort_by='lfo' needs lfo=dict(cutoff=..., by=...).")
    check_seed(random_seed)
    fits = named_fits(fits, "compare", at_least=2)
    if method not in LOO_METHODS:
        hint = (" (leave-future-out scores: lfo=dict(quantile=0.8, by='C'))"
                if method == "lfo" else "")
        raise BayescaleError(
            f"method must be one of {list(LOO_METHODS)} (ArviZ's weights of the PSIS-LOO "
            f"comparison), got {method!r}{hint}."
        )
    names = list(fits)
    check_comparable(fits, "compared")
    opts = None if lfo is None else _lfo_options(lfo)  # before the PSIS-LOO work
    with warnings.catch_warnings():
        # the Pareto-k warnings are reported in words in the table instead
        warnings.simplefilter("ignore")
        idatas = {n: fits[n].idata for n in names}
        # seeded: BB-pseudo-BMA's Bayesian bootstrap drew other weights at every call
        # scale="log" whatever az.rcParams["stats.ic_scale"] says: lfo_elpd is a log score
        table = az.compare(idatas, ic="loo", method=method, var_name="y_obs", seed=random_seed,
                           scale="log")
        loos = {n: az.loo(fits[n].idata, pointwise=True, var_name="y_obs", scale="log")
                for n in names}
    notes = {n: _pareto_note(np.asarray(loos[n].pareto_k).ravel(),
                             getattr(loos[n], "good_k", PARETO_K_BAD)) for n in names}
    # with likelihood="auto" two laws may carry different likelihoods (ar1 where a law's
    # residuals are autocorrelated): the comparison is then of law + likelihood
    table["likelihood"] = [fits[n].spec.likelihood for n in table.index]
    table["n_pareto_k_high"] = [notes[n][0] for n in table.index]
    table["pareto_k_note"] = [notes[n][1] for n in table.index]
    table = table.drop(columns=[c for c in ("warning", "scale") if c in table.columns])
    table.index.name = "law"
    extra: dict[str, Any] = {}
    if opts is not None:
        cut = {k: opts.pop(k) for k in ("cutoff", "quantile", "by") if k in opts}
        lt, extra = leave_future_out(fits, executor=executor, warn=warn, **cut, **opts)
        table = table.join(lt)
        table["lfo_diff"] = table["lfo_elpd"].max() - table["lfo_elpd"]
        # from 0, as ArviZ's rank beside it (the best law: rank 0, lfo_rank 0)
        table["lfo_rank"] = (
            table["lfo_elpd"].rank(ascending=False, method="min", na_option="bottom").astype(int)
            - 1
        )
    if key == "lfo":
        table = table.sort_values("lfo_elpd", ascending=False)
    table.attrs["lfo"] = extra
    table.attrs["scale"] = "log y" if fits[names[0]].law.link == "log" else "y"
    return table


# ----------------------------------------------------------------------------------------
# model averaging


@dataclass(frozen=True)
class Averaged:
    """A weighted mixture of fits: the model-averaged posterior predictive.

    Attributes
    ----------
    fits : dict
        ``{name: Fit}``.
    weights : dict
        ``{name: weight}``, summing to one.
    random_seed : int or None
        Seed of the mixture draws.
    """

    fits: Mapping[str, Any]
    weights: Mapping[str, float]
    random_seed: int | None = None

    def __post_init__(self) -> None:
        # made by hand too: all-zero or negative weights gave "min() arg is an empty
        # sequence" or dropped a fit without a word, a bad seed NumPy's error at draws()
        if not isinstance(self.fits, Mapping) or not self.fits:
            raise BayescaleError(
                f"Averaged needs fits as a non-empty dict {{name: Fit}}, got {self.fits!r}; "
                "bs.average(fits, weights) makes one."
            )
        if not isinstance(self.weights, Mapping):
            raise BayescaleError(
                f"Averaged needs weights as a dict {{name: weight}}, got {self.weights!r}."
            )
        w = given_weights(self.weights, list(self.fits))
        object.__setattr__(self, "weights", dict(zip(self.fits, map(float, w / w.sum()))))
        check_seed(self.random_seed)

    def __repr__(self) -> str:
        w = ", ".join(f"{k}={v:.3f}" for k, v in self.weights.items())
        return f"<bayescale.Averaged {w}>"

    def _members(self) -> list[str]:
        """Names of the fits with a positive weight, in the order of ``fits``."""
        return [k for k in self.fits if self.weights.get(k, 0.0) > 0]

    def draws(
        self,
        new: pd.DataFrame | Mapping[str, Any] | None = None,
        *,
        kind: str = "predictive",
        n: int | None = None,
        random_seed: int | None = None,
        extrapolation: bool | str = "auto",
        shared_noise: bool = False,
    ) -> xr.DataArray:
        """Mixture draws ``(sample, row)``: each fit contributes draws in proportion to its weight.

        ``n`` is the total number of draws (default: the smallest posterior size). Each
        fit's draws carry its calibrated extrapolation discrepancy unless
        ``extrapolation=False``, so one call combines structural (which law) and
        extrapolation uncertainty. ``shared_noise`` as in :meth:`Fit.draws`.
        """
        if n is not None and not is_count(n, 1):
            raise BayescaleError(f"n is the number of draws, a positive integer; got {n!r}.")
        check_seed(random_seed)
        seed = self.random_seed if random_seed is None else random_seed
        rng = np.random.default_rng(None if seed is None else [int(seed), 104729])
        names = self._members()
        per = {
            k: self.fits[k].draws(  # the resolved seed: draws() == draws(random_seed=own)
                new, kind=kind, random_seed=seed, extrapolation=extrapolation,
                shared_noise=shared_noise,
            )
            for k in names
        }
        total = n or min(per[k].sizes["sample"] for k in names)
        w = np.array([self.weights[k] for k in names], dtype=float)
        counts = _allocate(total, w / w.sum())
        parts = []
        for k, c in zip(names, counts):
            if c == 0:
                continue
            d = per[k].values
            idx = rng.choice(d.shape[0], size=c, replace=c > d.shape[0])
            parts.append(d[idx])
        out = np.concatenate(parts, axis=0)
        out = out[rng.permutation(out.shape[0])]
        first = per[names[0]]
        return xr.DataArray(
            out, dims=("sample", "row"), coords={"row": first["row"].values}, name=first.name
        )

    def predict(
        self,
        new: pd.DataFrame | Mapping[str, Any] | None = None,
        *,
        prob: float = 0.9,
        kind: str = "predictive",
        random_seed: int | None = None,
        extrapolation: bool | str = "auto",
        shared_noise: bool = False,
    ) -> pd.DataFrame:
        """Model-averaged predictive summary; same columns as :meth:`Fit.predict`.

        ``shared_noise`` as in :meth:`Fit.draws` (smooth bands along a grid).

        Examples
        --------
        >>> bs.average({"a": f1, "b": f2}).predict({"C": [1e24]}, prob=0.9)  # doctest: +SKIP
        """
        from .fit import _check_prob, has_predictive_mean, summarise_draws

        prob = _check_prob(prob)
        top = self.fits[max(self.weights, key=lambda k: self.weights[k])]
        ratio = top.extrapolation_ratio(new)
        if new is not None:
            rows = as_rows(new)
            top._warn_far_beyond(ratio, "Row(s) of the new rows",
                                 list(rows.index) if isinstance(rows, pd.DataFrame) else None)
        d = self.draws(new, kind=kind, random_seed=random_seed, extrapolation=extrapolation,
                       shared_noise=shared_noise).values
        mean = kind == "mean" or all(has_predictive_mean(self.fits[k]) for k in self._members())
        return summarise_draws(top, new, d, prob, ratio, mean=mean)

    def report(self, target: pd.DataFrame | Mapping[str, Any] | None = None, **kwargs: Any):
        """Paper-ready report of the average: weights, its forecast and each law's tables.

        See :func:`bayescale.report.report`.
        """
        from .report import report

        return report(self, target, **kwargs)

    def plot(self, **kwargs: Any):
        """Data, each law's median and the average's band (:func:`bayescale.plots.plot_average`)."""
        from .plots import plot_average

        return plot_average(self, **kwargs)

    def decompose(
        self,
        new: pd.DataFrame | Mapping[str, Any] | None = None,
        *,
        extrapolation: bool | str = "auto",
    ) -> pd.DataFrame:
        """Split each row's predictive variance by source, law form included.

        On the log scale for loss laws, the logit scale for accuracy laws;
        ``extrapolation=False`` leaves the members' drift out.

        By the law of total variance over the mixture: ``parameter``, ``noise`` and
        ``extrapolation`` are the members' terms (:meth:`Fit.decompose`) weighted by the
        average's weights, and ``law_form`` is the weighted spread of the members' central
        forecasts (median of the law's mean on that scale), ``sum_k w_k (m_k - m)^2`` with
        ``m = sum_k w_k m_k``: the width that comes from not knowing which law is right.

        Examples
        --------
        >>> avg = bs.average({"chinchilla": f1, "kaplan": f2}, weights="lfo")  # doctest: +SKIP
        >>> avg.decompose({"N": [7e10], "D": [1.4e12]})[["law_form_share"]]  # doctest: +SKIP
        """
        from .calibration import add_shares, decompose_with_centre

        names = self._members()
        w = np.array([self.weights[k] for k in names], dtype=float)
        w = w / w.sum()
        both = {
            k: decompose_with_centre(
                self.fits[k], new,
                extrapolation=self.fits[k]._use_extrapolation(extrapolation))
            for k in names
        }
        parts = {k: both[k][0] for k in names}
        centres = np.vstack([both[k][1] for k in names])
        top = names[int(np.argmax(w))]
        drop = [c for c in parts[top] if c.endswith("_share") or c == "total"]
        out = parts[top].drop(columns=drop).copy()
        for c in ("parameter", "noise", "extrapolation"):
            out[c] = sum(wk * parts[k][c].to_numpy() for wk, k in zip(w, names))
        if all("distance" in parts[k] for k in names):  # the farthest any member's inputs say
            out["distance"] = np.max([parts[k]["distance"].to_numpy() for k in names], axis=0)
        m = w @ centres
        out["law_form"] = w @ (centres - m) ** 2
        return add_shares(out, ("parameter", "noise", "extrapolation", "law_form"))

    def log_predictive_density(self, data: pd.DataFrame, *, random_seed: int | None = None,
                               extrapolation: bool | str = False) -> np.ndarray:
        """Log density of the mixture at each row: ``log sum_k w_k p_k(y)``.

        ``extrapolation`` as in :func:`pointwise_log_density`; the weights are those of
        the members (positive weights), normalised.
        """
        names = self._members()
        lp = np.column_stack([log_predictive_density(self.fits[k], data,
                                                     random_seed=random_seed,
                                                     extrapolation=extrapolation)
                              for k in names])
        w = np.array([self.weights[k] for k in names])
        w = w / w.sum()
        return _logmeanexp(lp.T + np.log(w)[:, None], axis=0) + np.log(len(names))


def _allocate(total: int, w: np.ndarray) -> np.ndarray:
    """Integer counts summing to ``total`` proportional to ``w`` (largest remainder)."""
    raw = w * total
    counts = np.floor(raw).astype(int)
    rest = total - counts.sum()
    if rest > 0:
        counts[np.argsort(-(raw - counts))[:rest]] += 1
    return counts


def given_weights(weights: Mapping[str, Any], names: Sequence[str]) -> np.ndarray:
    """Weights given by name, checked: known names, non-negative numbers, not all zero.

    Examples
    --------
    >>> given_weights({"a": 3, "b": 1}, ["a", "b", "c"]).tolist()
    [3.0, 1.0, 0.0]
    """
    unknown = set(weights) - set(names)
    if unknown:
        raise BayescaleError(f"weights name unknown fits {sorted(unknown)}; fits: {list(names)}.")
    try:
        w = np.array([float(weights.get(n, 0.0)) for n in names])
    except (TypeError, ValueError):  # None, text: said below
        w = np.array([np.nan])
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise BayescaleError(
            f"weights must be finite, non-negative and not all zero, got {dict(weights)}."
        )
    return w


def average(
    fits: Mapping[str, Any] | Sequence[Any],
    weights: str | Mapping[str, float] = "stacking",
    *,
    lfo: Mapping[str, Any] | None = None,
    random_seed: int | None = 0,
    executor: Executor | str | None = None,
) -> Averaged:
    """Model-average several fits.

    Parameters
    ----------
    fits : dict or list
        ``{name: Fit}``; a list of fits of different laws is named by their laws.
    weights : "stacking", "pseudo-BMA", "lfo" or dict
        ``"stacking"``: ArviZ stacking weights from PSIS-LOO (rewards interpolation);
        ``"lfo"``: stacking on leave-future-out densities (rewards extrapolation: each
        law is refitted on the smaller training rows and scored on the larger; refits
        that :func:`compare` made for the same split are reused); a dict gives the
        weights directly (normalised).
    lfo : dict, optional
        Options of the leave-future-out split (see :func:`compare`); default
        ``dict(quantile=0.8, by=<the scale>)``, the scale being ``C`` for laws of ``N``
        and ``D`` and the single input's column otherwise.
    random_seed : int
        Seed of the mixture draws (and of ``"BB-pseudo-BMA"``'s bootstrap).

    Returns
    -------
    Averaged

    Examples
    --------
    >>> avg = bs.average({"chinchilla": f1, "kaplan": f2})  # doctest: +SKIP
    >>> avg.predict({"N": [7e10], "D": [1.4e12]}, prob=0.9)  # doctest: +SKIP
    """
    from .parallel import check_executor

    check_executor(executor)
    fits = named_fits(fits, "average")
    names = list(fits)
    check_comparable(fits, "averaged")
    if lfo is not None and not (isinstance(weights, str) and weights == "lfo"):
        raise BayescaleError(
            "lfo= sets the split of weights='lfo'; with other weights it would be ignored. "
            "Pass weights='lfo', or drop lfo=."
        )
    check_seed(random_seed)
    if not (isinstance(weights, Mapping)
            or (isinstance(weights, str) and weights in (*LOO_METHODS, "lfo"))):
        raise BayescaleError(
            f"weights must be 'stacking', 'pseudo-BMA', 'BB-pseudo-BMA', 'lfo' or a dict, "
            f"got {weights!r}."
        )
    if isinstance(weights, Mapping):
        w = given_weights(weights, names)
    elif len(names) == 1:  # (the split checked all the same)
        if weights == "lfo":  # the split a second fit would be scored on
            opts, (f,) = default_lfo(fits, lfo), fits.values()
            by = opts["by"]
            split_future(_by_frame(f, f.user_frame(), by), by=by, cutoff=opts.get("cutoff"),
                         quantile=opts.get("quantile"), falling=falls([(f.law, f.spec.x)], by))
        w = np.ones(1)
    elif weights in LOO_METHODS:
        table = compare(fits, method=weights, random_seed=random_seed)
        w = table.loc[names, "weight"].to_numpy(dtype=float)
    else:  # "lfo"
        table = compare(fits, lfo=default_lfo(fits, lfo), executor=executor)
        w = table.loc[names, "lfo_weight"].to_numpy(dtype=float)
    return Averaged(  # (which normalises the weights)
        fits=dict(fits), weights=dict(zip(names, map(float, w))), random_seed=random_seed
    )


__all__ = [
    "Averaged",
    "average",
    "compare",
    "crps_ensemble",
    "leave_future_out",
    "log_predictive_density",
    "stacking_weights",
]
