"""Run NUTS on a PyMC model and collect diagnostics.

:func:`sample` runs ``pm.sample`` on a given model; its default is NumPyro's NUTS
through PyMC's JAX backend (``nuts_sampler="numpyro"``). ``bs.fit`` defaults to
``sampler="auto"``, served by the compiled-sampler cache of :mod:`bayescale.compiled`.
On CPU the chains run in parallel over JAX host devices (PyMC forces 100 of
them at import); on a GPU they are vectorised on the one device. ``"nutpie"``
(numba, compile once) and ``"pymc"`` are the alternatives.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
from scipy.stats import iqr

from .data import is_count
from .errors import BayescaleError, SamplingWarning, warn

SAMPLERS = ("numpyro", "nutpie", "pymc", "blackjax")

#: Models with at most this many free scalar parameters get a dense mass matrix
#: on the NumPyro path (measured: 8x fewer leapfrog steps, 2.5x ESS per draw on
#: the Chinchilla law; the (E, alpha, A) posterior is strongly correlated).
DENSE_MASS_MAX = 40

#: Thresholds of the diagnostics reported on every fit.
RHAT_MAX = 1.01
ESS_MIN_PER_CHAIN = 100
#: Chains whose medians differ by more than this many within-chain standard deviations
#: are reported as sitting in different modes (see :func:`separated_chains`).
MODE_GAP = 4.0


def default_progressbar() -> bool:
    """A progress bar in an interactive terminal, none in CI or when piped."""
    if os.environ.get("CI") or os.environ.get("BAYESCALE_NO_PROGRESS"):
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def jax_platform() -> str:
    """``"gpu"``, ``"tpu"`` or ``"cpu"``: where JAX will run."""
    try:
        import jax

        return jax.default_backend()
    except Exception:  # pragma: no cover - jax missing or broken
        return "cpu"


def n_free(model) -> int:
    """Number of free scalar parameters of a PyMC model."""
    point = model.initial_point()
    return int(sum(np.size(v) for v in point.values()))


#: ``fit(target_accept="auto")``: sample at the first; while the fit has divergent
#: transitions, sample again at the next (same seed). Divergences mark a curved posterior
#: (e.g. the ``(E, A, alpha)`` ridge of a ladder of a dozen runs) that smaller steps explore.
TARGET_ACCEPT_STEPS = (0.9, 0.95, 0.99)


def check_settings(
    draws: Any,
    tune: Any,
    chains: Any,
    target_accept: Any,
    random_seed: Any = None,
    *,
    auto_ok: bool = False,
) -> None:
    """Raise a clear error for NUTS settings that cannot work, before any compilation.

    ``random_seed`` may be None or a non-negative integer (``fit_batch`` checks each of
    its per-series seeds). ``auto_ok``: ``target_accept="auto"`` is allowed (``bs.fit``,
    see :data:`TARGET_ACCEPT_STEPS`).

    Examples
    --------
    >>> check_settings(1000, 1000, 4, 0.9)
    >>> check_settings(0, 1000, 4, 0.9)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescale.errors.BayescaleError: draws must be an integer >= 1, got 0 ...
    """
    for name, value, low in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if not is_count(value, low):
            raise BayescaleError(
                f"{name} must be an integer >= {low}, got {value!r} (for example draws=1000, "
                "tune=1000, chains=4)."
            )
    if target_accept == "auto" and auto_ok:
        pass
    elif isinstance(target_accept, bool) or not isinstance(target_accept, (int, float)) or not (
        0.0 < float(target_accept) < 1.0
    ):
        auto = ' or "auto"' if auto_ok else ""
        raise BayescaleError(
            f"target_accept must be a number strictly between 0 and 1 (0.8-0.99 is usual)"
            f"{auto}, got {target_accept!r}."
        )
    check_seed(random_seed)


def random_seed_for_run() -> int:
    """A seed from the operating system's entropy, for a fit or run given none.

    Examples
    --------
    >>> 0 <= random_seed_for_run() < 2**31
    True
    """
    return int(np.random.SeedSequence().entropy % 2**31)


def seed_or_chosen(random_seed: Any) -> Any:
    """``random_seed``, or one chosen by :func:`random_seed_for_run` when it is None.

    The rule of every run that records its seed (``bs.fit``, ``fit_joint``, ``fit_batch``,
    ``sbc``): without one, a seed is chosen so that the run can be repeated.

    Examples
    --------
    >>> seed_or_chosen(7), 0 <= seed_or_chosen(None) < 2**31
    (7, True)
    """
    return random_seed_for_run() if random_seed is None else random_seed


#: Seeds are below this: nutpie takes an unsigned 64-bit seed.
SEED_LIMIT = 2**64
#: PyMC's JAX samplers make a ``jax.random.PRNGKey`` of the seed: a signed 64-bit integer
JAX_SEED_LIMIT = 2**63


def jax_seed(random_seed: int) -> int:
    """``random_seed`` as a JAX sampler takes it: itself below 2**63, else one derived from it.

    Examples
    --------
    >>> jax_seed(5), jax_seed(2**63) == jax_seed(2**63), 0 <= jax_seed(2**64 - 1) < 2**63
    (5, True, True)
    """
    if random_seed < JAX_SEED_LIMIT:
        return int(random_seed)
    state = np.random.SeedSequence(int(random_seed)).generate_state(1, np.uint64)[0]
    return int(state) % JAX_SEED_LIMIT


#: r_hat above which the chains have not mixed: said with what to look for besides draws.
RHAT_UNMIXED = 1.1


def rhat_text(rhat: float) -> str:
    """r_hat to 3 decimals, or as many more as tell it from the 1.01 threshold.

    ``1.0104`` printed as ``1.010`` read "max r_hat = 1.010 > 1.01" beside another fit's
    "max_rhat=1.010 [ok]".

    Examples
    --------
    >>> rhat_text(1.0023), rhat_text(1.0104), rhat_text(1.0096), rhat_text(1.01)
    ('1.002', '1.0104', '1.0096', '1.010')
    """
    for digits in (3, 4, 5, 6):
        text = f"{rhat:.{digits}f}"
        if float(text) != RHAT_MAX or rhat == RHAT_MAX:
            return text
    return text


def problems_text(problems: Sequence[str]) -> str:
    """A fit's problems in one line, ``"; "`` between them (without a sentence's stop).

    Examples
    --------
    >>> problems_text(["chains disagree.", "low effective sample size"])
    'chains disagree; low effective sample size'
    """
    return "; ".join(p.rstrip().rstrip(".") for p in problems)


def check_seed(random_seed: Any) -> None:
    """Raise a clear error unless ``random_seed`` is None or an integer in ``[0, 2**64)``.

    Examples
    --------
    >>> check_seed(3)
    >>> check_seed(-1)
    Traceback (most recent call last):
    ...
    bayescale.errors.BayescaleError: random_seed must be None or a non-negative integer, got -1.
    """
    if random_seed is not None and (
        isinstance(random_seed, bool)
        or not isinstance(random_seed, (int, np.integer))
        or random_seed < 0
    ):
        raise BayescaleError(
            f"random_seed must be None or a non-negative integer, got {random_seed!r}."
        )
    if random_seed is not None and random_seed >= SEED_LIMIT:
        raise BayescaleError(
            f"random_seed must be below 2**64 (the samplers take 64-bit seeds), got "
            f"{random_seed!r}."
        )


def sample(
    model,
    *,
    sampler: str = "numpyro",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    target_accept: float = 0.9,
    progressbar: bool | None = None,
    **kwargs: Any,
):
    """Sample ``model`` with NUTS and return InferenceData with the log-likelihood.

    Examples
    --------
    >>> import pymc as pm
    >>> with pm.Model() as m:
    ...     _ = pm.Normal("a", 0, 1)
    >>> idata = sample(m, draws=50, tune=50, chains=1, random_seed=1)  # doctest: +SKIP
    """
    import pymc as pm

    if sampler not in SAMPLERS:
        raise BayescaleError(f"sampler must be one of {SAMPLERS}, got {sampler!r}.")
    _check_options(sampler, kwargs)
    pb = default_progressbar() if progressbar is None else progressbar
    common = dict(
        draws=draws,
        tune=tune,
        chains=chains,
        random_seed=random_seed,
        progressbar=pb,
        target_accept=target_accept,
        model=model,
        compute_convergence_checks=False,  # bayescale runs its own (diagnose)
    )
    with warnings.catch_warnings():
        # numpyro/jax chatter that says nothing about the fit
        warnings.filterwarnings("ignore", message="There are not enough devices")
        warnings.filterwarnings("ignore", message="os.fork")
        warnings.filterwarnings("ignore", message=".*idata_kwargs.*ignored.*")
        if sampler in {"numpyro", "blackjax"}:
            from .compiled import enable_compilation_cache

            if sampler == "blackjax":
                import importlib.util

                if importlib.util.find_spec("blackjax") is None:
                    raise BayescaleError(
                        "sampler='blackjax' needs the blackjax package (pymc 5.28 works "
                        "with blackjax 1.5): pip install 'blackjax==1.5.*', or use "
                        "sampler='auto'."
                    )

            enable_compilation_cache()  # pm.sample re-JITs each call; XLA's cache still hits
            if random_seed is not None:
                # a JAX key takes a signed 64-bit seed (an OverflowError from deep inside
                # PyMC); a larger one is mapped to one below, the same way every time
                common["random_seed"] = jax_seed(random_seed)
            gpu = jax_platform() != "cpu"
            method = kwargs.pop("chain_method", "vectorized" if gpu else "parallel")
            nuts_kwargs = dict(kwargs.pop("nuts_kwargs", {}))
            if sampler == "numpyro":
                nuts_kwargs.setdefault("dense_mass", n_free(model) <= DENSE_MASS_MAX)
            idata = pm.sample(
                nuts_sampler=sampler,
                nuts_sampler_kwargs={"chain_method": method, "nuts_kwargs": nuts_kwargs, **kwargs},
                idata_kwargs={"log_likelihood": True},
                **common,
            )
        elif sampler == "nutpie":
            from .compiled import numba_compile_context

            # nutpie's own options (maxdepth, ...) go to nutpie.sample, as on the compiled
            # path; pm.sample dropped them without a word
            nkw = dict(kwargs.pop("nuts_sampler_kwargs", {}))
            nkw.update({k: kwargs.pop(k) for k in list(kwargs) if k not in PM_NUTPIE_OPTIONS})
            try:
                with numba_compile_context():
                    idata = pm.sample(nuts_sampler="nutpie", nuts_sampler_kwargs=nkw, **common,
                                      **kwargs)
            except (AttributeError, TypeError) as exc:
                err = nutpie_option_error(exc, nkw)
                if err is None:
                    raise
                raise err from None
            pm.compute_log_likelihood(idata, model=model, progressbar=False)
        else:
            idata = pm.sample(
                cores=min(chains, os.cpu_count() or 1),
                idata_kwargs={"log_likelihood": True},
                **common,
                **kwargs,
            )
    return idata


#: Extra options :func:`sample` passes on to NumPyro's and BlackJAX's path of ``pm.sample``
#: (an unknown one raised a TypeError from inside PyMC). nutpie's are nutpie.sample's,
#: checked by nutpie itself (:func:`nutpie_option_error`); ``"pymc"``'s are pm.sample's.
JAX_OPTIONS = ("chain_method", "nuts_kwargs", "initvals", "jitter", "var_names", "quiet",
               "keep_untransformed", "postprocessing_backend", "postprocessing_vectorize",
               "postprocessing_chunks")
#: ``pm.sample``'s own options that its nutpie path reads (the rest go to nutpie.sample).
PM_NUTPIE_OPTIONS = ("initvals", "var_names")


def tree_depth_option(sampler: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with ``max_tree_depth`` checked and passed under ``sampler``'s own name.

    ``max_tree_depth=`` (NumPyro's name, and :func:`bayescale.fit_batch`'s argument) works
    on every sampler: nutpie calls it ``maxdepth``, PyMC's NUTS ``max_treedepth`` and
    ``pm.sample``'s NumPyro path reads it from ``nuts_kwargs``. nutpie dropped it without a
    word, and 0 failed deep inside JAX.

    Examples
    --------
    >>> tree_depth_option("nutpie", {"max_tree_depth": 6})
    {'maxdepth': 6}
    >>> tree_depth_option("numpyro", {"max_tree_depth": 6})
    {'nuts_kwargs': {'max_tree_depth': 6}}
    >>> tree_depth_option("jax", {"max_tree_depth": 0})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescale.errors.BayescaleError: max_tree_depth must be an integer >= 1 ...
    """
    out = dict(kwargs)
    if "max_tree_depth" not in out:
        return out
    depth = check_tree_depth(out.pop("max_tree_depth"))
    if sampler == "blackjax":
        raise BayescaleError(
            "sampler='blackjax' takes no max_tree_depth here (pm.sample's BlackJAX path "
            "does not pass it on); use sampler='numpyro', 'jax' or 'nutpie'."
        )
    if sampler == "numpyro":
        out["nuts_kwargs"] = {**out.get("nuts_kwargs", {}), "max_tree_depth": depth}
        return out
    own = {"nutpie": "maxdepth", "pymc": "max_treedepth"}.get(sampler, "max_tree_depth")
    if own in out and out[own] != depth:
        raise BayescaleError(
            f"max_tree_depth={depth!r} and {own}={out[own]!r} name one setting of "
            f"sampler={sampler!r}; give one of them."
        )
    out[own] = depth
    return out


