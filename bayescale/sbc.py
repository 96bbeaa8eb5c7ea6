"""Simulation-based calibration (SBC) through the compile-once samplers.

SBC (Talts et al. 2018, arXiv:1804.06788) checks the whole inference pipeline,
model and sampler together: draw parameters from the prior, simulate data at the
design, fit, and take the rank of each true parameter among the posterior draws.
If the posterior is right, every rank is uniform over ``0..L`` (``L`` retained
draws); a histogram that is U-shaped, peaked or tilted points to a posterior that is
too narrow, too wide or biased.

:func:`sbc` simulates parameters *and* data with ``pm.sample_prior_predictive`` on
the very model that is fitted (likelihood noise included), and refits every
simulation through :mod:`bayescale.compiled`: one structure, so only the first fit
compiles (nutpie's numba backend on CPU: a data swap per simulation; JAX on a GPU:
all simulations in one vmapped NUTS program, as :func:`bayescale.fit_batch`; the GPU pays
for many simulations, not for one fit).

``BelowMin`` priors (the irreducible loss ``E`` of loss laws) are bounded by the
smallest observed loss, a data-dependent prior that has no generative form. SBC
holds that bound at a fixed value (``bound=``, default: the smallest value of the
design's response column) for both the simulation and the fits, so it checks the
model given the bound, not the choice of bound.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data import coerced, from_table
from .errors import BayescaleError, quiet_logger
from .law import Law, get_law

#: Retained posterior draws per simulation when ``thin=None`` (ranks run over 0..100).
DEFAULT_RANKS = 100


@dataclass
class SBCResult:
    """Ranks of the true parameters among thinned posterior draws, per simulation.

    Attributes
    ----------
    ranks : DataFrame
        One row per simulation and parameter: ``sim``, ``param``, ``truth``, ``rank``
        (number of retained draws below the truth, ``0..n_ranks``), ``post_mean``,
        ``post_sd``, ``ess_bulk`` (of the full chains) and ``divergences``.
    draws : dict
        ``{param: array (n_sims, n_ranks)}``, the retained (thinned) posterior draws.
    n_ranks : int
        ``L``, the number of retained draws; ranks take the values ``0..L``.
    settings : dict
        Sampler, draws, tune, chains, thin, seeds, bounds, compile counts, timings.
    """

    ranks: pd.DataFrame
    draws: dict[str, np.ndarray]
    n_ranks: int
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> list[str]:
        """Parameters ranked (law parameters on their natural scale, then noise)."""
        return list(dict.fromkeys(self.ranks["param"]))

    @property
    def n_sims(self) -> int:
        """Number of simulations."""
        return int(self.ranks["sim"].nunique())

    def __repr__(self) -> str:
        p = self.uniformity()["p_value"]
        ps = ", ".join(f"{k}: p={v:.3g}" for k, v in p.items())
        return (
            f"SBCResult({self.n_sims} simulations, ranks 0..{self.n_ranks}, "
            f"sampler={self.settings.get('sampler')!r}; {ps})"
        )

    def uniformity(self, n_bins: int | None = None) -> pd.DataFrame:
        """Chi-square test of uniform ranks per parameter (Talts et al. 2018, sec. 4).

        The ``n_ranks + 1`` rank values are split into ``n_bins`` contiguous bins of
        (nearly) equal width; expected counts are proportional to the width, so the
        test is exact for discrete ranks.

        Parameters
        ----------
        n_bins : int, optional
            Default: ``n_sims // 5`` (at least 5 expected per bin), between 2 and 20.

        Returns
        -------
        DataFrame
            Indexed by parameter: ``n_sims``, ``n_bins``, ``chi2``, ``dof``,
            ``p_value`` and ``min_ess`` (smallest bulk ESS of any simulation: ranks
            are only uniform if the retained draws are close to independent).

        Examples
        --------
        >>> res = bs.sbc("power_law", design, n_sims=50, random_seed=0)  # doctest: +SKIP
        >>> res.uniformity()["p_value"]  # doctest: +SKIP
        """
        from scipy import stats

        edges = self._bins(n_bins)
        rows = {}
        for p, sub in self.ranks.groupby("param", sort=False):
            obs, expected = _binned(sub["rank"].to_numpy(), edges, self.n_ranks)
            chi2, pval = stats.chisquare(obs, expected)
            rows[p] = {
                "n_sims": int(len(sub)),
                "n_bins": len(obs),
                "chi2": float(chi2),
                "dof": len(obs) - 1,
                "p_value": float(pval),
                "min_ess": float(sub["ess_bulk"].min()),
            }
        out = pd.DataFrame.from_dict(rows, orient="index")
        out.index.name = "param"
        return out

    def _bins(self, n_bins: int | None) -> list[np.ndarray]:
        if n_bins is None:  # at most one bin per possible rank (few retained draws)
            n_bins = int(min(np.clip(self.n_sims // 5, 2, 20), self.n_ranks + 1))
        n_bins = int(n_bins)
        if not 2 <= n_bins <= self.n_ranks + 1:
            raise BayescaleError(
                f"n_bins must be between 2 and n_ranks + 1 = {self.n_ranks + 1}, got {n_bins}."
            )
        return np.array_split(np.arange(self.n_ranks + 1), n_bins)

    def plot(
        self,
        kind: str = "hist",
        *,
        n_bins: int | None = None,
        params: Sequence[str] | None = None,
        prob: float = 0.99,
    ):
        """Rank histograms or ECDF-difference plots, one panel per parameter.

        See :func:`bayescale.plots.plot_sbc`.

        Examples
        --------
        >>> res.plot()  # doctest: +SKIP
        >>> res.plot("ecdf")  # doctest: +SKIP
        """
        from .plots import plot_sbc

        return plot_sbc(self, kind=kind, n_bins=n_bins, params=params, prob=prob)


def _binned(ranks: np.ndarray, edges: list[np.ndarray], n_ranks: int):
    counts = np.bincount(np.asarray(ranks, dtype=int), minlength=n_ranks + 1)
    obs = np.array([counts[b].sum() for b in edges], dtype=float)
    widths = np.array([len(b) for b in edges], dtype=float)
    return obs, obs.sum() * widths / widths.sum()


# ------------------------------------------------------------------------------------------
# setup shared by the calling process and the workers


def _setup(
    law: str | Law,
    design: pd.DataFrame,
    kw: Mapping[str, Any],
    bounds: Mapping[str, float] | None,
):
    """Spec, validated frame and PyMC model with the ``BelowMin`` bounds held fixed.

    ``bounds=None`` keeps the bounds computed from the design's response column.
    """
    from .fit import _prepare
    from .model import build_model

    spec, frame, model = _prepare(design, law, correlated=False, **kw)
    if bounds is None:
        return spec, frame, model
    spec = dataclasses.replace(spec, bounds={p: {"*": float(b)} for p, b in bounds.items()})
    return spec, frame, build_model(spec, frame)


def _ranked_names(spec) -> list[str]:
    names = [p for p in spec.law.params if spec.priors[p].dist != "Fixed"]
    names += [p for p in spec.noise_params if spec.priors[p].dist != "Fixed"]
    for p, cols in spec.pooled.items():
        names += [f"{p}_sd_{g}" for g in cols]
    return names


def _summarise(idata, names: Sequence[str], thin: int, compiled: bool) -> dict[str, Any]:
    import arviz as az

    post = idata.posterior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ess = az.ess(post[list(names)], method="bulk")
    out: dict[str, Any] = {"draws": {}, "mean": {}, "sd": {}, "ess": {}}
    for p in names:
        v = np.asarray(post[p].values, dtype=float)
        out["draws"][p] = v[:, ::thin].reshape(-1)
        out["mean"][p] = float(v.mean())
        out["sd"][p] = float(v.std())
        out["ess"][p] = float(ess[p].values)
    div = idata.sample_stats["diverging"] if "diverging" in idata.sample_stats else None
    out["divergences"] = int(div.sum()) if div is not None else 0
    out["compiled"] = bool(compiled)
    return out


def response_arrays(model, frame: pd.DataFrame, y: np.ndarray) -> dict[str, np.ndarray]:
    """The ``pm.Data`` arrays that hold the response ``y``.

    ``"y"``, and ``"y_unit"`` where the likelihood observes a copy of it (Beta: scores
    squeezed inside (0, 1)). A swap of ``"y"`` alone would leave a Beta model observing
    the first data it was built on: every simulation fitted the same placeholder.
    """
    from .likelihoods import squeeze_unit

    y = np.asarray(y, dtype=float)
    out = {"y": y}
    if any(v.name == "y_unit" for v in model.data_vars):
        n = frame["n"].to_numpy(dtype=float) if "n" in frame.columns else None
        out["y_unit"] = squeeze_unit(y, n)
    return out


def _fit_sims(spec, frame, model, ys, seeds, settings, names, thin) -> list[dict[str, Any]]:
    """Refit ``model`` (nutpie, compiled once) to each simulated response in turn."""
    from .compiled import sample_compiled

    out = []
    for y, seed in zip(ys, seeds):
        for name, value in response_arrays(model, frame, y).items():
            model.set_data(name, value)
        idata, timing = sample_compiled(
            spec, model, frame, sampler="nutpie", random_seed=int(seed), **settings
        )
        out.append(_summarise(idata, names, thin, timing["compiled"]))
    return out


def sbc_task(
    law: str | Law,
    design: pd.DataFrame,
    kw: Mapping[str, Any],
    bounds: Mapping[str, float],
    ys: np.ndarray,
    seeds: Sequence[int],
    settings: Mapping[str, Any],
    names: Sequence[str],
    thin: int,
) -> list[dict[str, Any]]:
    """One chunk of simulations, run in a worker: one compile, then a data swap per fit."""
    from .parallel import no_progress

    with no_progress():
        spec, frame, model = _setup(law, design, kw, bounds)
        return _fit_sims(spec, frame, model, ys, seeds, dict(settings), names, thin)


# ------------------------------------------------------------------------------------------
# public entry point


def sbc(
    law: str | Law,
    design: pd.DataFrame,
    *,
    n_sims: int = 100,
    draws: int = 500,
    tune: int = 500,
    chains: int = 2,
    thin: int | None = None,
    random_seed: int | None = None,
    sampler: str = "auto",
    executor: Executor | str | None = None,
    priors: Mapping[str, Any] | None = None,
    simulate_priors: Mapping[str, Any] | None = None,
    bound: float | Mapping[str, float] | None = None,
    x: Mapping[str, str] | None = None,
    y: str | None = None,
    pooled: Any = None,
    likelihood: str | None = None,
    target_accept: float = 0.9,
) -> SBCResult:
    """Simulation-based calibration of a law's model at a design (Talts et al. 2018).

    For each of ``n_sims`` simulations: draw every parameter from the prior and the
    response at the ``design`` rows from the likelihood (one
    ``pm.sample_prior_predictive`` call on the model that is fitted), refit with the
    compiled sampler, and record the rank of each true parameter among ``L``
    retained posterior draws. Calibrated inference gives ranks uniform on ``0..L``.

    Parameters
    ----------
    law : str or Law
        The law (registered name or :class:`Law`).
    design : DataFrame
        The input rows to simulate at (e.g. columns ``N`` and ``D``); the same rows
        for every simulation. A response column is optional (see ``bound``).
    n_sims : int
        Number of simulations (Talts et al. use 1000; 100 catches gross errors).
    draws, tune, chains, target_accept
        NUTS settings of every fit.
    thin : int, optional
        Keep every ``thin``-th draw of each chain before ranking, so the retained
        draws are nearly independent (correlated draws make ranks non-uniform even
        for a correct posterior). Default: ``chains * draws / 100`` rounded, i.e.
        about 100 retained draws; compare with ``uniformity()["min_ess"]``.
    random_seed : int, optional
        Seeds the simulations and every fit; the same seed gives the same result. Without
        one a seed is chosen and recorded (``result.settings["random_seed"]``).
    sampler : {"auto", "nutpie", "jax"}
        ``"nutpie"``: one numba compilation, then a data swap and a fit per
        simulation. ``"jax"``: all simulations in one vmapped JAX program (one trace;
        pays off on a GPU). ``"auto"``: ``"jax"`` on a GPU, else ``"nutpie"``
        (:func:`bayescale.compiled.choose_sampler`).
    executor : None, "serial", "processes" or concurrent.futures.Executor
        ``None`` or ``"serial"``: every fit in this process (one compilation).
        Otherwise (nutpie only) the simulations are split into one chunk per
        worker (``BAYESCALE_WORKERS``, default 2); each worker compiles once.
    priors : dict, optional
        Prior overrides of the fitted model, as in :func:`bayescale.fit`; also the
        priors simulated from, unless ``simulate_priors`` overrides them.
    simulate_priors : dict, optional
        Priors to *simulate* from where they differ from the fitted ones: a
        deliberately mis-specified SBC (the ranks should then fail the test). The
        fitted model, hence the compiled sampler, is unchanged.
    bound : float or dict, optional
        Value of the bound of ``BelowMin`` priors (``E`` below the smallest loss),
        held fixed for simulation and fits; a dict gives one per parameter.
        Default: the smallest value of the design's response column.
    x, y, pooled, likelihood
        As in :func:`bayescale.fit` (column mapping, response column, pooling,
        likelihood). Count likelihoods (``binomial``, ``betabinomial``) are not
        supported.

    Returns
    -------
    SBCResult
        ``.ranks`` (tidy table), ``.uniformity()`` (chi-square test per parameter),
        ``.plot()`` (rank histograms or ECDF differences).

    Examples
    --------
    >>> import numpy as np, pandas as pd, bayescale as bs
    >>> design = pd.DataFrame({"x": np.geomspace(1e3, 1e7, 12), "loss": 2.0})
    >>> res = bs.sbc("power_law", design, n_sims=100, draws=500,
    ...              random_seed=0)  # doctest: +SKIP
    >>> res.uniformity()  # doctest: +SKIP
    >>> res.plot("ecdf")  # doctest: +SKIP
    """
    from .compiled import COMPILE_COUNTS, choose_sampler, model_arrays, sample_batch
    from .likelihoods import get_likelihood
    from .parallel import DEFAULT_WORKERS, _law_ref, executor_context
    from .sampling import check_settings, seed_or_chosen

    t_start = time.perf_counter()
    law_obj = get_law(law)
    if isinstance(n_sims, bool) or not isinstance(n_sims, (int, np.integer)) or n_sims < 2:
        raise BayescaleError(f"n_sims must be an integer >= 2, got {n_sims!r}.")
    check_settings(draws, tune, chains, target_accept, random_seed)
    random_seed = seed_or_chosen(random_seed)  # recorded: the run can be repeated
    design = from_table(design, "design")
    if not isinstance(design, pd.DataFrame) or len(design) == 0:
        raise BayescaleError("design must be a non-empty DataFrame of the law's input rows.")
    if likelihood == "auto":
        raise BayescaleError(
            "sbc simulates from one likelihood; 'auto' chooses after seeing data. Pass "
            "likelihood='studentt' or 'normal' (or None for the law's)."
        )
    lik = get_likelihood(likelihood or law_obj.likelihood)
    if lik.needs_trials:
        raise BayescaleError(
            f"sbc does not support the count likelihood {lik.name!r} yet; use a "
            "continuous likelihood ('studentt', 'normal' or 'beta')."
        )
    if sampler == "auto":
        sampler = choose_sampler(batch=True)
    if sampler not in ("nutpie", "jax"):
        raise BayescaleError(f"sbc sampler must be 'auto', 'nutpie' or 'jax', got {sampler!r}.")
    if sampler == "jax" and executor not in (None, "serial"):
        raise BayescaleError(
            "sampler='jax' runs every simulation in one vmapped program in this process; "
            "pass executor=None, or use sampler='nutpie' to spread fits over workers."
        )
    total = chains * draws
    if thin is None:
        thin = max(1, int(round(total / DEFAULT_RANKS)))
    if not isinstance(thin, (int, np.integer)) or not 1 <= thin <= draws:
        raise BayescaleError(f"thin must be an integer between 1 and draws={draws}, got {thin!r}.")
    thin = int(thin)
    n_ranks = chains * len(range(0, draws, thin))

    # --- design frame: a placeholder response when the design has none
    y_col = y or law_obj.response
    design = design.copy()
    has_y = y_col in design.columns
    if not has_y:
        design[y_col] = 0.5 if law_obj.response == "accuracy" else 1.0
    kw = dict(
        x=x,
        y=y_col,
        priors=priors,
        pooled=pooled,
        run=None,
        likelihood=likelihood,
        group_scale=None,
    )
    spec0 = _setup(law_obj, design, kw, None)[0]
    if spec0.likelihood == "ar1":
        raise BayescaleError(
            "sbc does not simulate the 'ar1' likelihood (its residuals depend on the row "
            "order); check the law and priors with likelihood='studentt' or 'normal'."
        )
    above = [p for p in law_obj.params if spec0.priors[p].dist == "AboveMax"]
    if above:
        raise BayescaleError(
            f"sbc does not simulate 'AboveMax' priors (parameter(s) {above}, bounded by the "
            f"largest response); fix them, e.g. priors={{{above[0]!r}: 1.0}}, or give a "
            f"proper prior such as priors={{{above[0]!r}: bs.Prior('LogNormal', mu=0, "
            "sigma=1)}."
        )
    below = [p for p in law_obj.params if spec0.priors[p].dist == "BelowMin"]
    bounds = _resolve_bounds(below, bound, design[y_col] if has_y else None, y_col)
    spec, frame, model = _setup(law_obj, design, kw, bounds)
    names = _ranked_names(spec)

    # --- simulate parameters and data from the prior (one prior-predictive call)
    rng = np.random.default_rng(random_seed)
    sim_seed = int(rng.integers(2**31 - 1))
    fit_seeds = [int(s) for s in rng.integers(2**31 - 1, size=n_sims)]
    sim_model = model
    if simulate_priors:
        kw_sim = dict(kw, priors={**dict(priors or {}), **dict(simulate_priors)})
        sim_model = _setup(law_obj, design, kw_sim, bounds)[2]
    truths, ys = _simulate(sim_model, names, n_sims, sim_seed)
    t_sim = time.perf_counter()

    # --- refit every simulation through the compiled path
    settings = dict(draws=draws, tune=tune, chains=chains, target_accept=target_accept)
    before = dict(COMPILE_COUNTS)
    if sampler == "jax":
        base = model_arrays(model)
        arrays = [{**base, **response_arrays(model, frame, ys[k])} for k in range(n_sims)]
        idatas, _ = sample_batch(
            [spec] * n_sims,
            [model] * n_sims,
            [frame] * n_sims,
            random_seeds=fit_seeds,
            arrays=arrays,
            **settings,
        )
        compiled = COMPILE_COUNTS["jax_export"] + COMPILE_COUNTS["jax_trace"] > sum(
            before.get(k, 0) for k in ("jax_export", "jax_trace")
        )
        fits = [_summarise(d, names, thin, compiled and k == 0) for k, d in enumerate(idatas)]
    elif executor is None or executor == "serial":
        fits = _fit_sims(spec, frame, model, ys, fit_seeds, settings, names, thin)
    else:
        workers = int(os.environ.get("BAYESCALE_WORKERS", DEFAULT_WORKERS))
        chunks = [c for c in np.array_split(np.arange(n_sims), max(1, workers)) if len(c)]
        with executor_context(executor) as ex:
            futures = [
                ex.submit(
                    sbc_task,
                    _law_ref(law_obj),
                    design,
                    kw,
                    bounds,
                    ys[c],
                    [fit_seeds[i] for i in c],
                    settings,
                    names,
                    thin,
                )
                for c in chunks
            ]
            fits = [r for f in futures for r in f.result()]
    t_fit = time.perf_counter()

    # --- ranks
    rows = []
    retained = {p: np.stack([f["draws"][p] for f in fits]) for p in names}
    for k, f in enumerate(fits):
        for p in names:
            rows.append(
                {
                    "sim": k,
                    "param": p,
                    "truth": float(truths[p][k]),
                    "rank": int(np.sum(retained[p][k] < truths[p][k])),
                    "post_mean": f["mean"][p],
                    "post_sd": f["sd"][p],
                    "ess_bulk": f["ess"][p],
                    "divergences": f["divergences"],
                }
            )
    counts = {k: v - before.get(k, 0) for k, v in COMPILE_COUNTS.items() if v - before.get(k, 0)}
    meta = {
        "law": law_obj.name,
        "sampler": sampler,
        "n_sims": n_sims,
        "thin": thin,
        "random_seed": random_seed,
        "bounds": dict(bounds),
        "simulate_priors": {k: str(v) for k, v in (simulate_priors or {}).items()},
        "fits_compiled": int(sum(f["compiled"] for f in fits)),
        "compile_counts": counts,
        "timing": {
            "simulate_s": t_sim - t_start,
            "fit_s": t_fit - t_sim,
            "total_s": time.perf_counter() - t_start,
        },
        **settings,
    }
    return SBCResult(ranks=pd.DataFrame(rows), draws=retained, n_ranks=n_ranks, settings=meta)


def _resolve_bounds(
    below: Sequence[str], bound: Any, response: pd.Series | None, y_col: str
) -> dict[str, float]:
    if not below:
        return {}
    if bound is None:
        if response is None:
            raise BayescaleError(
                f"Parameter(s) {below} have a 'BelowMin' prior, bounded by the smallest "
                f"observed {y_col!r}; the design has no {y_col!r} column. Pass bound= (e.g. "
                "the smallest loss you expect) or add the column."
            )
        vals = coerced(response).to_numpy(dtype=float)
        return {p: float(np.nanmin(vals)) for p in below}
    if isinstance(bound, Mapping):
        missing = [p for p in below if p not in bound]
        if missing:
            raise BayescaleError(f"bound= lacks the 'BelowMin' parameter(s) {missing}.")
        out = {p: float(bound[p]) for p in below}
    else:
        out = {p: float(bound) for p in below}
    bad = {p: b for p, b in out.items() if not (np.isfinite(b) and b > 0)}
    if bad:
        raise BayescaleError(f"bound= must be positive and finite, got {bad}.")
    return out


def _simulate(model, names: Sequence[str], n_sims: int, seed: int):
    """Draw ``n_sims`` parameter sets and link-scale responses from the prior predictive."""
    import pymc as pm

    with quiet_logger("pymc"):  # "Sampling: [...]" on every call
        idata = pm.sample_prior_predictive(draws=n_sims, model=model, random_seed=seed)
    prior = idata.prior
    truths = {p: np.asarray(prior[p].values, dtype=float).reshape(n_sims) for p in names}
    ys = np.asarray(idata.prior_predictive["y_obs"].values, dtype=float).reshape(n_sims, -1)
    bad = np.flatnonzero(~np.isfinite(ys).all(axis=1))
    if bad.size:
        raise BayescaleError(
            f"Simulation(s) {bad.tolist()} produced non-finite responses; the priors put "
            "mass on extreme values. Narrow the priors or change random_seed."
        )
    return truths, ys
