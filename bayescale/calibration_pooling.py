"""Pool the discrepancy rate across series: a hierarchical prior for ``tau``.

Why
---
One ladder's nested leave-future-out sees only a few inner forecasts, and they
reach less far than the real forecast. When a law starts to bend away late, the
inner forecasts can look perfect (``tau`` near zero) while the real forecast
misses. Teams rarely have one ladder: they fit many learning curves, tasks,
families or datasets with the same law. How far a law drifts beyond its data is
then learned *across* them, the way pooling learns a family's exponent.

What
----
Each series ``i`` keeps its own rate ``tau_i`` and growth exponent ``h_i``
(:mod:`bayescale.calibration`), now with a population prior

    log tau_i ~ Normal(m, s^2),   m ~ Normal(log 0.01, 1.5^2),   s ~ HalfNormal(1)

instead of the fixed ``HalfCauchy(0.005)``. Every series' inner-forecast
likelihood is already on the ``(h, tau)`` grid (for accuracy laws, whose drift is on
the logit scale, ``tau`` is measured in units 4x larger, the ratio of their
``HalfCauchy(0.02)`` prior to the loss laws'), so the hyper-posterior of
``(m, s)`` and each series' updated posterior are exact grid sums (no sampler):

    p(tau_i, h_i | all) ∝ L_i(h_i, tau_i) ∫ LogNormal(tau_i | m, s) p(m, s | others) dm ds

with ``p(m, s | others)`` computed from all *other* series (leave-one-out), so a
series is not its own prior. A series whose inner forecasts are uninformative
takes the population's typical rate; one with strong evidence keeps its own.

Only training data enter (the inner forecasts of each fit), so the held-out
targets of a backtest stay unseen.

Examples
--------
>>> import bayescale as bs
>>> fits = bs.fit_many(curves, "power_law", by="curve")  # doctest: +SKIP
>>> pooled = bs.pool_calibration(fits)                    # doctest: +SKIP
>>> pooled["curve_7"].predict(new, prob=0.9)              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .calibration import PRIOR_SCALE, PRIOR_SCALES, TAU_GRID, Calibration, groups_of, log_likelihood
from .errors import BayescaleError

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit

#: Hyper-prior of the population of log discrepancy rates.
M_PRIOR = (float(np.log(0.01)), 1.5)
S_PRIOR_SCALE = 1.0
#: Grid of the population's log median rate ``m``: from log 1e-4 up to the log of the
#: series' largest ``tau`` (:func:`m_grid_for`), so that the population can sit wherever a
#: series can (a logit drift's grid reaches 3 logits, 0.75 in the units pooled).
M_GRID_POINTS = 121
M_GRID_LOW = float(np.log(1e-4))
S_GRID = np.linspace(0.05, 3.0, 60)


#: Log-spaced grid on which the population is learned (the series' grids are fine
#: and linear; their likelihoods are interpolated onto this one), up to the series'
#: largest ``tau`` (:func:`log_tau_grid`); this is the one of a loss law's grid.
LOG_TAU = np.geomspace(1e-5, 0.6, 400)


def log_tau_grid(tau: np.ndarray) -> np.ndarray:
    """:data:`LOG_TAU`'s log spacing up to the largest value of the series' grid ``tau``."""
    return np.geomspace(LOG_TAU[0], float(np.max(tau)), LOG_TAU.size)


def m_grid_for(tau: np.ndarray) -> np.ndarray:
    """The grid of the population's log median rate for series on the grid ``tau``.

    Examples
    --------
    >>> float(np.exp(m_grid_for(np.linspace(0, 0.75, 11))[-1]))
    0.75
    """
    top = float(np.max(tau))
    if not top > 0:
        raise BayescaleError(f"the grid of tau must reach above 0, its largest value is {top}.")
    return np.linspace(M_GRID_LOW, float(np.log(top)), M_GRID_POINTS)


def _normal_log_tau(m: np.ndarray, s: np.ndarray, logt: np.ndarray) -> np.ndarray:
    """Weights of Normal(m, s) for log tau on the log grid ``logt``, normalised: (M, S, G)."""
    z = (logt[None, None, :] - m[:, None, None]) / s[None, :, None]
    w = np.exp(-0.5 * z**2)
    return w / w.sum(axis=2, keepdims=True)


def _to_fine_grid(mass_log: np.ndarray, tau: np.ndarray, log_tau: np.ndarray) -> np.ndarray:
    """Weights on the linear grid ``tau`` of a distribution given as mass on ``log_tau``."""
    dlog = np.log(log_tau[1] / log_tau[0])
    dens = mass_log / (log_tau * dlog)  # density per unit tau at the log-grid points
    out = np.interp(tau, log_tau, dens, left=0.0, right=0.0)
    out[tau <= 0] = 0.0
    return out / out.sum()


def pool_posteriors(
    loglik: Sequence[np.ndarray],
    *,
    tau: np.ndarray = TAU_GRID,
    m_grid: np.ndarray | None = None,
    s_grid: np.ndarray = S_GRID,
    leave_one_out: bool = True,
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Posterior grid weights per series under the hierarchical prior of ``tau``.

    Parameters
    ----------
    loglik : sequence of arrays ``(n_h, n_tau)``
        Each series' log-likelihood of its inner forecast errors (uniform prior on
        ``h`` implied).
    m_grid : array, optional
        Grid of the population's log median rate (default :func:`m_grid_for` ``tau``).
    leave_one_out : bool
        Use the hyper-posterior of the *other* series as the prior of each one.

    Returns
    -------
    weights : list of arrays ``(n_h, n_tau)``
    population : dict
        Posterior mean of ``m`` and ``s`` and the population's median ``tau``.

    Examples
    --------
    Ten series with a real drift of 0.03 per decade and one whose inner forecasts
    carry no information: the uninformed one takes the population's rate.

    >>> rng = np.random.default_rng(0)
    >>> from bayescale.calibration import log_likelihood
    >>> lls = []
    >>> for _ in range(10):
    ...     d = np.linspace(0.1, 1.0, 8)
    ...     r = 0.03 * d * rng.standard_normal() + 0.002 * rng.standard_normal(8)
    ...     lls.append(log_likelihood([(r, np.full(8, 0.002**2), d)]))
    >>> lls.append(np.zeros_like(lls[0]))
    >>> w, pop = pool_posteriors(lls)
    >>> t = np.sqrt(np.sum(w[-1].sum(axis=0) * TAU_GRID**2))
    >>> bool(0.01 < t < 0.1)
    True
    """
    if len(loglik) < 2:
        raise BayescaleError(
            "pooling the discrepancy rate needs at least 2 series; got "
            f"{len(loglik)}. Use Fit.calibration for one series."
        )
    m_grid = m_grid_for(tau) if m_grid is None else np.asarray(m_grid, dtype=float)
    log_tau = log_tau_grid(tau)
    logt = np.log(log_tau)
    pop = _normal_log_tau(m_grid, s_grid, logt)  # (M, S, G)
    log_hyper = (
        -0.5 * ((m_grid[:, None] - M_PRIOR[0]) / M_PRIOR[1]) ** 2
        - 0.5 * (s_grid[None, :] / S_PRIOR_SCALE) ** 2
    )
    # marginal likelihood of each series given (m, s): uniform over h, then over tau
    log_marg = []
    scaled = []
    for ll in loglik:
        ll = np.atleast_2d(ll)
        c = ll.max()
        scaled.append(np.exp(ll - c))
        lik = np.interp(log_tau, tau, scaled[-1].mean(axis=0))  # (G,)
        mm = np.tensordot(pop, lik, axes=([2], [0]))  # (M, S)
        log_marg.append(np.log(np.clip(mm, 1e-300, None)) + c)
    log_marg = np.asarray(log_marg)  # (K, M, S)
    total = log_hyper + log_marg.sum(axis=0)
    out = []
    for i, lik in enumerate(scaled):
        lh = total - log_marg[i] if leave_one_out else total
        ph = np.exp(lh - lh.max())
        ph /= ph.sum()
        prior_tau = _to_fine_grid(np.tensordot(ph, pop, axes=([0, 1], [0, 1])), tau, log_tau)
        w = lik * prior_tau[None, :]
        if not np.isfinite(w).all() or w.sum() <= 0:
            w = np.tile(prior_tau, (lik.shape[0], 1))
        out.append(w / w.sum())
    ph = np.exp(total - total.max())
    ph /= ph.sum()
    m_mean = float(np.sum(ph.sum(axis=1) * m_grid))
    s_mean = float(np.sum(ph.sum(axis=0) * s_grid))
    return out, {"m": m_mean, "s": s_mean, "tau_population_median": float(np.exp(m_mean))}