def check_tree_depth(depth: Any) -> Any:
    """``depth`` if it is a tree depth NUTS can use, else a clear error (0 failed inside JAX).

    Examples
    --------
    >>> check_tree_depth(6)
    6
    """
    if not is_count(depth, 1):  # 1.5 ran on the JAX path, r_hat 2.1
        raise BayescaleError(
            f"max_tree_depth must be an integer >= 1 (10 by default), got {depth!r}."
        )
    return depth


def _check_options(sampler: str, kwargs: dict[str, Any]) -> None:
    """Raise a clear error for options the JAX samplers would fail on deep inside PyMC.

    Examples
    --------
    >>> _check_options("numpyro", {"chain_method": "vectorized"})
    >>> _check_options("numpyro", {"priors": {}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    bayescale.errors.BayescaleError: sampler='numpyro' has no option ['priors']; ...
    """
    if sampler not in {"numpyro", "blackjax"}:
        return
    bad = sorted(set(kwargs) - set(JAX_OPTIONS))
    if bad:
        raise BayescaleError(
            f"sampler={sampler!r} has no option {bad}; its options here are "
            f"{list(JAX_OPTIONS)}. A model setting (priors, likelihood, x) is an argument "
            "of the fit, not of its sampler."
        )


def nutpie_option_error(exc: Exception, options: Mapping[str, Any]) -> BayescaleError | None:
    """The clear error for an option nutpie.sample does not have, or None for another error.

    nutpie sets unknown options on its settings object (an AttributeError) or rejects
    them as keywords (a TypeError); both name the option.
    """
    unknown = [k for k in options if repr(k) in str(exc)]
    if not isinstance(exc, (AttributeError, TypeError)) or not unknown:
        return None
    return BayescaleError(
        f"sampler='nutpie' has no option {unknown[0]!r}; the options are those of "
        "nutpie.sample (e.g. maxdepth, low_rank_modified_mass_matrix). A model setting "
        "(priors, likelihood, x) is an argument of the fit, not of its sampler."
    )


