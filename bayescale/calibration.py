"""Calibrated extrapolation: a discrepancy that grows with distance beyond the data.

Why
---
A fixed-form posterior with i.i.d. noise treats the law as exactly right, so its
intervals only reflect parameter uncertainty and noise. Real laws are never
exactly right: the error of a fitted law grows with the distance extrapolated,
and on real ladders plain 90% intervals cover 0-60% of larger models.

What
----
On the log scale of the response, a forecast at distance ``d`` (decades beyond the
fitted range, the largest over the scale ``C`` (else ``6 N D``, else the input), each
input and the ratio of each pair of size inputs such as ``D/N``: :func:`decades_beyond`)
gets a *drift* term::

    log y_target = log y_law + tau * d**h * xi,    xi ~ Normal(0, 1)  (shared by all rows)

(for a law with input ratios, by default three independent drifts: one at the distance over
scale and inputs, and, :attr:`Calibration.ratio`, one at the distance above the fitted ratios
and one below them, each learned from inner cutoffs that leave the data its way;
:func:`drift_parts`),
so its standard deviation is zero inside the data, ``tau`` at one decade, and
grows with distance as ``d**h``: ``h = 1`` is a linear drift (a wrong exponent),
``h = 1/2`` a random walk in log scale (variance proportional to distance), smaller
``h`` an error that appears as soon as one leaves the data and then grows slowly
(a law that fits the bulk of the runs but not its edge). Both the rate ``tau``
and the growth exponent ``h`` are **learned from the data by nested
leave-future-out**: the same model is refitted on the smaller part of the training
data at several cutoffs (rows ordered by scale and, for laws of several inputs, also by
their largest rank over the inputs; the order that learns the larger discrepancy is
kept), the larger part is forecast, and each forecast error
``r_j`` (with the inner fit's predictive variance ``s_j^2``, parameter uncertainty
and noise) gives

    r_j ~ Normal(0, s_j^2 + tau^2 d_j^(2h))

i.e. ``tau^2 d^(2h)`` is the excess squared error beyond what the inner posterior
already expected. With a ``HalfCauchy(prior_scale)`` prior
(default scale 0.005 per decade: most mass near zero, so an exactly right law
is barely widened; a heavy tail, so a real drift seen in the inner forecasts is
learned) and a uniform prior on ``h`` in ``H_GRID``, the joint posterior of
``(h, tau)`` is computed on a grid (no sampler needed: two dimensions). Forecasts
then integrate over both. When the law is right the inner forecasts are
within their intervals, ``tau`` concentrates near zero and the intervals barely
widen; when the law drifts, they widen in proportion to the drift seen inside
the data.

Accuracy laws (:func:`drift_scale`) drift the same way on the *logit* scale of the
accuracy (prior ``HalfCauchy(0.02)``, grid to 3 logits). Their distance is in decades
of compute, except for a law of a loss (``Law.falling_inputs``), whose targets lie below
the smallest fitted loss: its distance is in units of the fitted losses' log span
(:func:`distance_unit`).
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .data import is_count, is_real_number
from .errors import BayescaleError, DataError, ExtrapolationWarning
from .sampling import SEED_LIMIT, check_seed

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit

_log = logging.getLogger("bayescale")

#: Default quantiles of log-scale at which the training data are cut.
CUTOFFS = (0.5, 0.65, 0.8)
#: Default prior scale of ``tau`` for a log-link (loss) law: 0.5% of the loss per decade.
PRIOR_SCALE = 0.005
#: Grid of ``tau`` for a log-link law (log-response per decade).
TAU_GRID = np.linspace(0.0, 0.6, 12001)
#: Default prior scale of ``tau`` per drift scale (:func:`drift_scale`). On the logit scale
#: 0.02 is half an accuracy point per unit of distance at 50% accuracy (the logit's slope
#: there is 4 per unit of probability), the counterpart of the log scale's 0.5% of the loss.
PRIOR_SCALES = {"log": PRIOR_SCALE, "logit": 0.02}
#: Grid of ``tau`` per drift scale: accuracy errors of a few points per decade are tenths of
#: a logit, so the logit grid reaches 3 (a factor of 20 in the odds per unit of distance).
TAU_GRIDS = {"log": TAU_GRID, "logit": np.linspace(0.0, 3.0, 12001)}
#: Accuracies are clipped to ``[LOGIT_EPS, 1 - LOGIT_EPS]`` before the logit of a forecast
#: error (an observed 0 or 1 would otherwise be infinitely far from any forecast).
LOGIT_EPS = 1e-3
#: Growth exponents of the discrepancy sd with distance (uniform prior).
H_GRID = (0.25, 0.5, 0.75, 1.0)
#: Orders of the training rows for the inner cutoffs (see :func:`inner_position`).
ORDERS = ("scale", "inputs")
#: Values of ``calibrate(cut_by=...)``: one order, or ``"worst"`` (each, keeping the wider).
CUT_BY = (*ORDERS, "worst")
#: Default of ``calibrate(cut_by=...)``.
CUT_BY_DEFAULT = "worst"
#: Order of the inner cutoffs that learns the drift along the input ratios (``D/N``): the
#: rows most over- or under-trained are held out (:func:`inner_position`).
RATIO_ORDER = "ratio"
#: The two sides of the input ratios, each with its own drift (:attr:`Calibration.ratio`):
#: beyond the largest fitted ratio (``D/N``: over-trained) and below the smallest
#: (under-trained), different regimes that a law can miss by different amounts.
RATIO_PARTS = ("ratio_above", "ratio_below")
#: Values of :func:`decades_beyond`'s ``part``.
PARTS = ("all", "growth", "ratio", *RATIO_PARTS)


@dataclass(frozen=True)
class Calibration:
    """Posterior of the discrepancy ``tau * d**h`` (log-response; ``tau`` at one decade).

    ``weights`` has shape ``(len(h), len(tau))``: the joint grid posterior.
    """

    tau: np.ndarray
    weights: np.ndarray
    prior_scale: float
    residuals: pd.DataFrame = field(default_factory=pd.DataFrame)
    cutoffs: tuple[float, ...] = ()
    problems: tuple[str, ...] = ()
    h: np.ndarray = field(default_factory=lambda: np.array([1.0]))
    #: Hyper-posterior summary when the prior of ``tau`` was pooled across series
    #: (:func:`bayescale.pool_calibration`); ``None`` for the default prior.
    population: dict[str, float] | None = None
    #: How the inner cutoffs ordered the rows (:func:`inner_position`).
    cut_by: str = "scale"
    #: With ``calibrate(cut_by="worst")``: the rms discrepancy at one decade each order
    #: learned (``{"scale": ..., "inputs": ...}``); this calibration is the larger one's.
    compared: dict[str, float] | None = None
    #: Scale of the drift (:func:`drift_scale`): ``"log"`` (losses) or ``"logit"`` (accuracies).
    scale: str = "log"
    #: With ``calibrate(by=column)``: the column whose levels (tasks, families) each learn
    #: their own drift from their rows' inner forecasts (``residuals["level"]``), pooled
    #: across levels (:meth:`levels`); ``None``: one drift for all rows.
    by: str | None = None
    #: For a law with input ratios (:func:`ratio_pairs`, e.g. ``D/N``): the drifts learned
    #: along them, ``{"above": ..., "below": ...}`` (beyond the largest fitted ratio, e.g.
    #: over-trained, and below the smallest), by inner cutoffs that hold out the most over-
    #: and under-trained rows; each applied at a row's distance beyond the fitted ratios on
    #: its side, independently of this calibration's drift along scale and inputs
    #: (:func:`drift_parts`). ``None``: one drift at the largest distance over every
    #: direction (laws of one input, or ``calibrate(ratio=False)``).
    ratio: dict[str, Calibration] | None = None
    #: The settings of drifts along the input ratios not learned yet (``calibrate``'s
    #: ``ratio="auto"``): they are learned, once, by the first forecast with a row beyond
    #: the fitted ratios (:func:`drift_parts`). ``None``: learned, or not wanted.
    ratio_pending: dict[str, Any] | None = None

    @cached_property
    def levels(self) -> dict[str | None, Calibration]:
        """Per level of ``by``: its calibration; key ``None``: a level not in the data.

        Each level's inner forecast errors give it a likelihood on the ``(h, tau)`` grid;
        the levels' rates share a log-normal population learned from the *other* levels
        (:func:`bayescale.calibration_pooling.pool_posteriors`, leave-one-out), so a level
        with few or uninformative inner forecasts borrows the others' rate. A level not in
        the data draws its rate from the population. Empty without ``by``.
        """
        if self.by is None or self.residuals.empty or "level" not in self.residuals:
            return {}
        from .calibration_pooling import pool_on_scale

        res = self.residuals
        names = sorted(res["level"].astype(str).unique())
        k = len(_groups(res))  # a level's evidence weighed as in the one-drift calibration
        lls = []
        for name in names:
            sub = res[res["level"].astype(str) == name]
            lls.append(log_likelihood(_groups(sub), self.tau, self.h, n_cutoffs=k))
        lls.append(np.zeros_like(lls[0]))  # a new level: no evidence of its own
        weights, pop = pool_on_scale(lls, self.tau, self.scale)
        pop = dict(pop, series=len(names), by=self.by)
        out: dict[str | None, Calibration] = {}
        for key, w in zip([*names, None], weights, strict=True):
            rows = res[res["level"].astype(str) == key] if key is not None else res.iloc[:0]
            out[key] = replace(self, weights=w, residuals=rows, population=pop, by=None)
        return out

    def __repr__(self) -> str:
        """One line: the drift's rate and growth, its evidence and its problems.

        Examples
        --------
        >>> Calibration(tau=TAU_GRID, weights=posterior_tau([]), prior_scale=0.005)
        <bayescale.Calibration log-scale drift tau = 0.005 [0.00039, 0.058] per decade ...>
        """
        q = self.quantiles()
        unit = "decade" if self.scale == "log" else "unit of distance"
        h = float(np.sum(self.h_weights * self.h))
        parts = [f"{self.scale}-scale drift tau = {q[1]:.2g} [{q[0]:.2g}, {q[2]:.2g}] per "
                 f"{unit} (median [90%]), sd growing as d^{h:.2g}"]
        if self.n_points:
            c50, c90 = self.inner_coverage(0.5), self.inner_coverage(0.9)
            cover = (f" (their 50%/90% coverage {c50:.2f}/{c90:.2f})"
                     if np.isfinite(c90) else "")  # NaN: no PITs stored
            parts.append(f"learned from {self.n_points} inner forecasts at cutoffs "
                         f"{self.cutoffs} by {self.cut_by!r}{cover}")
        else:
            parts.append("from its prior alone (no inner forecasts)")
        if self.population is not None:
            parts.append(f"prior pooled over {self.population.get('series')} series")
        if self.by is not None:
            parts.append(f"one drift per level of {self.by!r} (level_summary())")
        if self.ratio_pending is not None:
            parts.append("drifts along the input ratios learned when a forecast first leaves "
                         "the fitted ratios")
        for side, c in (self.ratio or {}).items():
            r = c.quantiles()
            parts.append(f"{side} the fitted input ratios tau = {r[1]:.2g} [{r[0]:.2g}, "
                         f"{r[2]:.2g}] from {c.n_points} inner forecasts")
        if self.problems:
            parts.append(f"{len(self.problems)} problem(s): see .problems")
        return "<bayescale.Calibration " + "; ".join(parts) + ">"

    def level_summary(self) -> pd.DataFrame:
        """One row per level of ``by`` (and ``None``, a new level): its drift's posterior.

        Examples
        --------
        >>> fit.calibrate(by="task").calibration.level_summary()  # doctest: +SKIP
        """
        rows = []
        for key, c in self.levels.items():
            q = c.quantiles()
            rows.append({self.by or "level": "(new level)" if key is None else key,
                         "tau_median": float(q[1]), "tau_5%": float(q[0]),
                         "tau_95%": float(q[2]),
                         "h_mean": float(np.sum(c.h_weights * c.h)),
                         "inner_points": c.n_points})
        return pd.DataFrame(rows)

    def for_rows(self, levels: np.ndarray | None, n: int) -> list[tuple[np.ndarray, Calibration]]:
        """``(row mask, calibration)`` pairs covering ``n`` rows whose ``by`` values are ``levels``.

        Without ``by``, or rows without the ``by`` column (``levels=None``): all rows, this
        calibration (learned from every level's inner forecasts).
        """
        per = self.levels
        if levels is None or not per:
            return [(np.ones(n, dtype=bool), self)]
        keys = np.asarray([str(v) for v in levels])
        return [(keys == k, per.get(k, per[None])) for k in np.unique(keys)]

    @property
    def tau_weights(self) -> np.ndarray:
        """Marginal posterior weights of ``tau``'s grid cells (:meth:`cell_weights`)."""
        return self.cell_weights().sum(axis=0)

    @property
    def h_weights(self) -> np.ndarray:
        """Marginal posterior weights of the growth exponent ``h``."""
        return self.cell_weights().sum(axis=1)

    def cell_weights(self) -> np.ndarray:
        """Posterior mass of each ``(h, tau)`` grid cell, shape ``(n_h, n_tau)``.

        ``weights`` are the posterior density at the grid points; each point stands for a
        cell ``tau +- step / 2``, except ``tau = 0``, whose cell is ``[0, step / 2]`` (no
        mass below 0): its weight counts half (the trapezoid rule). Counted whole, it put
        a point mass of about 0.3% at ``tau = 0`` under the prior alone.
        """
        w = np.atleast_2d(self.weights) * self._cells()[1]  # density x cell width
        return w / w.sum()

    @property
    def n_points(self) -> int:
        """Number of inner forecast points that informed ``tau``."""
        return len(self.residuals)

    def quantiles(self, q: Sequence[float] = (0.05, 0.5, 0.95)) -> np.ndarray:
        """Posterior quantiles of ``tau``, of the density :meth:`sample` draws from.

        Each cell's weight (:meth:`cell_weights`) is spread uniformly over it
        (``tau +- step / 2``; ``[0, step / 2]`` for ``tau = 0``), so the cumulative weight is
        linear between the cells' edges.
        """
        q = np.asarray(q, dtype=float)
        w = self.tau_weights
        cdf = np.concatenate([[0.0], np.cumsum(w) / np.sum(w)])
        left, width = self._cells()  # cell i spans left[i] .. left[i] + width[i]
        # the cell holding each quantile: the first whose upper cumulative weight reaches q
        # (q = 0: the first cell with weight), so cells without weight are never entered
        i = np.where(q > 0, np.searchsorted(cdf, q, side="left"),
                     np.searchsorted(cdf, 0.0, side="right"))
        i = np.clip(i, 1, len(w))
        frac = (q - cdf[i - 1]) / (cdf[i] - cdf[i - 1])
        return np.clip(left[i - 1] + np.clip(frac, 0.0, 1.0) * width[i - 1], 0.0, None)

    def _cells(self) -> tuple[np.ndarray, np.ndarray]:
        """Left edge and width of each ``tau`` grid point's cell (see :meth:`cell_weights`)."""
        step = self.tau[1] - self.tau[0]
        left = np.array(self.tau - step / 2, dtype=float)
        width = np.full(len(self.tau), step, dtype=float)
        if self.tau[0] == 0:
            left[0], width[0] = 0.0, step / 2
        return left, width

    def mean_sq(self) -> float:
        """Posterior mean of ``tau**2`` (variance at one decade)."""
        return float(np.sum(self.tau_weights * self.tau**2))

    def variance(self, decades: np.ndarray) -> np.ndarray:
        """Posterior mean of the discrepancy variance ``tau**2 d**(2h)`` at each distance."""
        d = np.clip(np.asarray(decades, dtype=float), 0.0, None)
        w = self.cell_weights()
        t2 = w @ self.tau**2  # E[tau^2 | h] * p(h), per h
        return np.sum(t2[:, None] * d[None, :] ** (2 * self.h[:, None]), axis=0)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``n`` pairs ``(tau, h)`` from the grid posterior."""
        w = self.cell_weights()
        idx = rng.choice(w.size, size=n, p=w.ravel() / w.sum())
        ih, it = np.unravel_index(idx, w.shape)
        left, width = self._cells()
        tau = left[it] + width[it] * rng.random(n)
        return tau, self.h[ih]

    def inner_coverage(self, prob: float) -> float:
        """Share of inner forecasts inside their central ``prob`` interval (NaN if none).

        The intervals are those of the inner fits' predictive with this fit's own learned
        discrepancy added (``residuals["pit"]``, computed once by :func:`calibrate`; a
        pooled calibration keeps the series' own values). Near ``prob``: the discrepancy
        accounts for the inner forecast errors it was learned from. It cannot say whether
        the real forecast, further out, errs like the inner ones.
        """
        if not 0.0 < float(prob) < 1.0:
            raise BayescaleError(f"prob must be between 0 and 1 (e.g. 0.9), got {prob!r}.")
        if "pit" not in self.residuals or not len(self.residuals):
            return float("nan")
        central = np.abs(2.0 * self.residuals["pit"].to_numpy(dtype=float) - 1.0)
        return float(np.mean(central <= prob))

    def summary(self) -> dict[str, Any]:
        """Median and 90% interval of ``tau``, evidence used, problems."""
        q = self.quantiles()
        return {
            "tau_median": float(q[1]),
            "tau_5%": float(q[0]),
            "tau_95%": float(q[2]),
            "h_mean": float(np.sum(self.h_weights * self.h)),
            "scale": self.scale,
            "by": self.by,  # a drift per level of this column (level_summary())
            "prior": (
                f"HalfCauchy({self.prior_scale})"
                if self.population is None
                else "LogNormal pooled over {series} series (population median {tau:.4f})".format(
                    series=self.population.get("series"),
                    tau=self.population["tau_population_median"],
                )
            ),
            "prior_scale": self.prior_scale,
            "inner_cutoffs": list(self.cutoffs),
            "inner_cut_by": self.cut_by,
            "inner_cut_by_compared": self.compared,
            "inner_points": self.n_points,
            "inner_cover50": self.inner_coverage(0.5),
            "inner_cover90": self.inner_coverage(0.9),
            "problems": list(self.problems),
            # the drifts above and below the input ratios (D/N), once learned
            "ratio": None if self.ratio is None else {
                side: c.summary() for side, c in self.ratio.items()},
            "ratio_pending": self.ratio_pending is not None,
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (saved with the fit)."""
        return {
            "weights": np.atleast_2d(self.weights).tolist(),
            "tau": self.tau.tolist(),
            "h": self.h.tolist(),
            "prior_scale": self.prior_scale,
            "residuals": self.residuals.to_dict(orient="list"),
            "cutoffs": list(self.cutoffs),
            "problems": list(self.problems),
            "population": self.population,
            "cut_by": self.cut_by,
            "compared": self.compared,
            "scale": self.scale,
            "by": self.by,
            "ratio": None if self.ratio is None else {
                side: c.to_dict() for side, c in self.ratio.items()},
            "ratio_pending": self.ratio_pending,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`."""
        return cls(
            tau=np.asarray(d["tau"]),
            weights=np.atleast_2d(np.asarray(d["weights"])),
            h=np.asarray(d.get("h", [1.0]), dtype=float),
            prior_scale=float(d["prior_scale"]),
            residuals=pd.DataFrame(d["residuals"]),
            cutoffs=tuple(d["cutoffs"]),
            problems=tuple(d["problems"]),
            population=d.get("population"),
            cut_by=d.get("cut_by", "scale"),
            compared=d.get("compared"),
            scale=d.get("scale", "log"),
            by=d.get("by"),
            ratio=None if d.get("ratio") is None else {
                side: cls.from_dict(c) for side, c in d["ratio"].items()},
            ratio_pending=d.get("ratio_pending"),
        )


def drift_scale(law: Any) -> str | None:
    """Scale on which a law's forecasts drift: ``"log"``, ``"logit"`` or ``None``.

    Log-link laws (losses) drift multiplicatively, on the log scale. Accuracy laws (an
    ``"accuracy"`` response or a binomial, beta-binomial or beta likelihood; identity or
    logit link) drift on the logit scale, which keeps every forecast inside (0, 1) and
    lets a fixed logit error move an accuracy near 50% more than one near its ceiling.
    Other responses (identity link, unbounded) have no calibrated drift.

    Examples
    --------
    >>> import bayescale as bs
    >>> drift_scale(bs.get_law("chinchilla")), drift_scale(bs.get_law("sigmoid_of_loss"))
    ('log', 'logit')
    """
    if law.link == "log":
        return "log"
    if law.response == "accuracy" or law.likelihood in ("binomial", "betabinomial", "beta"):
        return "logit"
    return None


def in_decades(law: Any) -> bool:
    """Whether ``law``'s size (:func:`bayescale.fit.size_of`) is a positive input.

    Distances beyond the data are decades of it; a user law whose size input may be zero
    or negative (``positive_inputs=False``) has no such distance, so no calibrated drift.

    Examples
    --------
    >>> import bayescale as bs
    >>> in_decades(bs.get_law("chinchilla"))
    True
    """
    from .fit import size_inputs

    return all(law.is_positive(i) for i in size_inputs(law))


def check_in_decades(law: Any) -> None:
    """Raise when ``law`` has no distance in decades beyond the data (:func:`in_decades`)."""
    from .fit import size_input

    if not in_decades(law):
        raise BayescaleError(
            f"The calibrated extrapolation drift grows with the decades a forecast lies beyond "
            f"the data, but law {law.name!r} allows zero or negative values of its size input "
            f"({size_input(law)!r}; positive_inputs="
            f"{law.positive_inputs!r}), which have no decades. Use extrapolation=False."
        )


def to_scale(y: np.ndarray, scale: str, *, clip: bool = False) -> np.ndarray:
    """``y`` on the drift scale: ``log y`` or ``logit y``.

    With ``clip=True`` accuracies are clipped to ``[LOGIT_EPS, 1 - LOGIT_EPS]`` first (for
    forecast errors); without it an accuracy of exactly 0 or 1 maps to -inf / +inf, which
    :func:`from_scale` maps back, so a drift leaves such draws unchanged.

    Examples
    --------
    >>> to_scale(np.array([0.5, 0.0]), "logit", clip=True).round(3)
    array([ 0.   , -6.907])
    """
    y = np.asarray(y, dtype=float)
    with np.errstate(divide="ignore"):
        if scale == "log":
            return np.log(y)
        if clip:
            y = np.clip(y, LOGIT_EPS, 1.0 - LOGIT_EPS)
        return np.log(y) - np.log1p(-y)


def from_scale(z: np.ndarray, scale: str) -> np.ndarray:
    """Inverse of :func:`to_scale` (``exp`` or the logistic function)."""
    from scipy.special import expit

    return np.exp(z) if scale == "log" else expit(z)


def apply_drift(y: np.ndarray, drift: np.ndarray, scale: str) -> np.ndarray:
    """Draws ``y`` moved by ``drift`` on the drift scale (``y * exp(drift)`` for logs).

    On the logit scale ``y`` is first clipped to [0, 1]: a law's mean curve may leave it
    (``exp_error_of_loss`` above 1 at a low enough loss), where the logit is undefined.

    Examples
    --------
    >>> apply_drift(np.array([0.5, 1.02]), np.array([0.0, -1.0]), "logit")
    array([0.5, 1. ])
    """
    if scale == "log":
        return y * np.exp(drift)
    return from_scale(to_scale(np.clip(y, 0.0, 1.0), scale) + drift, scale)


def _log_lik_grid(
    r: np.ndarray, var: np.ndarray, d: np.ndarray, tau: np.ndarray, h: float = 1.0
) -> np.ndarray:
    """Sum over points of log N(r_j | 0, var_j + tau^2 d_j^(2h)), for every tau on the grid."""
    v = var[None, :] + (tau[:, None] ** 2) * (d[None, :] ** (2 * h))
    return -0.5 * np.sum(np.log(2 * np.pi * v) + r[None, :] ** 2 / v, axis=1)


def posterior_tau(
    groups: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    prior_scale: float = PRIOR_SCALE,
    grid: np.ndarray = TAU_GRID,
    h_grid: Sequence[float] | None = None,
) -> np.ndarray:
    """Grid posterior weights of ``tau`` from ``(residuals, variances, distances)`` groups.

    Each group is one inner cutoff: forecast errors ``r`` of the points above it,
    their predictive variances and their distances (decades). The points are
    scored as ``r_j ~ Normal(0, var_j + tau^2 d_j^(2h))``, so ``tau^2`` estimates the
    excess squared error at one decade; each cutoff's log-likelihood is divided
    by the number of cutoffs because the held-out sets are nested.

    With ``h_grid=None`` the growth is linear (``h = 1``) and the weights are 1-D
    over ``grid``; with a sequence of exponents (uniform prior) they have shape
    ``(len(h_grid), len(grid))``, the joint posterior.

    Examples
    --------
    Residuals that grow by 3% per decade give a posterior around 0.03:

    >>> rng = np.random.default_rng(0)
    >>> groups = []
    >>> for _ in range(30):
    ...     d = np.linspace(0.1, 1.0, 5)
    ...     var = np.full(5, 1e-6)
    ...     groups.append((0.03 * d * rng.standard_normal(), var, d))
    >>> w = posterior_tau(groups)
    >>> bool(0.02 < float(np.sum(w * TAU_GRID)) < 0.04)
    True
    """
    hs = [1.0] if h_grid is None else [float(h) for h in h_grid]
    logp = -np.log1p((grid / prior_scale) ** 2)[None, :] + log_likelihood(groups, grid, hs)
    w = np.exp(logp - logp.max())
    w = w / w.sum()
    return w[0] if h_grid is None else w


#: Posterior mass of ``tau`` in the top 5% of its grid above which the grid cut it off.
EDGE_MASS = 0.01


def grid_edge_problem(weights: np.ndarray, grid: np.ndarray, scale: str) -> str | None:
    """A note when ``tau``'s grid posterior ``weights`` pile up at the end of ``grid``.

    The grid ends at a drift no sensible law needs (0.6 per decade on the log scale, 3
    logits per unit on the logit scale); mass there means the posterior was cut off and
    the drift underestimated: the inner forecasts erred far more than noise and drift
    explain, usually a law that does not fit.

    Examples
    --------
    >>> grid = np.linspace(0.0, 3.0, 101)
    >>> grid_edge_problem(np.full(101, 1 / 101), grid, "logit") is not None
    True
    >>> grid_edge_problem(np.exp(-grid * 20) / np.exp(-grid * 20).sum(), grid, "logit")
    """
    w = np.asarray(weights).reshape(-1, len(grid)).sum(axis=0)
    mass = float(w[grid >= 0.95 * grid[-1]].sum() / w.sum())
    if mass <= EDGE_MASS:
        return None
    return (
        f"the drift's rate reaches the end of its grid (tau = {grid[-1]:g} per unit of "
        f"distance on the {scale} scale; {mass:.0%} of its posterior in the top 5%): the "
        "inner forecasts erred by more than the grid allows, so the drift is underestimated. "
        "The law likely misfits the larger rows; check its residuals or compare other laws "
        "(bs.compare)"
    )


def log_likelihood(
    groups: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
    grid: np.ndarray = TAU_GRID,
    h_grid: Sequence[float] = H_GRID,
    n_cutoffs: int | None = None,
) -> np.ndarray:
    """Log-likelihood of the inner forecast errors on the ``(h, tau)`` grid.

    ``groups`` as in :func:`posterior_tau`; each cutoff's term is divided by the
    number of cutoffs (nested held-out sets): ``n_cutoffs``, by default ``len(groups)``
    (a part of the rows, one level's, is divided by the whole's). Shape
    ``(len(h_grid), len(grid))``.
    """
    k = max(len(groups) if n_cutoffs is None else int(n_cutoffs), 1)
    out = np.zeros((len(h_grid), len(grid)))
    for r, var, d in groups:
        r, var, d = (np.asarray(v, dtype=float) for v in (r, var, d))
        ok = np.isfinite(r) & np.isfinite(var) & np.isfinite(d) & (var > 0)
        for i, h in enumerate(h_grid):
            out[i] += _log_lik_grid(r[ok], var[ok], d[ok], grid, float(h)) / k
    return out


def groups_of(cal: Calibration) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """The ``(residuals, variances, distances)`` groups a calibration was learned from."""
    return _groups(cal.residuals)


def _groups(res: pd.DataFrame) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`groups_of` of a table of inner forecasts (one group per cutoff)."""
    if res.empty:
        return []
    return [
        (g["residual"].to_numpy(), g["predictive_sd"].to_numpy() ** 2, g["decades"].to_numpy())
        for _, g in res.groupby("cutoff_quantile", sort=True)
    ]


def _maxima(fit: Fit, frame: pd.DataFrame) -> dict[str, float]:
    """The edge of ``frame``'s range: the largest size and input (smallest falling input)."""
    from .fit import size_of

    m = {
        inp: float(frame[inp].min() if inp in fit.law.falling_inputs else frame[inp].max())
        for inp in fit.law.inputs
    }
    m["__scale__"] = float(size_of(fit.law, frame).max())
    for a, b in ratio_pairs(fit.law):
        r = _log_ratio(frame, a, b)
        m[f"__ratio_min__{a}/{b}"], m[f"__ratio_max__{a}/{b}"] = float(r.min()), float(r.max())
    return m


def ratio_pairs(law: Any) -> list[tuple[str, str]]:
    """Pairs of rising size inputs whose ratio is a direction of extrapolation.

    For a law of ``N`` and ``D`` the ratio ``D/N`` (tokens per parameter) is the other
    diagonal of the ``(log N, log D)`` plane, beside compute ``6ND``: an over-trained small
    model (or an under-trained large one) can lie inside the range of ``N``, of ``D`` and of
    compute and still far outside the data's tokens per parameter. For ``N, D, U`` (unique
    tokens) the pairs include ``D/U``, the number of epochs.
    """
    rising = [inp for inp in law.inputs
              if law.is_positive(inp) and inp not in law.falling_inputs]
    return [(a, b) for i, a in enumerate(rising) for b in rising[i + 1:]]


def _log_ratio(frame: pd.DataFrame, a: str, b: str) -> np.ndarray:
    return np.log10(frame[b].to_numpy(dtype=float) / frame[a].to_numpy(dtype=float))


def distance_unit(fit: Fit, inp: str) -> float:
    """Decades of input ``inp`` per unit of extrapolation distance.

    One for compute, parameters and tokens: distance is in decades. For a falling input (a
    loss fed to an accuracy law) a decade is far beyond any forecast (the loss of a model
    100x larger is rarely 20% lower), so its unit is the log10 span of the fitted losses:
    a target one unit out is as far below the smallest fitted loss as the fit's losses span.
    Computed on all of ``fit``'s rows, so the inner fits of the calibration measure in the
    same unit as the real forecasts.
    """
    if inp not in fit.law.falling_inputs:
        return 1.0
    x = fit.data[inp].to_numpy(dtype=float)
    span = float(np.log10(x.max() / x.min())) if len(x) and x.min() > 0 else 0.0
    return span if span > 0 else 1.0


def decades_beyond(
    fit: Fit, frame: pd.DataFrame, maxima: dict[str, float], part: str = "all"
) -> np.ndarray:
    """Distance beyond the fitted range per row, over inputs, scale and input ratios.

    The largest over every input, the scale and the ratio of each pair of size inputs
    (:func:`ratio_pairs`). A row is as far out as its most extrapolated coordinate: a
    70B model trained on few tokens is an extrapolation in ``N`` even if its compute is
    inside the range, and a small model trained on 30x more tokens per parameter than
    any fitted run is one in ``D/N`` (beyond the largest fitted ratio or below the
    smallest) even if its ``N``, ``D`` and compute are inside their ranges.
    Distances are in decades, except for a falling input (:func:`distance_unit`), whose
    target is beyond the data when its loss is *below* the smallest fitted one.

    ``part``: ``"all"`` (the default, as above), ``"growth"`` (over the scale and the
    inputs only), ``"ratio"`` (over the input ratios only), ``"ratio_above"`` or
    ``"ratio_below"`` (above the largest fitted ratio or below the smallest only): the
    distances of the drifts of a calibration learned per direction (:func:`drift_parts`).
    """
    from .fit import size_input, size_of

    if part not in PARTS:
        raise BayescaleError(f"part must be one of {PARTS}, got {part!r}.")
    d = np.zeros(len(frame))
    if part in ("all", "growth"):
        unit = distance_unit(fit, size_input(fit.law))
        d = np.log10(size_of(fit.law, frame) / maxima["__scale__"]) / unit
        for inp in fit.law.inputs:
            if not fit.law.is_positive(inp):  # e.g. not an accuracy law's ``chance`` input
                continue
            x = frame[inp].to_numpy(dtype=float)
            if inp in fit.law.falling_inputs:
                d = np.maximum(d, np.log10(maxima[inp] / x) / distance_unit(fit, inp))
            else:
                d = np.maximum(d, np.log10(x / maxima[inp]))
    if part != "growth":
        for a, b in ratio_pairs(fit.law):
            r = _log_ratio(frame, a, b)
            if part != "ratio_below":
                d = np.maximum(d, r - maxima[f"__ratio_max__{a}/{b}"])
            if part != "ratio_above":
                d = np.maximum(d, maxima[f"__ratio_min__{a}/{b}"] - r)
    return np.clip(d, 0.0, None)


def scale_decades(fit: Fit, frame: pd.DataFrame, part: str = "all") -> np.ndarray:
    """Distance beyond the range of ``fit``'s training data (0 inside it; decades).

    ``part`` as in :func:`decades_beyond`.
    """
    return decades_beyond(fit, frame, _maxima(fit, fit.data), part)


def drift_parts(
    fit: Fit, frame: pd.DataFrame, cal: Calibration | None = None
) -> list[tuple[Calibration, np.ndarray]]:
    """``(calibration, distance per row)`` of each drift that moves ``frame``'s forecasts.

    One pair, ``(cal, distance over every direction)``, unless ``cal`` has drifts of its
    own along the input ratios (:attr:`Calibration.ratio`); then three independent drifts:
    ``cal`` at the distance over scale and inputs, ``cal.ratio["above"]`` at the distance
    above the largest fitted ratio and ``cal.ratio["below"]`` below the smallest. ``cal``
    defaults to ``fit.calibration``. Drifts along the ratios still to be learned
    (:attr:`Calibration.ratio_pending`) are learned here if a row of ``frame`` lies beyond
    the fitted ratios (:func:`learn_ratio`; kept on ``fit`` when ``cal`` is its own).
    """
    own = cal is None
    cal = fit.calibration if cal is None else cal
    edge = _maxima(fit, fit.data)
    if (cal.ratio is None and cal.ratio_pending is not None
            and (decades_beyond(fit, frame, edge, "ratio") > 0).any()):
        cal = learn_ratio(fit, cal)
        if own:  # learned once: cached on the fit, saved with it
            fit.__dict__["calibration"] = cal
    if cal.ratio is None:  # for rows inside the fitted ratios "growth" and "all" agree
        return [(cal, decades_beyond(fit, frame, edge))]
    return [(cal, decades_beyond(fit, frame, edge, "growth"))] + [
        (c, decades_beyond(fit, frame, edge, f"ratio_{side}")) for side, c in cal.ratio.items()]


def inner_position(fit: Fit, frame: pd.DataFrame, cut_by: str = "scale") -> np.ndarray:
    """Where each row stands for the inner cutoffs: the larger, the later it is held out.

    ``"scale"``: log10 of the row's size (``C``, else ``6 N D``, else the input; one over a
    falling input such as a loss), so the inner fits forecast larger models. ``"inputs"``:
    the row's largest percentile rank over the law's positive inputs and its size, so a row
    is held out when it is among the largest in *any* of them (a larger model, more tokens
    or more compute), the ways a real forecast leaves the data; for a law of one input both
    orders are the same. ``"ratio"``: the row's largest percentile rank over each input
    ratio (:func:`ratio_pairs`) and its inverse, so the most over- and under-trained rows
    are held out (the inner fits of :attr:`Calibration.ratio`).

    Examples
    --------
    >>> import pandas as pd, bayescale as bs
    >>> fit = bs.fit(df, "chinchilla")                      # doctest: +SKIP
    >>> inner_position(fit, fit.data, "inputs")             # doctest: +SKIP
    """
    from .fit import size_of

    if cut_by not in (*ORDERS, RATIO_ORDER):
        raise BayescaleError(f"cut_by must be one of {(*ORDERS, RATIO_ORDER)}, got {cut_by!r}.")
    if cut_by == RATIO_ORDER:
        tails = [s * _log_ratio(frame, a, b) for a, b in ratio_pairs(fit.law) for s in (1, -1)]
        ranks = [pd.Series(c).rank(pct=True).to_numpy() for c in tails if np.ptp(c) > 0]
        return np.max(ranks, axis=0) if ranks else np.zeros(len(frame))
    scale = np.asarray(size_of(fit.law, frame), dtype=float)
    if cut_by == "scale":
        return np.log10(scale)
    columns = [scale] + [
        (-1.0 if inp in fit.law.falling_inputs else 1.0) * frame[inp].to_numpy(dtype=float)
        for inp in fit.law.inputs
        if fit.law.is_positive(inp)
    ]
    ranks = [pd.Series(c).rank(pct=True).to_numpy() for c in columns if np.ptp(c) > 0]
    return np.max(ranks, axis=0) if ranks else np.zeros(len(frame))


def calibrate(
    fit: Fit,
    *,
    cutoffs: Sequence[float] = CUTOFFS,
    cut_by: str = CUT_BY_DEFAULT,
    prior_scale: float | None = None,
    h_grid: Sequence[float] = H_GRID,
    min_rows: int | None = None,
    draws: int | None = None,
    random_seed: int | None = None,
    by: str | None = None,
    ratio: bool | str = "auto",
) -> Calibration:
    """Learn the discrepancy growth rate of ``fit`` by nested leave-future-out.

    Parameters
    ----------
    fit : Fit
        A fit of a loss law (log link: the drift is on the log scale) or of an accuracy
        law (the drift is on the logit scale; :func:`drift_scale`).
    cutoffs : sequence of float
        Quantiles of the training rows' position (``cut_by``) at which to cut; the rows
        at or below a cutoff are refitted, the rows above are forecast.
    cut_by : {"scale", "inputs", "worst"}
        How rows are ordered for the cutoffs (:func:`inner_position`): by log scale, by
        their largest percentile rank over the law's inputs and scale, or ``"worst"``:
        calibrate with each order and keep the one whose inner forecasts erred more (the
        larger learned discrepancy at one decade; ``Calibration.compared`` has both). For a
        law of one input the orders agree and ``"worst"`` is ``"scale"``.
    prior_scale : float, optional
        Scale of the ``HalfCauchy`` prior of ``tau`` at one unit of distance, on the drift
        scale (default ``PRIOR_SCALES``: 0.005 on the log scale, 0.02 on the logit scale).
    h_grid : sequence of float
        Growth exponents of the discrepancy with distance, ``sd = tau * d**h``
        (uniform prior over them; ``(1.0,)`` for a purely linear drift).
    min_rows : int, optional
        Fewest rows an inner fit may use (default ``max(2 * free parameters, 8)``).
    draws : int, optional
        Draws per chain of the inner fits (default ``min(fit draws, 500)``).
    by : str, optional
        A column of the training rows (the tasks or families of a pooled fit) whose levels
        each learn their own drift from their own rows' inner forecast errors, the levels'
        rates pooled by a log-normal population (leave-one-out); forecasts use their row's
        level, a new level the population (:attr:`Calibration.levels`). The inner fits are
        the same: it costs no more sampling. Default: one drift for all rows.
    ratio : {"auto", True, False}
        For a law with input ratios (:func:`ratio_pairs`: ``D/N`` of ``chinchilla``), learn
        drifts of their own along them, one above the fitted ratios and one below: inner
        cutoffs that hold out the most over- and under-trained rows (:func:`inner_position`,
        ``"ratio"``; three more inner fits), each side's distance the decades beyond the
        fitted ratios on that side (:func:`decades_beyond`, ``part="ratio_above"`` or
        ``"ratio_below"``), added independently to the drift along scale and inputs
        (:attr:`Calibration.ratio`, :func:`drift_parts`). A larger model trained at the
        fitted tokens per parameter gets the drift along scale and inputs only; an
        over-trained one the drift above the ratios. ``"auto"`` (default): the ratio drifts
        are learned, once, by the first forecast with a row beyond the fitted ratios
        (:attr:`Calibration.ratio_pending`; a forecast of larger models at the fitted tokens
        per parameter never pays for them); ``True``: learned now; ``False``: one drift at
        the largest distance over every direction.

    Returns
    -------
    Calibration

    Examples
    --------
    >>> fit = bs.fit(tasks, "sigmoid_of_loss", pooled={"L0": "task"})  # doctest: +SKIP
    >>> fit.calibrate(by="task").calibration.level_summary()          # doctest: +SKIP
    """
    scale = drift_scale(fit.law)
    if scale is None:
        raise BayescaleError(
            f"Extrapolation calibration is implemented for loss laws (log link) and accuracy "
            f"laws (a response in [0, 1]); law {fit.law.name!r} has link {fit.law.link!r} and "
            f"response {fit.law.response!r}. Use extrapolation=False."
        )
    check_in_decades(fit.law)
    prior_scale = PRIOR_SCALES[scale] if prior_scale is None else prior_scale
    if not is_real_number(prior_scale) or not 0 < float(prior_scale) < np.inf:
        raise BayescaleError(
            f"prior_scale is the scale of tau's HalfCauchy prior, a positive number (default "
            f"{PRIOR_SCALES[scale]} on the {scale} scale), got {prior_scale!r}."
        )
    prior_scale = float(prior_scale)
    try:
        h = np.asarray(h_grid, dtype=float)
    except (TypeError, ValueError):
        h = np.array([np.nan])
    if h.ndim != 1 or h.size == 0 or not (np.isfinite(h) & (h > 0)).all():
        raise BayescaleError(
            f"h_grid holds the growth exponents of the drift with distance (sd = tau * d**h), "
            f"positive numbers such as {tuple(H_GRID)} or (1.0,), got {h_grid!r}."
        )
    for name, value in (("min_rows", min_rows), ("draws", draws)):
        if value is not None and not is_count(value, 1):
            raise BayescaleError(
                f"{name} must be a positive integer or None (the default), got {value!r}."
            )
    check_seed(random_seed)
    if cut_by not in CUT_BY:
        raise BayescaleError(f"cut_by must be one of {CUT_BY}, got {cut_by!r}.")
    if ratio not in (True, False, "auto"):
        raise BayescaleError(f"ratio must be True, False or 'auto', got {ratio!r}.")
    try:
        q = np.asarray(cutoffs, dtype=float)
    except (TypeError, ValueError):
        q = np.array([np.nan])
    if q.ndim != 1 or q.size == 0 or not ((q > 0) & (q < 1)).all():
        raise BayescaleError(
            f"cutoffs are quantiles of the training rows' scale, each strictly between 0 and "
            f"1 (default {tuple(CUTOFFS)}), got {cutoffs!r}."
        )
    groups = ([*fit.spec.group_columns, *([fit.spec.run] if fit.spec.run else [])]
              if by is not None else [])
    if by is not None and (not isinstance(by, str) or by not in groups):
        # a list raised pandas' "unhashable type"; "y" (the response) was taken as levels
        raise BayescaleError(
            f"calibrate(by={by!r}) takes one group column of the fit, whose levels each "
            f"learn a drift; the fit's group columns are {groups}"
            + (" (fit with pooled= or run= to have some)." if not groups else ".")
        )
    kw = dict(cutoffs=cutoffs, prior_scale=prior_scale, h_grid=h_grid, min_rows=min_rows,
              draws=draws, random_seed=random_seed, by=by)
    split = bool(ratio) and bool(ratio_pairs(fit.law))
    part = "growth" if split else "all"
    if cut_by != "worst":
        cal = _calibrate_order(fit, cut_by, distances=(part,), **kw)[part]
    else:
        positive = [inp for inp in fit.law.inputs if fit.law.is_positive(inp)]
        orders = ORDERS if len(positive) > 1 else ORDERS[:1]
        cal = keep_wider({order: _calibrate_order(fit, order, distances=(part,), **kw)[part]
                          for order in orders})
    if not split:
        return cal
    pending = dict(kw, cutoffs=[float(q) for q in cutoffs], h_grid=[float(h) for h in h_grid])
    cal = replace(cal, ratio_pending=pending)
    return cal if ratio == "auto" else learn_ratio(fit, cal)


def learn_ratio(fit: Fit, cal: Calibration) -> Calibration:
    """``cal`` with its drifts along the input ratios learned (:attr:`Calibration.ratio`).

    Three inner fits, cut in the ``"ratio"`` order (:func:`inner_position`), with the
    settings of ``cal.ratio_pending``; the same draws whenever they are learned.
    """
    if cal.ratio_pending is None:
        return cal
    _log.info("Learning the extrapolation drifts along the input ratios of %r (tokens per "
              "parameter; refits without the most over- and under-trained runs; once per "
              "fit) ...", fit.law.name)
    tails = _calibrate_order(fit, RATIO_ORDER, distances=RATIO_PARTS, **cal.ratio_pending)
    along = {part.removeprefix("ratio_"): c for part, c in tails.items()}
    said: dict[str, list[str]] = {}  # the inner fits' problems are in both sides, each
    for part in RATIO_PARTS:  # side's grid edge in its own
        for p in tails[part].problems:
            said.setdefault(p, []).append(part.removeprefix("ratio_"))
    problems = tuple(
        f"drift {'along' if len(sides) > 1 else sides[0]} the fitted input ratios: {p}"
        for p, sides in said.items()
    )
    return replace(cal, ratio=along, ratio_pending=None, problems=cal.problems + problems)


def keep_wider(cals: Mapping[str, Calibration]) -> Calibration:
    """Of calibrations by different row orders, the one with the larger rms ``tau``.

    The rule of ``calibrate(cut_by="worst")``: an order without inner forecasts (its prior
    only, wide) is not compared; ties go to the first. The result records every order's
    rms ``tau`` at one decade in ``compared``.

    Examples
    --------
    >>> a = Calibration(tau=TAU_GRID, weights=posterior_tau([]), prior_scale=0.005)
    >>> keep_wider({"scale": a}).compared["scale"] > 0
    True
    """
    orders = list(cals)
    size = {order: float(np.sqrt(c.mean_sq())) for order, c in cals.items()}
    informed = [order for order in orders if cals[order].n_points] or orders[:1]
    chosen = max(informed, key=lambda order: size[order])
    return replace(cals[chosen], compared=size)


def _calibrate_order(
    fit: Fit,
    cut_by: str,
    *,
    cutoffs: Sequence[float],
    prior_scale: float,
    h_grid: Sequence[float],
    min_rows: int | None,
    draws: int | None,
    random_seed: int | None,
    by: str | None = None,
    distances: Sequence[str] = ("all",),
) -> dict[str, Calibration]:
    """:func:`calibrate` with the inner cutoffs of one order of the rows.

    One calibration per entry of ``distances`` (a ``part`` of :func:`decades_beyond`), all
    from the same inner fits: each learns from the inner forecast errors at its distance. A
    ratio tail (``"ratio_above"``, ``"ratio_below"``) keeps only the held-out rows beyond the
    inner fit's ratios on its side.
    """
    n_free = fit.spec.free_parameter_count()
    min_rows = max(2 * n_free, 8) if min_rows is None else min_rows
    position = inner_position(fit, fit.data, cut_by)
    seed = fit.settings.get("random_seed") if random_seed is None else random_seed
    base_seed = 0 if seed is None else int(seed)
    inner_draws = min(int(fit.settings.get("draws", 1000)), 500) if draws is None else draws
    scale = drift_scale(fit.law) or "log"
    inner = []  # per cutoff: (q, residuals, variances, {part: distances}, draws, truth, rows)
    problems: list[str] = []
    for k, q in enumerate(cutoffs):
        cut = float(np.quantile(position, q))
        train = position <= cut
        if train.sum() < min_rows or (~train).sum() < 1:
            continue
        try:
            r, var, dists, zd, zy, problem = _inner_forecast(
                fit, train, draws=inner_draws, seed=(base_seed * 1000 + 17 + k) % SEED_LIMIT,
                label=f"q={q}", parts=tuple(distances),
            )
        except DataError as err:  # e.g. the smaller rows all share one value of D
            problems.append(f"inner fit at cutoff q={q} skipped: {err}")
            continue
        if problem:
            problems.append(problem)
        inner.append((q, r, var, dists, zd, zy, fit.data.loc[~train]))
    if not inner:
        problems.append(
            f"not enough rows for nested leave-future-out (need >= {min_rows} rows below a "
            "cutoff); the discrepancy rate comes from its prior alone"
        )
    rng = np.random.default_rng(base_seed * 1000 + 7)
    out = {}
    for part in distances:
        pieces = []
        for q, r, var, dists, zd, zy, held in inner:
            keep = dists[part] > 0 if part.startswith("ratio_") else np.ones(len(r), bool)
            if keep.any():
                pieces.append((q, r[keep], var[keep], dists[part][keep], zd[:, keep], zy[keep],
                               held.loc[keep]))
        out[part] = _assemble(pieces, cut_by=cut_by, scale=scale, prior_scale=prior_scale,
                              h_grid=h_grid, by=by, problems=problems, rng=rng)
    return out


def _assemble(pieces: list, *, cut_by: str, scale: str, prior_scale: float,
              h_grid: Sequence[float], by: str | None, problems: Sequence[str],
              rng: np.random.Generator) -> Calibration:
    """The calibration learned from inner forecasts ``(q, r, var, d, draws, truth, rows)``."""
    groups = [(r, var, d) for _, r, var, d, *_ in pieces]
    rows = []
    for q, r, var, d, _, _, held in pieces:
        part = pd.DataFrame(
            {"cutoff_quantile": q, "decades": d, "residual": r, "predictive_sd": np.sqrt(var)}
        )
        if by is not None:
            part["level"] = held[by].astype(str).to_numpy()
        rows.append(part)
    grid = TAU_GRIDS[scale]
    weights = posterior_tau(groups, prior_scale, grid=grid, h_grid=h_grid)
    problems = list(problems)
    edge = grid_edge_problem(weights, grid, scale)
    if edge:
        problems.append(edge)
        warnings.warn(edge, ExtrapolationWarning, stacklevel=4)
    cal = Calibration(
        tau=grid.copy(),
        weights=weights,
        h=np.asarray(h_grid, dtype=float),
        prior_scale=prior_scale,
        residuals=pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(),
        cutoffs=tuple(q for q, *_ in pieces),
        problems=tuple(problems),
        cut_by=cut_by,
        scale=scale,
        by=by,
    )
    if not rows:
        return cal
    # PIT of each inner forecast under its inner predictive plus the learned drift
    pits = [pit(zd + drift_draws(cal, held, d, zd.shape[0], rng), zy)
            for _, _, _, d, zd, zy, held in pieces]
    return replace(cal, residuals=cal.residuals.assign(pit=np.concatenate(pits)))


def inner_problem(label: str, problems: Sequence[str]) -> str | None:
    """The sampling problems of an inner fit as one note, or ``None``.

    Advice to draw more samples names :meth:`Fit.calibrate`'s ``draws``: the inner fits
    draw ``min(fit draws, 500)`` per chain unless told, whatever ``bs.fit`` drew.

    Examples
    --------
    >>> inner_problem("q=0.65", ["low effective sample size (alpha: bulk 387 < 400): "
    ...                          "draw more samples (about draws=900 per chain)."])[-45:]
    'For the inner fits: fit.calibrate(draws=900).'
    """
    if not problems:
        return None
    problem = f"inner fit at cutoff {label}: {'; '.join(problems)}"
    more = re.search(r"draws=(\d+) per chain", problem)
    if more:
        problem += f" For the inner fits: fit.calibrate(draws={more.group(1)})."
    return problem


def _inner_forecast(fit: Fit, train: np.ndarray, *, draws: int, seed: int, label: str,
                    parts: Sequence[str] = ("all",)):
    """Refit ``fit`` on the ``train`` rows and forecast the others (on the drift scale).

    Returns the forecast errors, their predictive variances, distances (decades beyond the
    inner fit's range; per entry of ``parts``, :func:`decades_beyond`), the predictive
    draws and the truth on the drift scale (log or logit, :func:`to_scale`; unclipped, for
    the PITs) and a problem (or ``None``). Errors and variances are of clipped accuracies
    (``LOGIT_EPS``) on the logit scale. Variances are robust (:func:`robust_variance`),
    or the draws' variance where their IQR is 0 (counts piled on one value).
    """
    test = ~train
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # keeps the full fit's levels (Fit.refit): a run with no rows below the cutoff
        # costs no new compilation
        inner = fit.refit(train, draws=draws, random_seed=seed)
    problem = inner_problem(label, inner.diagnostics["problems"])
    held = fit.data.loc[test]
    held_user = fit.user_frame(test).drop(columns=fit.spec.y)
    inner_draws = inner.draws(held_user, kind="predictive", extrapolation=False).values
    # robust centre and spread: Student-t noise can give draws with huge tails (with
    # nu < 1 a few underflow to 0, i.e. -inf on the log scale: order is kept)
    scale = drift_scale(fit.law) or "log"
    y = held["y"].to_numpy(dtype=float)
    zd, zy = to_scale(inner_draws, scale), to_scale(y, scale)
    if scale == "log":
        zd_c, zy_c = zd, zy
    else:  # accuracies of 0 or 1 (counts) are clipped for the errors, not for the PITs
        zd_c, zy_c = to_scale(inner_draws, scale, clip=True), to_scale(y, scale, clip=True)
    var = robust_variance(zd_c)
    # draws on a grid of counts (an exact-match task before its onset) can put over half
    # their mass on one count: an IQR of 0, and the drift's likelihood skips a variance of
    # 0, so the forecasts that were surest, and often the most wrong, left the evidence
    flat = ~(var > 0)
    if flat.any():
        with np.errstate(invalid="ignore", over="ignore"):
            spread = np.where(np.ptp(zd_c, axis=0) > 0, np.var(zd_c, axis=0), 0.0)
        var = np.where(flat, spread, var)  # (np.var of equal draws is ~1e-28, not 0)
        left = int(np.sum(~(var > 0)))
        if left:  # every draw the same value: no spread to score an error against
            note = (f"inner fit at cutoff {label}: {left} inner forecast(s) with every "
                    "predictive draw the same value were left out of the drift's evidence")
            problem = note if problem is None else f"{problem}; {note}"
    r = zy_c - np.median(zd_c, axis=0)
    inner_range = _maxima(fit, fit.data.loc[train])
    dists = {part: decades_beyond(fit, held, inner_range, part) for part in parts}
    return r, var, dists, zd, zy, problem


def pit(draws: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Probability integral transform of ``y`` (per column) under draws ``(n, rows)``.

    Examples
    --------
    >>> pit(np.arange(4.0)[:, None], np.array([1.5]))
    array([0.5])
    """
    return (draws < y).mean(axis=0) + 0.5 * (draws == y).mean(axis=0)


def add_drift(fit: Fit, frame: pd.DataFrame, draws: np.ndarray, rng: np.random.Generator
              ) -> np.ndarray:
    """``draws`` of ``fit`` at ``frame``'s rows moved by its calibrated drift.

    Unchanged when no row is beyond the fitted range (the calibration is then not needed,
    so not computed). Used by :meth:`Fit.draws` and by stage 2 of a chain.
    """
    if not (scale_decades(fit, frame) > 0).any():
        return draws
    parts = drift_parts(fit, frame)
    drift = sum(drift_draws(c, frame, d, draws.shape[0], rng) for c, d in parts)
    return apply_drift(draws, drift, parts[0][0].scale)


def drift_draws(
    cal: Calibration, frame: pd.DataFrame, decades: np.ndarray, n: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """:func:`discrepancy_draws` of ``frame``'s rows, each level of ``cal.by`` with its own.

    Rows of one level share their draw of ``xi``; levels draw theirs independently.
    """
    decades = np.asarray(decades, dtype=float)
    levels = frame[cal.by].to_numpy() if cal.by and cal.by in frame else None
    pieces = cal.for_rows(levels, len(decades))
    if len(pieces) == 1:
        return discrepancy_draws(pieces[0][1], decades, n, rng)
    out = np.zeros((n, len(decades)))
    for mask, c in pieces:
        out[:, mask] = discrepancy_draws(c, decades[mask], n, rng)
    return out


def drift_variance(cal: Calibration, frame: pd.DataFrame, decades: np.ndarray) -> np.ndarray:
    """:meth:`Calibration.variance` of ``frame``'s rows, each level of ``cal.by`` with its own."""
    decades = np.asarray(decades, dtype=float)
    levels = frame[cal.by].to_numpy() if cal.by and cal.by in frame else None
    out = np.zeros(len(decades))
    for mask, c in cal.for_rows(levels, len(decades)):
        out[mask] = c.variance(decades[mask])
    return out


def extrapolation_variance(fit: Fit, frame: pd.DataFrame) -> np.ndarray:
    """Variance of ``fit``'s drift at ``frame``'s rows: the sum over :func:`drift_parts`."""
    return sum(drift_variance(c, frame, d) for c, d in drift_parts(fit, frame))


def discrepancy_draws(
    cal: Calibration, decades: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Draws ``(n, rows)`` of the log-scale drift ``tau * d**h * xi`` (xi shared by rows)."""
    tau, h = cal.sample(n, rng)
    xi = rng.standard_normal(n)
    d = np.clip(np.asarray(decades, dtype=float), 0.0, None)
    return (tau * xi)[:, None] * d[None, :] ** h[:, None]


def robust_variance(draws: np.ndarray) -> np.ndarray:
    """Squared normal-scaled IQR over axis 0 (``scipy.stats.iqr``): the variance for normal draws.

    Examples
    --------
    >>> z = np.random.default_rng(0).standard_normal((20000, 1))
    >>> bool(abs(robust_variance(4.0 * z)[0] - 16.0) < 0.5)
    True
    """
    from scipy.stats import iqr

    return iqr(draws, axis=0, scale="normal") ** 2


def decompose(fit: Fit, new: pd.DataFrame, *, extrapolation: bool = True) -> pd.DataFrame:
    """Split the predictive variance of ``log y`` into its sources, per row.

    Columns ``distance`` (how far the row lies beyond the fitted data, over every input,
    compute and the input ratios such as ``D/N``: :func:`scale_decades`; an over-trained
    model inside the fitted compute is beyond the data too), ``parameter`` (spread of the
    law's mean over the posterior), ``noise`` (observation noise and run offsets),
    ``extrapolation`` (the drift term), their ``total`` and each one's share of it.
    Variances are on the drift scale (:func:`drift_scale`): of ``log y`` for loss laws, of
    ``logit y`` for accuracy laws (accuracies clipped to ``[LOGIT_EPS, 1 - LOGIT_EPS]``).

    The parameter and noise terms are robust variances of the draws
    (:func:`robust_variance`, the squared normal-scaled IQR): finite where a Student-t noise
    with ``nu <= 2`` has none (IsoFLOP grids with outlying runs fit ``nu`` below 1,
    where the sample variance of noise draws is dominated by a few extreme draws). They
    measure the spread that sets a central interval's width, and equal the variance for
    normal draws only: noise draws pooled over a posterior with an uncertain ``sigma`` (a
    scale mixture, heavier-tailed than any one draw's) have a variance above their robust
    one (about 30% above with a log-normal ``sigma`` of sd 0.4), and ``total`` is then
    below the variance of ``fit.draws(new)``. The extrapolation term is the exact mean
    of ``tau**2 d**(2h)`` over the calibration's posterior, so ``total`` is close to the
    variance of the forecast draws (4-15% below it in a Chinchilla fit's forecasts).
    The shares are shares of that *variance*: a drift whose rate is uncertain is a scale
    mixture, heavier-tailed than a normal of the same variance, so its share of a central
    interval's width is smaller than its share of the variance (a Chinchilla fit's
    forecast of a 2B model on 4T tokens: 0.69 of the variance, while ``extrapolation=False``
    narrows its 90% interval by 29% and its 50% interval by 23%). To see what the drift
    does to an interval, compare ``fit.predict(new)`` with ``extrapolation=False``.
    """
    return decompose_with_centre(fit, new, extrapolation=extrapolation)[0]


def decompose_with_centre(
    fit: Fit, new: pd.DataFrame, *, extrapolation: bool = True
) -> tuple[pd.DataFrame, np.ndarray]:
    """:func:`decompose` and, per row, the median of the law's mean on the drift scale."""
    from .likelihoods import get_likelihood

    rng = fit._rng(None)
    mu = fit.draws(new, kind="mean", extrapolation=False).values
    frame = fit._frame(new)
    lik = get_likelihood(fit.spec.likelihood)
    eta = fit._eta(mu, frame, rng)
    noisy = lik.draw(eta, fit._noise(), rng, fit._lik_data(frame))
    scale = drift_scale(fit.law)
    if fit.spec.likelihood == "ar1":
        # the centre of each draw is the law plus the residual carried from the run's
        # fitted rows: that carried part is anti-correlated with the law's own spread, so
        # the law's mean alone would count a variance twice that the predictive cancels
        from .autocorr import conditional_mean

        logmu = conditional_mean(eta, fit._noise(), fit._lik_data(frame))
    elif fit.law.link == "log":  # the likelihood draws log y
        logmu = np.log(mu)
    elif scale == "logit":
        logmu, noisy = to_scale(mu, scale, clip=True), to_scale(noisy, scale, clip=True)
    else:
        logmu = mu
    var_param = robust_variance(logmu)
    var_noise = robust_variance(noisy - logmu)
    # as predict: no row beyond the fitted range needs no calibration (none computed); a
    # law without a drift scale beyond it gets calibrate's error, as predict's
    if extrapolation and (scale_decades(fit, frame) > 0).any():
        var_ext = extrapolation_variance(fit, frame)
    else:
        var_ext = np.zeros(len(frame))
    out = fit.user_rows(new)
    if scale is not None:  # how far out each row is, over inputs, compute and D/N
        out["distance"] = scale_decades(fit, frame)
    out["parameter"] = var_param
    out["noise"] = var_noise
    out["extrapolation"] = var_ext
    return add_shares(out, ("parameter", "noise", "extrapolation")), np.median(logmu, axis=0)


def add_shares(out: pd.DataFrame, sources: Sequence[str]) -> pd.DataFrame:
    """``out`` with ``total``, the sum of its ``sources`` columns, and each one's ``_share``.

    Examples
    --------
    >>> add_shares(pd.DataFrame({"a": [1.0], "b": [3.0]}), ("a", "b"))["b_share"].tolist()
    [0.75]
    """
    out["total"] = sum(out[c] for c in sources)
    for c in sources:
        out[f"{c}_share"] = out[c] / out["total"]
    return out