def pool_on_scale(
    loglik: Sequence[np.ndarray], tau: np.ndarray, scale: str, *, leave_one_out: bool = True
) -> tuple[list[np.ndarray], dict[str, Any]]:
    """:func:`pool_posteriors` of grids ``tau`` of a drift on ``scale`` (``"log"``/``"logit"``).

    The hyper-prior and grids are stated for the log scale of a loss; a logit drift is
    measured in units of its own prior scale's ratio to that one (x4), and the population
    (``m``, ``tau_population_median``) is given back in the drift's own units.
    """
    unit = PRIOR_SCALES[scale] / PRIOR_SCALE
    weights, pop = pool_posteriors(loglik, tau=tau / unit, leave_one_out=leave_one_out)
    return weights, dict(pop, m=pop["m"] + float(np.log(unit)),
                         tau_population_median=pop["tau_population_median"] * unit)


def pool_calibration(
    fits: Mapping[Any, Fit] | Sequence[Fit], *, leave_one_out: bool = True
) -> Mapping[Any, Fit] | list[Fit]:
    """Re-calibrate many fits of one law with a hierarchical prior on the discrepancy rate.

    Each fit's own nested leave-future-out evidence is kept; the fixed
    ``HalfCauchy`` prior of ``tau`` is replaced by a log-normal population learned
    from all the *other* fits. Use it when you forecast many series fitted with
    the same law (learning curves, tasks, families, datasets). For a law with input ratios
    (``D/N``) the drifts above and below the fitted ratios (:attr:`Calibration.ratio`) are
    pooled too, each side across the fits on its own; a fit that has not learned them yet
    (by default a fit learns them at its first forecast beyond the fitted ratios) learns
    them here, three more inner fits, so that its forecasts along ``D/N`` use the pooled
    rates too (the same draws as after ``fit.calibrate(ratio=True)``).

    Parameters
    ----------
    fits : dict or list of Fit
        Fits of one law (loss laws: log-scale drift; accuracy laws: logit-scale drift, whose
        population prior is stated in units 4x larger, as its ``HalfCauchy`` prior is);
        e.g. the result of :func:`bayescale.fit_many`.
    leave_one_out : bool
        Learn each fit's prior from the other fits only (default).

    Returns
    -------
    The same container with calibrated copies of the fits; ``fit.calibration.summary()``
    names the pooled prior and the population's median rate (``"prior"``).

    Examples
    --------
    >>> pooled = bs.pool_calibration({"a": fit_a, "b": fit_b, "c": fit_c})  # doctest: +SKIP
    >>> pooled["a"].predict(new)  # doctest: +SKIP
    """
    if not isinstance(fits, (Mapping, list, tuple)):
        raise BayescaleError(
            "pool_calibration takes a dict {name: Fit} or a list of fits (e.g. bs.fit_many's "
            f"result); got a {type(fits).__name__}."
        )
    if not isinstance(leave_one_out, (bool, np.bool_)):
        raise BayescaleError(f"leave_one_out must be True or False, got {leave_one_out!r}.")
    keys = list(fits.keys()) if isinstance(fits, Mapping) else list(range(len(fits)))
    items = [fits[k] for k in keys]
    # what pooling uses of a fit (not .calibration itself: reading it may calibrate)
    odd = [(k, type(f).__name__) for k, f in zip(keys, items)
           if not (hasattr(f, "law") and callable(getattr(f, "with_calibration", None)))]
    if odd:
        k, kind = odd[0]
        hint = (" (pass the fits themselves, not their .calibration)"
                if kind == "Calibration" else "")
        raise BayescaleError(
            f"pool_calibration pools fits; item {k!r} is a {kind}{hint}."
        )
    if len(items) < 2:
        raise BayescaleError(
            f"pool_calibration needs at least 2 fits to pool their discrepancy rates; got "
            f"{len(items)}. Use fit.calibration for one fit."
        )
    laws = {f.law.name for f in items}
    if len(laws) > 1:
        raise BayescaleError(
            f"pool_calibration pools fits of one law; got {sorted(laws)}. Pool each law's fits "
            "separately."
        )
    cals = [f.calibration for f in items]
    per_level = [(k, c.by) for k, c in zip(keys, cals) if c.by is not None]
    if per_level:
        k, by = per_level[0]
        raise BayescaleError(
            f"pool_calibration pools one drift per fit, but fit {k!r} was calibrated with "
            f"by={by!r}: its forecasts use one drift per level of {by!r}, pooled across those "
            "levels already (Calibration.levels), which this pooling would not reach. Pool "
            "fits calibrated without by=, or keep the per-level calibration alone."
        )
    scales = {c.scale for c in cals}
    if len(scales) > 1:
        raise BayescaleError(
            f"pool_calibration pools calibrations on one scale; got {sorted(scales)}."
        )
    if any(c.ratio is None and c.ratio_pending is not None for c in cals):
        # learned later, at a forecast beyond the ratios, they would keep their own prior
        from .calibration import learn_ratio

        cals = [learn_ratio(f, c) for f, c in zip(items, cals)]
    pooled = _pool(cals, leave_one_out, len(items))
    sides = [set(c.ratio or {}) for c in cals]
    if sides[0] and all(s == sides[0] for s in sides):  # each side of D/N pooled on its own
        per_side = {side: _pool([c.ratio[side] for c in cals], leave_one_out, len(items))
                    for side in sorted(sides[0])}
        pooled = [replace(p, ratio={side: per_side[side][i] for side in per_side})
                  for i, p in enumerate(pooled)]
    out = [f.with_calibration(p) for f, p in zip(items, pooled)]
    if isinstance(fits, Mapping):
        return dict(zip(keys, out))
    return out


def _pool(cals: Sequence[Calibration], leave_one_out: bool, n: int) -> list[Calibration]:
    """``cals`` with the prior of ``tau`` replaced by the population of the others."""
    h = cals[0].h
    for c in cals:
        if len(c.h) != len(h) or not np.allclose(c.h, h):
            raise BayescaleError("all fits must be calibrated on the same h grid to be pooled.")
    # each fit's likelihood on its grid = its posterior / its HalfCauchy prior (exact)
    # (an already pooled calibration: recompute it from its inner forecasts)
    lls = [
        np.log(np.clip(np.atleast_2d(c.weights), 1e-300, None))
        + np.log1p((c.tau / c.prior_scale) ** 2)[None, :]
        if c.population is None
        else log_likelihood(groups_of(c), c.tau, c.h)
        for c in cals
    ]
    weights, pop = pool_on_scale(lls, cals[0].tau, cals[0].scale, leave_one_out=leave_one_out)
    # its levels (by=) keep their own pooling (Calibration.levels); its drifts along the
    # input ratios are pooled by the caller
    return [replace(c, weights=w, population=dict(pop, series=n)) for c, w in zip(cals, weights)]

