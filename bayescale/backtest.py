"""Backtests: fit on the small runs, predict the held-out large ones, score the forecasts.

For every law (and the stacking average of the laws) :func:`backtest` reports the
absolute relative error of the posterior predictive median, the coverage and
relative width of central intervals, the mean log predictive density and the
continuous ranked probability score (CRPS) of the held-out rows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .compare import (
    LOO_METHODS,
    Averaged,
    _validated,
    check_comparable,
    compare,
    crps_ensemble,
    default_lfo,
    falls,
    given_weights,
    log_predictive_density,
    split_future,
)
from .data import _rows, as_frame
from .errors import BayescaleError, DataError
from .fit import has_predictive_mean
from .law import Law, get_law
from .report import percent

#: Central interval probabilities scored by default.
PROBS = (0.5, 0.8, 0.9, 0.95)


@dataclass(frozen=True)
class Backtest:
    """Result of :func:`backtest`.

    Attributes
    ----------
    table : DataFrame
        One row per law and ``"average"``: ``n`` held-out rows, ``abs_rel_err``
        (mean ``|median - y| / y``), ``rmse_log`` (RMSE of ``log median - log y``),
        ``cov_50``... (fraction of held-out rows inside each central interval),
        ``width_90`` (mean ``(upper - lower) / median`` of the 90% interval, or of
        the widest level scored), ``lpd`` (mean log predictive density, on the
        likelihood's scale: ``log y`` for log-link laws), ``crps`` (mean CRPS on the
        same scale: in units of ``log y`` for log-link laws, which stays finite when
        the predictive of ``y`` has heavy tails, else of ``y``),
        ``weight`` (stacking weight in the average) and
        ``problems`` (sampling problems of the fit, if any).
    points : DataFrame
        One row per law and held-out row: ``y``, ``median``, ``mean``, ``lower_XX`` /
        ``upper_XX`` per level, ``lpd``, ``crps``, ``extrapolation``.
    fits : dict
        The fits on the training rows.
    holdout : ndarray of bool
        Which rows of ``data`` were held out.
    probs : tuple of float
        The interval levels scored.
    """

    table: pd.DataFrame
    points: pd.DataFrame
    fits: Mapping[str, Any]
    holdout: np.ndarray
    probs: tuple[float, ...] = PROBS
    weights: Mapping[str, float] = field(default_factory=dict)

    def __repr__(self) -> str:
        return (
            f"<bayescale.Backtest laws={list(self.fits)} held_out={int(self.holdout.sum())} "
            f"of {len(self.holdout)}>\n{self.table.to_string()}"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: what was held out and the score table."""
        import html

        laws = html.escape(", ".join(map(str, self.fits)))
        return (f"<div><p><b>bayescale.Backtest</b> of {laws}: {int(self.holdout.sum())} of "
                f"{len(self.holdout)} rows held out</p>{self.table.to_html()}</div>")

    def calibration(self) -> pd.DataFrame:
        """Nominal vs observed coverage: one row per law and level."""
        rows = []
        for law_name, sub in self.points.groupby("law", sort=False):
            for p in self.probs:
                t = percent(p)
                inside = (sub["y"] >= sub[f"lower_{t}"]) & (sub["y"] <= sub[f"upper_{t}"])
                rows.append({"law": law_name, "nominal": p, "observed": float(inside.mean()),
                             "n": len(sub)})
        return pd.DataFrame(rows)

    def plot_calibration(self, ax: Any = None):
        """Plot observed against nominal coverage (:func:`bayescale.plots.plot_calibration`)."""
        from .plots import plot_calibration

        return plot_calibration(self, ax=ax)