@contextmanager
def start_failures_explained(model, what: str, link: str | None = None) -> Iterator[None]:
    """Turn "sampling could not start" errors of nutpie and PyMC into a clear BayescaleError.

    nutpie raises ``RuntimeError("All initialization points failed ...")`` with a Rust
    backtrace, PyMC a ``SamplingError`` (a RuntimeError); both mean that the log density
    is not finite at the initial point. The error names the terms that are not finite
    (``model.point_logps()``, compiled only on this failure path) and what to check.
    """
    try:
        yield
    except RuntimeError as exc:
        text = str(exc)
        if "initialization points failed" not in text and "Initial evaluation" not in text:
            raise
        bad = _non_finite_terms(model)
        raise BayescaleError(_start_failure_message(model, bad, what, link)) from None


def raise_if_never_started(model, idata: Any, what: str, link: str | None) -> None:
    """Raise the start-failure error when a chain never moved from a non-finite start.

    NumPyro does not stop when the log density is NaN where the chains start: every
    transition then diverges and the chains never move. A fit like that is no fit, nor is
    one where some chains found a finite start (jittered) and others did not: their
    draws would be mixed with the stuck chains'.
    """
    div = idata.sample_stats.get("diverging")
    if div is None or not bool(np.asarray(div).reshape(div.sizes["chain"], -1)
                               .all(axis=1).any()):
        return
    bad = _non_finite_terms(model)
    if bad:
        raise BayescaleError(_start_failure_message(model, bad, what, link))