def _normalise_laws(
    laws: str | Law | Sequence[Any] | Mapping[str, Any],
) -> dict[str, tuple[str | Law, dict[str, Any]]]:
    if isinstance(laws, (str, Law)):
        laws = [laws]
    if isinstance(laws, Mapping):
        items = list(laws.items())
    elif not hasattr(laws, "__iter__") or not (laws := list(laws)):  # backtest(df, 3)
        raise BayescaleError(
            "backtest takes laws as a name, a Law, a list of them or a dict of variants, "
            f"e.g. ['chinchilla', 'kaplan']; got {laws!r}."
        )
    else:
        items = []
        for law in laws:
            obj = get_law(law[0] if isinstance(law, tuple) else law)
            items.append((obj.name, law))
    out: dict[str, tuple[str | Law, dict[str, Any]]] = {}
    for label, spec in items:
        if str(label) in out:  # a later one replaced the earlier, silently
            raise BayescaleError(
                f"backtest: law {str(label)!r} is named twice; name each variant in a dict, "
                f"e.g. {{'{label}': '{label}', '{label}_normal': ('{label}', "
                "{'likelihood': 'normal'})}."
            )
        if isinstance(spec, tuple):
            if len(spec) != 2 or not isinstance(spec[1], Mapping):
                raise BayescaleError(
                    f"backtest: law {str(label)!r} is given as {spec!r}; a law with options "
                    "is a pair (law, {fit keyword: value}), e.g. ('broken_power_law', "
                    "{'x': {'x': 'C'}})."
                )
            law, kw = spec
            out[str(label)] = (law, dict(kw))
        else:
            out[str(label)] = (spec, {})
        get_law(out[str(label)][0])  # fail early on unknown names
    if not out:
        raise BayescaleError("backtest needs at least one law.")
    if "average" in out:
        raise BayescaleError("'average' is reserved for the model average; rename that law.")
    return out


def _aligned(mask: pd.Series, data: pd.DataFrame) -> pd.Series:
    """A boolean Series over ``data``'s rows, by their index labels (not their order).

    ``data.N > 5e9`` reversed held out the first rows by position, silently.
    """
    if not mask.index.equals(data.index):
        if mask.index.has_duplicates or data.index.has_duplicates or set(
                mask.index) != set(data.index):
            raise DataError(
                "holdout is a Series whose index does not match the data's rows; give a "
                "boolean Series over the same index (e.g. data['C'] > 1e21) or a plain "
                "array in the rows' order."
            )
        mask = mask.reindex(data.index)
    return mask


def holdout_mask(
    data: pd.DataFrame, holdout: Any, x: Mapping[str, Any] | None = None,
    falling: bool = False,
) -> np.ndarray:
    """Resolve ``holdout=`` to a boolean mask over ``data`` (True = held out).

    Accepts a callable ``holdout(data) -> mask``, a dict ``dict(by="C", quantile=0.8)``
    or ``dict(by="C", cutoff=1e21)`` (rows with ``by`` above the cutoff are held
    out), the name of a boolean column, or a boolean array. ``by`` is a column of
    ``data`` or a law input that ``x`` maps to one (``by="N"`` with
    ``x={"N": "params"}``; ``"C"`` is ``6 N D`` of the mapped columns when absent).
    ``falling=True``: ``by`` falls as models grow (a loss input), so the rows *below* the
    cutoff (or the lowest ``1 - quantile``) are held out (:func:`bayescale.compare.split_future`).

    Examples
    --------
    >>> df = pd.DataFrame({"C": [1.0, 2.0, 3.0, 4.0]})
    >>> holdout_mask(df, dict(by="C", cutoff=2.5)).tolist()
    [False, False, True, True]
    """
    if callable(holdout):
        holdout = holdout(data)
        if isinstance(holdout, pd.Series):
            holdout = _aligned(holdout, data)
        mask = np.asarray(holdout)
    elif isinstance(holdout, pd.Series):  # a mask of data's rows: by their labels
        aligned = _aligned(holdout, data)
        if pd.api.types.is_bool_dtype(aligned) and aligned.isna().any():  # nullable boolean
            raise DataError(
                f"holdout has missing values at {_rows(aligned.isna().to_numpy(), data.index)};"
                " give every row True (held out) or False."
            )
        mask = np.asarray(aligned)
    elif isinstance(holdout, Mapping):
        opts = dict(holdout)
        bad = set(opts) - {"by", "cutoff", "quantile"}
        if bad:
            raise BayescaleError(
                f"holdout dict accepts by=, cutoff= or quantile=; got unknown {sorted(bad)}."
            )
        by = opts.get("by", "C")
        mask = split_future(_with_input(data, by, x or {}), by=by, cutoff=opts.get("cutoff"),
                            quantile=opts.get("quantile"), falling=falling)
    elif isinstance(holdout, str):
        if holdout not in data.columns:
            raise DataError(
                f"holdout column {holdout!r} is missing; columns are {list(data.columns)}."
            )
        col = data[holdout]
        if pd.api.types.is_bool_dtype(col) and col.isna().any():  # pandas' nullable boolean
            raise DataError(
                f"holdout column {holdout!r} has missing values at "
                f"{_rows(col.isna().to_numpy(), data.index)}; give every row True (held out) "
                "or False."
            )
        if not pd.api.types.is_bool_dtype(col):
            raise DataError(
                f"holdout column {holdout!r} must be boolean (True = held out), got dtype "
                f"{col.dtype}; e.g. data['held'] = data['split'] == 'extrapolate'."
            )
        mask = col.to_numpy()
    else:
        mask = np.asarray(holdout)
    if mask.dtype != bool or mask.shape != (len(data),):
        raise BayescaleError(
            f"holdout must give one boolean per row of data ({len(data)}), got shape "
            f"{mask.shape} and dtype {mask.dtype}."
        )
    if mask.all() or not mask.any():
        raise DataError(
            f"holdout keeps {int((~mask).sum())} training and {int(mask.sum())} held-out rows; "
            "both must be non-empty."
        )
    return mask


def _falling_holdout(holdout: Any, spec: Mapping[str, Any], x: Mapping[str, Any] | None
                     ) -> bool:
    """Whether a ``holdout`` dict splits by a column that falls as models grow for the laws."""
    if not isinstance(holdout, Mapping):
        return False
    # each law's own mapping where it has one (it replaces x= in its fit)
    return falls([(get_law(law), kw.get("x", x)) for law, kw in spec.values()],
                 holdout.get("by", "C"), "holdout")


def _with_input(data: pd.DataFrame, by: str, x: Mapping[str, Any]) -> pd.DataFrame:
    """``data`` with a column ``by`` when ``by`` names a law input mapped by ``x``."""
    from .data import compute_6nd

    if not isinstance(by, str) or by in data.columns:  # split_future checks the rest
        return data
    col = x.get(by)
    if isinstance(col, str) and col in data.columns:
        return data.assign(**{by: data[col]})
    n, d = x.get("N", "N"), x.get("D", "D")
    if by == "C" and isinstance(n, str) and isinstance(d, str) and {n, d} <= set(data.columns):
        # numbers, or an error naming the column and rows
        c = compute_6nd(data, n, d, "for C = 6*N*D, the column the split is by")
        return data.assign(C=c.to_numpy(dtype=float))
    return data


def _check_rows(train: pd.DataFrame, test: pd.DataFrame, law: Any, label: str,
                fit_kwargs: Mapping[str, Any]) -> None:
    """Check one law's training and held-out rows before any law is fitted.

    The fits would check their training rows, and the scoring the held-out ones, but only
    after every fit had been sampled; an error names the law and the rows' part.
    """
    from types import SimpleNamespace

    from .fit import check_series

    tag = f"backtest of {label!r}"
    model = check_series([train], law, [f"{tag}, training rows"], **fit_kwargs)[0]
    try:
        _validated(SimpleNamespace(spec=model, law=get_law(law)), test)
    except BayescaleError as e:
        raise type(e)(f"{tag}, held-out rows: {e}") from None


def score_draws(
    draws: np.ndarray, y: np.ndarray, probs: Sequence[float] = PROBS, link: str = "identity"
) -> dict[str, np.ndarray]:
    """Per-point median, mean, central intervals and CRPS of predictive draws ``(S, rows)``.

    The CRPS is computed on the likelihood's scale: of ``log y`` when ``link="log"``
    (a Student-t on ``log y`` has no finite mean of ``y`` for small ``nu``, so the CRPS
    of ``y`` itself can be astronomically large), of ``y`` otherwise.
    """
    out: dict[str, np.ndarray] = {
        "median": np.median(draws, axis=0),
        "mean": draws.mean(axis=0),
    }
    for p in probs:
        lo, hi = np.quantile(draws, [(1 - p) / 2, (1 + p) / 2], axis=0)
        out[f"lower_{percent(p)}"] = lo
        out[f"upper_{percent(p)}"] = hi
    if link == "log":
        # draws that under/overflowed exp on the way out stay finite on the log scale
        tiny = np.finfo(float).tiny
        out["crps"] = crps_ensemble(np.log(np.maximum(draws, tiny)), np.log(y))
    else:
        out["crps"] = crps_ensemble(draws, y)
    return out