def _non_finite_terms(model) -> dict[str, float]:
    """Terms of the log density at the initial point that are not finite (compiles it)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            logps = model.point_logps()
        return {k: float(v) for k, v in logps.items() if not np.isfinite(float(v))}
    except Exception:  # noqa: BLE001  (the explanation must not hide the failure)
        return {}


def _fixed_values(model) -> dict[str, float]:
    """Model variables that are constants: the parameters fixed by ``priors={name: value}``."""
    from pytensor.graph.basic import Constant
    from pytensor.graph.traversal import graph_inputs

    fixed = {}
    try:
        for var in model.deterministics:
            if var.ndim == 0 and all(isinstance(i, Constant) for i in graph_inputs([var])):
                fixed[var.name] = float(var.eval())
    except Exception:  # noqa: BLE001  (the explanation must not hide the failure)
        return {}
    return fixed


def _start_failure_message(model, bad: dict[str, float], what: str, link: str | None) -> str:
    terms = ", ".join(f"{k} = {v}" for k, v in bad.items()) or "not known"
    observed = {v.name for v in model.observed_RVs}
    advice = []
    if not bad or set(bad) & observed:
        positive = ", or zero or negative (a log-link law's prediction must be positive)"
        fixed = _fixed_values(model)
        values = ", ".join(f"{k}={v:g}" for k, v in fixed.items())
        advice.append(
            "the law gives NaN or infinite predictions"
            + (positive if link == "log" else "")
            + " for some rows at parameter values near the priors' centres"
            + (f" and at the values fixed by priors= ({values})" if fixed else "")
            + ": check the formula, the inputs' ranges, the x= mapping"
            + (" and the fixed values" if fixed else "")
        )
    if not bad or set(bad) - observed:
        advice.append("a prior is incompatible with the data or the law (priors=)")
    return (
        f"Sampling could not start for {what}: the log density is not finite at the initial "
        f"point (terms: {terms}). Likely {'; or '.join(advice)}."
    )


def sample_stepping_down(
    draw: Callable[[float], Any],
    target_accept: float | str,
    *,
    model,
    names: list[str],
    what: str,
    link: str | None,
) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """Sample with ``draw(target_accept)``; with ``"auto"``, again with smaller steps.

    ``target_accept="auto"`` tries :data:`TARGET_ACCEPT_STEPS` in turn while the fit has
    divergent transitions (same seed each time); a number is used as given. A model that
    cannot start raises :class:`BayescaleError` (:func:`raise_if_never_started`).
    Returns the InferenceData, its diagnostics and the settings to record
    (``target_accept_used`` and, after a retry, ``target_accept_steps``).
    """
    tries = []
    for accept in accept_steps(target_accept):
        with start_failures_explained(model, what, link):
            idata = draw(accept)
        diag = diagnose(idata, names)
        raise_if_never_started(model, idata, what, link)
        tries.append((accept, diag["divergences"]))
        if not diag["divergences"]:
            break
    return idata, diag, accept_record(tries)


def accept_steps(target_accept: float | str) -> tuple[float, ...]:
    """The rates to try: :data:`TARGET_ACCEPT_STEPS` for ``"auto"``, else the one given."""
    return TARGET_ACCEPT_STEPS if target_accept == "auto" else (float(target_accept),)


def accept_record(tries: list[tuple[float, int]]) -> dict[str, Any]:
    """Settings that record the tries ``(rate, divergences)``.

    The rate kept (``target_accept_used``) and, after a retry, every try.

    Examples
    --------
    >>> accept_record([(0.9, 4), (0.95, 0)])
    {'target_accept_used': 0.95, 'target_accept_steps': '0.9 (4 divergent) -> 0.95 (0 divergent)'}
    """
    record: dict[str, Any] = {"target_accept_used": tries[-1][0]}
    if len(tries) > 1:
        record["target_accept_steps"] = " -> ".join(f"{a:g} ({d} divergent)" for a, d in tries)
    return record


def diagnose(idata, var_names: list[str]) -> dict[str, Any]:
    """Divergences, max r_hat and min bulk/tail ESS over ``var_names``.

    Returns a dict with the numbers and a list of human-readable ``problems``.
    """
    import arviz as az

    post = idata.posterior
    names = [v for v in var_names if v in post]
    nchains = post.sizes["chain"]
    ndraws = post.sizes["draw"]
    div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # r_hat compares chains: one chain has none to compare with (NaN, reported below)
        rhat = az.rhat(post, var_names=names) if nchains > 1 else None
        ess_b = az.ess(post, var_names=names, method="bulk")
        ess_t = az.ess(post, var_names=names, method="tail")
        max_rhat = np.nan if rhat is None else _extreme(np.nanmax, rhat, names)
        min_bulk = _extreme(np.nanmin, ess_b, names)
        min_tail = _extreme(np.nanmin, ess_t, names)
    problems = []
    if nchains < 2:
        problems.append(
            "only one chain: r_hat needs two or more, so convergence is unchecked; "
            "sample chains=4 (the default)."
        )
    if div:
        problems.append(
            f"{div} divergent transitions: the posterior has regions NUTS cannot explore; "
            "raise target_accept, or check priors and data for misfit."
        )
    if nchains > 1 and max_rhat > RHAT_MAX:
        modes = separated_chains(post, names)
        if modes is None and max_rhat > RHAT_UNMIXED:
            why = (
                "the chains have not mixed. If they are only slow, run more tuning/draws "
                "(the count below assumes so); but a poorly identified model mixes no better "
                "with more draws: look first for what the data cannot pin down, such as a "
                "parameter pooled over too few groups (2-3 levels barely inform a group "
                "scale: give group_scale= or pool fewer parameters), parameters that trade "
                "off (fix one with priors=), or a law too flexible for the rows."
            )
        elif modes is None:
            why = "chains disagree; run more tuning/draws or check for multimodality."
        else:
            name, medians = modes
            why = (
                f"the chains sit in different modes (per-chain medians of {name}: "
                f"{', '.join(f'{m:.4g}' for m in medians)}). More draws will not merge them: "
                "the data admit more than one explanation and forecasts differ between them. "
                "Compare the chains' forecasts (fit.posterior.sel(chain=k)), or make the "
                "posterior unimodal with a more informative prior, more data, or a simpler "
                "likelihood."
            )
        problems.append(f"max r_hat = {rhat_text(max_rhat)} > {RHAT_MAX}: {why}")
    ess_goal = min(ESS_MIN_PER_CHAIN * nchains, 0.5 * nchains * ndraws)
    if min_bulk < ess_goal or min_tail < ess_goal:
        # name only what falls short ("tail 225 < 200" read as a contradiction), each
        # variable with its own numbers (the minima over all were put after the worst's name)
        short = []
        with warnings.catch_warnings():  # an all-NaN variable (a constant) warns
            warnings.simplefilter("ignore")
            for v in names:
                own = {"bulk": float(np.nanmin(ess_b[v].values)),
                       "tail": float(np.nanmin(ess_t[v].values))}
                parts = [f"{k} {x:.0f}" for k, x in own.items() if x < ess_goal]
                if parts:
                    short.append((min(own.values()), v, ", ".join(parts)))
        short.sort(key=lambda t: t[0])
        low = "; ".join(f"{v}: {parts}" for _, v, parts in short[:3]) + (
            f"; {len(short) - 3} more" if len(short) > 3 else "")
        # ESS grows about in proportion to the draws; a quarter more for the noise in it
        lowest = max(min(min_bulk, min_tail), 1.0)
        more = int(np.ceil(1.25 * ndraws * ess_goal / lowest / 100.0) * 100)
        problems.append(
            f"low effective sample size ({low} < {ess_goal:.0f}): intervals are "
            f"noisy; draw more samples (about draws={more} per chain)."
        )
    return {
        "divergences": div,
        "max_rhat": max_rhat,
        "min_ess_bulk": min_bulk,
        "min_ess_tail": min_tail,
        "chains": int(nchains),
        "draws": int(ndraws),
        "problems": problems,
    }


def _extreme(reduce, ds, names: list[str]) -> float:
    """Apply ``reduce`` (``np.nanmax`` or ``np.nanmin``) over every value of ``names``.

    NaN where all are NaN (call inside a warnings filter: NumPy warns on all-NaN input).
    """
    return float(reduce([float(reduce(ds[v].values)) for v in names]))


def separated_chains(post, names: list[str], gap: float = MODE_GAP):
    """The variable whose chains sit in separate modes, with its per-chain medians.

    Two chains are separated when their medians differ by more than ``gap`` times the
    larger of their own (robust, IQR-based) standard deviations: slow mixing within one
    mode leaves the chains' central ranges overlapping, two modes do not. Returns
    ``(name, medians)`` for the most separated scalar variable, or ``None``.

    Examples
    --------
    >>> import arviz as az
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(4, 200)); x[2] += 10.0     # chain 2 in another mode
    >>> name, med = separated_chains(az.from_dict({"E": x}).posterior, ["E"])
    >>> name, [round(m) for m in med]
    ('E', [0, 0, 10, 0])
    """
    best, best_ratio = None, gap
    for v in names:
        x = np.asarray(post[v].values, dtype=float)
        x = x.reshape(x.shape[0], x.shape[1], -1)  # (chain, draw, component)
        med = np.median(x, axis=1)
        sd = iqr(x, axis=1, scale="normal")
        pair_sd = np.maximum(sd[:, None], sd[None, :])  # (chain, chain, component)
        diff = np.abs(med[:, None] - med[None, :])
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(pair_sd > 0, diff / pair_sd, 0.0).max(axis=(0, 1))
        ratio = np.nan_to_num(ratio, nan=0.0)  # a NaN draw never counts as a mode
        k = int(np.argmax(ratio))
        if ratio[k] > best_ratio:
            label = v if x.shape[2] == 1 else f"{v}[{k}]"
            best, best_ratio = (label, med[:, k].tolist()), float(ratio[k])
    return best


def warn_problems(diag: dict[str, Any], what: str) -> None:
    """Raise a visible :class:`SamplingWarning` for each problem found."""
    for p in diag["problems"]:
        warn(f"{what}: {p}", SamplingWarning)