def summarise_points(points: pd.DataFrame, probs: Sequence[float] = PROBS) -> pd.DataFrame:
    """Aggregate per-point scores (as in :attr:`Backtest.points`) to one row per law."""
    wp = 0.9 if 0.9 in probs else max(probs)
    rows = []
    for law_name, sub in points.groupby("law", sort=False):
        y = sub["y"].to_numpy()
        med = sub["median"].to_numpy()
        row: dict[str, Any] = {"law": law_name, "n": len(sub)}
        row["abs_rel_err"] = float(np.mean(np.abs(med - y) / np.abs(y)))
        with np.errstate(divide="ignore", invalid="ignore"):
            row["rmse_log"] = float(np.sqrt(np.mean((np.log(med) - np.log(y)) ** 2)))
        for p in probs:
            t = percent(p)
            row[f"cov_{t}"] = float(
                np.mean((y >= sub[f"lower_{t}"].to_numpy()) & (y <= sub[f"upper_{t}"].to_numpy()))
            )
        t = percent(wp)
        row[f"width_{t}"] = float(
            np.mean((sub[f"upper_{t}"].to_numpy() - sub[f"lower_{t}"].to_numpy()) / np.abs(med))
        )
        row["lpd"] = float(sub["lpd"].mean())
        row["crps"] = float(sub["crps"].mean())
        rows.append(row)
    return pd.DataFrame(rows).set_index("law")


def backtest(
    data: pd.DataFrame,
    laws: str | Law | Sequence[Any] | Mapping[str, Any],
    *,
    holdout: Callable[[pd.DataFrame], Any] | Mapping[str, Any] | str | np.ndarray,
    y: str | None = None,
    x: Mapping[str, str] | None = None,
    prob: float | Sequence[float] = PROBS,
    average: str | Mapping[str, float] | None = "stacking",
    lfo: Mapping[str, Any] | None = None,
    executor: Executor | str | None = None,
    random_seed: int | None = 0,
    warn: bool = True,
    **fit_kwargs: Any,
) -> Backtest:
    """Fit each law on the training rows and score its forecasts of the held-out rows.

    Parameters
    ----------
    data : DataFrame
        Tidy data (all rows).
    laws : str, Law, list or dict
        Laws to backtest. A dict maps labels to a law or to ``(law, {fit kwargs})``
        for per-law options (e.g. ``x=``).
    holdout : callable, dict, str or boolean array
        Which rows to hold out: ``dict(by="C", quantile=0.8)`` holds out the runs
        above the 80th percentile of compute; ``dict(by="N", cutoff=1e9)`` those
        with more than 1e9 parameters; a boolean column name or a callable
        ``holdout(data) -> mask`` also work.
    y, x
        Response column and input mapping, as in :func:`bayescale.fit`.
    prob : float or sequence of float
        Central interval levels to score (default 0.5, 0.8, 0.9, 0.95).
    average : "stacking", "lfo", dict or None
        Also score the model average of the laws: ArviZ stacking weights from the
        training fits' PSIS-LOO (``"stacking"``), stacking on a leave-future-out split
        *of the training rows* (``"lfo"``: each law refitted below the cutoff given by
        ``lfo``, which rewards extrapolation rather than interpolation), or given
        weights; ``None`` skips it.
    lfo : dict, optional
        Split for ``average="lfo"`` (see :func:`bayescale.compare`); default
        ``dict(quantile=0.8, by=<the scale>)``, the scale being ``C`` for laws of
        ``N`` and ``D`` and the single input's column otherwise.
    executor : None, "serial" or Executor
        Where the fits run (see :mod:`bayescale.parallel`).
    random_seed : int
        Seed of every fit and of the predictive draws.
    **fit_kwargs
        Passed to :func:`bayescale.fit` (``sampler=``, ``draws=``, ``priors=``...).

    Returns
    -------
    Backtest
        ``.table`` (per law and ``"average"``), ``.points`` (per held-out row),
        ``.plot_calibration()``.

    Examples
    --------
    >>> bt = bs.backtest(df, ["chinchilla", "kaplan"], holdout=dict(by="C", quantile=0.8),
    ...                  sampler="nutpie", draws=500)  # doctest: +SKIP
    >>> bt.table[["abs_rel_err", "cov_90", "crps"]]  # doctest: +SKIP
    """
    from .parallel import run_fits

    data = as_frame(data, "data")
    if len(data) == 0:  # (numpy's IndexError from the split's quantile)
        raise DataError("backtest: the data have no rows; pass the runs to split.")
    try:  # one level or several
        probs = tuple(float(p) for p in np.atleast_1d(np.asarray(prob, dtype=float)).ravel())
    except (TypeError, ValueError):
        probs = ()
    if not probs or any(not 0 < p < 1 for p in probs):
        raise BayescaleError(
            f"prob levels must lie strictly between 0 and 1, e.g. (0.5, 0.9), got {prob!r}."
        )
    if lfo is not None and average != "lfo":
        raise BayescaleError(
            f"lfo= sets the split of average='lfo'; with average={average!r} it would be "
            "ignored. Pass average='lfo', or drop lfo=."
        )
    if not (average is None or isinstance(average, Mapping)
            or average in (*LOO_METHODS, "lfo")):
        raise BayescaleError(
            f"average must be 'stacking', 'lfo', a dict or None, got {average!r}."
        )
    spec = _normalise_laws(laws)
    if isinstance(average, Mapping):  # before any fit: a misnamed law or a negative weight
        given_weights(average, list(spec))
    links = {k: get_law(law).link for k, (law, _) in spec.items()}
    if average is not None and len(set(links.values())) > 1:  # before any fit, as below
        raise BayescaleError(
            f"average={average!r} mixes laws of different links {links}: their densities are "
            "on different scales and cannot be averaged. Use laws of the same response "
            "scale, or average=None."
        )
    mask = holdout_mask(data, holdout, x, falling=_falling_holdout(holdout, spec, x))
    train, test = data.loc[~mask], data.loc[mask]
    base: dict[str, Any] = dict(fit_kwargs)
    if y is not None:
        base["y"] = y
    if x is not None:
        base["x"] = x
    base["random_seed"] = random_seed
    labels = list(spec)
    tasks = [(train, spec[k][0], {**base, **spec[k][1]}) for k in labels]
    for k, (rows, law, kw) in zip(labels, tasks):  # every law's rows, before any fit
        _check_rows(rows, test, law, k, kw)
    fits = dict(zip(labels, run_fits(tasks, executor=executor, warn=warn,
                                     labels=[f"backtest fit of {k!r}" for k in labels])))
    pieces = []
    for k in labels:
        f = fits[k]
        frame = _validated(f, test)
        yv = frame["y"].to_numpy(dtype=float)
        d = f.draws(test, kind="predictive", random_seed=random_seed).values
        sc = score_draws(d, yv, probs, link=f.law.link)
        if not has_predictive_mean(f):  # as predict: Student-t on log y has no mean
            sc["mean"] = np.full(len(yv), np.nan)
        # the density of the forecast scored above: with the calibrated drift beyond the data
        sc["lpd"] = log_predictive_density(f, test, random_seed=random_seed,
                                           extrapolation="auto")
        pieces.append(
            pd.DataFrame({"law": k, "row": test.index, "y": yv, **sc,
                          "extrapolation": f.extrapolation_ratio(test)})
        )
    weights: dict[str, float] = {}
    if average is not None and len(labels) > 1:
        if isinstance(average, Mapping):
            w = given_weights(average, labels)
        elif average in LOO_METHODS:
            w = compare(fits, method=average)["weight"].reindex(labels).to_numpy(dtype=float)
        else:  # "lfo" (checked on entry)
            opts = default_lfo(fits, lfo)
            table = compare(fits, lfo=opts, executor=executor, warn=warn)
            w = table["lfo_weight"].reindex(labels).to_numpy(dtype=float)
        w = w / w.sum()
        weights = dict(zip(labels, map(float, w)))
        check_comparable(fits, "averaged")  # compare() checks its own; given weights too
        avg = Averaged(fits=fits, weights=weights, random_seed=random_seed)
        frame = _validated(fits[labels[0]], test)
        yv = frame["y"].to_numpy(dtype=float)
        d = avg.draws(test, kind="predictive", random_seed=random_seed).values
        sc = score_draws(d, yv, probs, link=fits[labels[0]].law.link)
        if not all(has_predictive_mean(fits[k]) for k in labels):
            sc["mean"] = np.full(len(yv), np.nan)
        sc["lpd"] = avg.log_predictive_density(test, random_seed=random_seed,
                                               extrapolation="auto")
        top = max(weights, key=lambda k: weights[k])
        pieces.append(
            pd.DataFrame({"law": "average", "row": test.index, "y": yv, **sc,
                          "extrapolation": fits[top].extrapolation_ratio(test)})
        )
    points = pd.concat(pieces, ignore_index=True)
    table = summarise_points(points, probs)
    table["weight"] = [weights.get(k, np.nan) if k != "average" else np.nan
                       for k in table.index]
    table["problems"] = [
        "; ".join(fits[k].diagnostics["problems"]) if k in fits else "" for k in table.index
    ]
    return Backtest(table=table, points=points, fits=fits, holdout=mask, probs=probs,
                    weights=weights)
