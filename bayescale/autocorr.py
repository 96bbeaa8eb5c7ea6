"""Autocorrelated residuals: the ``"ar1"`` likelihood.

Checkpoints of one training run, or the points of one learning curve, do not carry
independent errors: where the law misses, it misses for a stretch of neighbouring
scales. Treating 100 such rows as 100 independent facts makes the posterior far too
sure of the law's parameters. The ``"ar1"`` likelihood models the residuals on the
link scale (log loss) within each *sequence* as a continuous-time AR(1)
(Ornstein-Uhlenbeck) process in the log10 of the row's scale ``u`` (compute ``C``,
else ``6 N D``, else the law's input)::

    e_i = eta_obs_i - eta_i
    e_i = phi_i e_prev(i) + sigma sqrt(1 - phi_i^2) t_i,   t_i ~ StudentT(nu)
    phi_i = exp(-(u_i - u_prev(i)) / corr_length)

``sigma`` is the residuals' marginal scale, ``corr_length`` (decades of scale) how far
apart two rows must be to err independently, and the first row of a sequence has
``phi = 0``. A sequence is one run (``run=`` column) or, without a run column, all rows.
Rows of one sequence must have distinct scales (a clear error says which do not).

Forecasts condition on the last fitted residual of the same sequence and follow the
process among the new rows, so a run that sits above the law at its last checkpoint
starts its forecast there and relaxes to the law over about ``corr_length`` decades.
Pointwise log-likelihoods (LOO) are the conditional densities ``p(e_i | e_prev(i))``;
held-out rows (leave-future-out, backtests) are scored given the fitted rows only.

Example
-------
>>> import bayescale as bs
>>> f = bs.fit(curve, "power_law", x={"x": "step"}, likelihood="ar1")  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError

#: Lag-1 residual autocorrelation (posterior-median residuals of the i.i.d. Student-t
#: fit, neighbouring rows in scale) above which ``likelihood="auto"`` refits with
#: ``"ar1"`` and a fit report suggests it.
AR1_THRESHOLD = 0.5


def sequences(spec, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Sequence label and log10 scale of each row.

    The label is the run column's value (``spec.run``) or ``""`` for every row when the
    fit has no run column (or ``frame`` lacks it: new rows then start afresh).
    """
    from .fit import size_of

    # size, not the raw input: a falling input (a loss) runs forward as it falls, so a
    # forecast beyond the data follows the last checkpoint, as for a rising one
    u = np.log10(size_of(spec.law, frame))
    if spec.run and spec.run in frame.columns:
        lab = frame[spec.run].astype(str).to_numpy()
    elif spec.run:
        lab = np.array([f"\x00new{i}" for i in range(len(frame))])  # every row on its own
    else:
        lab = np.full(len(frame), "", dtype=object)
    return lab, u


def _neighbours(lab: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs ``(a, b)`` of rows adjacent in scale within one sequence (``b`` after ``a``)."""
    order = np.lexsort((u, lab))
    a, b = order[:-1], order[1:]
    same = lab[a] == lab[b]
    return a[same], b[same]


def links(spec, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Previous row (index in ``frame``, -1 for a sequence's first) and scale gap per row.

    Raises
    ------
    DataError
        When two rows of one sequence have the same scale.
    """
    if getattr(spec, "pooled", None) and not spec.run:  # "ar1" named by the user (not auto)
        raise DataError(
            f"The 'ar1' likelihood follows each run as one sequence, but this is "
            f"{POOLED_WITHOUT_RUN}: pass run=<column> naming each run (e.g. the group "
            "column), or use likelihood='studentt'."
        )
    lab, u = sequences(spec, frame)
    a, b = _neighbours(lab, u)
    tied = np.flatnonzero(u[b] <= u[a])
    if len(tied):
        i, j = a[tied[0]], b[tied[0]]
        where = f" of run {lab[i]!r}" if spec.run else ""
        fix = (
            "average the duplicates or drop one"
            if spec.run
            else "pass run=<column> so that each run is its own sequence, or average the "
            "duplicates"
        )
        a_lab, b_lab = frame.index[i], frame.index[j]
        rows = (f"Rows {a_lab} and {b_lab}" if a_lab != b_lab  # a frame concatenated twice
                else f"The rows at positions {i} and {j} (both labelled {a_lab})")
        raise DataError(
            f"{rows}{where} have the same scale "
            f"(log10 {u[i]:.4f}); the 'ar1' likelihood needs one row per scale in a "
            f"sequence: {fix}."
        )
    prev = np.full(len(frame), -1, dtype=np.int64)
    dt = np.zeros(len(frame))
    prev[b] = a
    dt[b] = u[b] - u[a]
    return prev, dt


def build(eta, y, noise, data):
    """The observed variable ``y_obs`` (a ``pm.CustomDist``) inside a model context."""
    import pymc as pm
    import pytensor.tensor as pt

    spec, frame, dim = data["spec"], data["frame"], data.get("dim", "obs")
    prev, dt = links(spec, frame)
    prev_d = pm.Data("ar_prev", prev, dims=dim)
    dt_d = pm.Data("ar_dt", dt, dims=dim)

    def logp(value, eta, sigma, nu, corr_length, prev, dt):
        e = value - eta
        has = pt.ge(prev, 0)
        e_prev = pt.switch(has, e[pt.maximum(prev, 0)], 0.0)
        phi = pt.switch(has, pt.exp(-dt / corr_length), 0.0)
        scale = sigma * pt.sqrt(1.0 - phi**2)
        return pm.logp(pm.StudentT.dist(nu=nu, mu=0.0, sigma=scale), e - phi * e_prev)

    return pm.CustomDist(
        "y_obs",
        eta,
        noise["sigma"],
        noise["nu"],
        noise["corr_length"],
        prev_d,
        dt_d,
        logp=logp,
        observed=y,
        dims=dim,
    )


def nearest_fitted_below(fitted: np.ndarray, t_u: np.ndarray, u: float) -> int:
    """The training row nearest strictly below scale ``u`` among ``fitted``, or -1.

    ``fitted`` are one sequence's training rows sorted by scale; strictly: a replicate of
    a fitted row conditions on the row before it, not on its own value.
    """
    k = np.searchsorted(t_u[fitted], u, side="left") - 1
    return int(fitted[k]) if k >= 0 else -1


def _fitted_before(data):
    """For each row of ``data["frame"]``: the nearest fitted row below it in its sequence.

    Returns ``(found, residual, dt)``: which rows have one, its residual per draw
    ``(samples, rows)`` (``data["train_resid"]()``) and the distance in log10 scale.
    """
    resid_fn, train = data.get("train_resid"), data.get("train")
    n = len(data["frame"])
    found = np.zeros(n, dtype=bool)
    if resid_fn is None or train is None or not len(train):
        return found, None, np.zeros(n)
    lab, u = sequences(data["spec"], data["frame"])
    t_lab, t_u = sequences(data["spec"], train)
    picks = {}
    for key in pd.unique(lab):
        fitted = np.flatnonzero(t_lab == key)
        fitted = fitted[np.argsort(t_u[fitted], kind="stable")]
        for r in np.flatnonzero(lab == key):
            j = nearest_fitted_below(fitted, t_u, u[r])
            if j >= 0:
                picks[r] = j
    if not picks:
        return found, None, np.zeros(n)
    resid = resid_fn()
    out, dt = np.zeros((resid.shape[0], n)), np.zeros(n)
    for r, j in picks.items():
        found[r], out[:, r], dt[r] = True, resid[:, j], u[r] - t_u[j]
    return found, out, dt


def logpdf(y, eta, noise, data):
    """Log density of each row given the previous one of its sequence.

    Where the fit's training rows and residuals come with ``data`` (held-out rows of a
    forecast), each row is scored by the density of its forecast: given the nearest fitted
    row below it in its sequence (the process's marginal over the held-out rows between,
    exact for Gaussian innovations), or from the stationary distribution without one;
    never given another held-out row's observed response, which the forecast does not see.
    """
    from .likelihoods import _studentt_logpdf

    prev, dt = links(data["spec"], data["frame"])  # (also refuses rows of one scale)
    e = np.broadcast_to(y - eta, np.broadcast_shapes(np.shape(y), np.shape(eta)))
    if data.get("train_resid") is not None and data.get("train") is not None:
        has, e_prev, dt = _fitted_before(data)
        if e_prev is None:
            e_prev = 0.0
    else:
        has = prev >= 0
        e_prev = np.where(has, e[..., np.maximum(prev, 0)], 0.0)
    with np.errstate(over="ignore", divide="ignore"):
        phi = np.where(has, np.exp(-dt / noise["corr_length"]), 0.0)
    scale = noise["sigma"] * np.sqrt(1.0 - phi**2)
    noise_t = {"nu": noise["nu"], "sigma": scale}
    return _studentt_logpdf(e - phi * e_prev, 0.0, noise_t, data)


def draw(eta, noise, rng, data):
    """Predictive draws that follow the process from the fitted residuals.

    Each new row conditions on the nearest earlier row of its sequence: a fitted row
    (its residual from ``data["train_resid"]()``, shape ``(samples, training rows)``,
    with ``data["train"]`` the training frame) or the previous new row. Without them,
    or for a sequence not seen in training, a sequence starts from the stationary
    distribution.
    """
    spec, frame = data["spec"], data["frame"]
    s, n = eta.shape
    sigma = np.broadcast_to(noise["sigma"], (s, 1))[:, 0]
    nu = np.broadcast_to(noise["nu"], (s, 1))[:, 0]
    ell = np.broadcast_to(noise["corr_length"], (s, 1))[:, 0]
    lab, u = sequences(spec, frame)
    resid_fn, train = data.get("train_resid"), data.get("train")
    t_lab, t_u = sequences(spec, train) if train is not None else (np.array([]), np.array([]))
    resid = None
    out = np.array(eta, dtype=float, copy=True)
    for key in pd.unique(lab):
        rows = np.flatnonzero(lab == key)
        rows = rows[np.argsort(u[rows], kind="stable")]
        fitted = np.flatnonzero(t_lab == key) if resid_fn is not None else np.array([], int)
        fitted = fitted[np.argsort(t_u[fitted], kind="stable")]
        u_prev, e_prev = -np.inf, None
        for r in rows:
            j = nearest_fitted_below(fitted, t_u, u[r])
            if j >= 0 and t_u[j] >= u_prev:
                resid = resid_fn() if resid is None else resid
                u_prev, e_prev = t_u[j], resid[:, j]
            t = rng.standard_t(nu)
            if e_prev is None:
                e = sigma * t
            else:
                phi = np.exp(-(u[r] - u_prev) / ell)
                e = phi * e_prev + sigma * np.sqrt(1.0 - phi**2) * t
            out[:, r] += e
            u_prev, e_prev = u[r], e
    return out


class _NoInnovation:
    """Stands in for an rng in :func:`draw`: every innovation is zero."""

    def standard_t(self, df: Any) -> np.ndarray:
        return np.zeros(np.shape(df))


def conditional_mean(eta, noise, data):
    """Each row's mean given the fitted residuals, per draw: :func:`draw` without innovations.

    The centre of an ``ar1`` forecast: a row just past a run's last checkpoint sits near
    that checkpoint, not on the law (``phi * e_last`` added to ``eta``, decaying with the
    distance). Used to split the predictive variance (:func:`bayescale.calibration.decompose`).
    """
    return draw(eta, noise, _NoInnovation(), data)


def ou_residuals(u: np.ndarray, sigma: float, corr_length: float, rng) -> np.ndarray:
    """Simulate the residual process the ``"ar1"`` likelihood models (Gaussian innovations).

    An Ornstein-Uhlenbeck path at sorted log10 scales ``u``, started from its stationary
    distribution: for simulation studies, tests and benchmarks.

    Examples
    --------
    >>> e = ou_residuals(np.linspace(6, 8, 200), 0.03, 0.5, np.random.default_rng(0))
    >>> e.shape, bool(abs(np.corrcoef(e[:-1], e[1:])[0, 1]) > 0.9)
    ((200,), True)
    """
    e = np.empty(len(u))
    e[0] = sigma * rng.standard_normal()
    for i in range(1, len(u)):
        phi = np.exp(-(u[i] - u[i - 1]) / corr_length)
        e[i] = phi * e[i - 1] + sigma * np.sqrt(1 - phi**2) * rng.standard_normal()
    return e


def fitted_residuals(fit) -> np.ndarray:
    """Link-scale residuals of the training rows per posterior draw ``(samples, rows)``."""
    mu = fit.draws(None, kind="mean", extrapolation=False).values
    y = fit.data["y"].to_numpy(dtype=float)
    yt = np.log(y) if fit.law.link == "log" else y
    return yt[None, :] - fit._eta(mu, fit.data, np.random.default_rng(0))


def residual_autocorrelation(fit) -> tuple[float, int]:
    """Lag-1 autocorrelation of the posterior-median residuals along each sequence.

    Neighbouring rows in scale within a sequence (run, else all rows) form the pairs.
    Returns ``(r, pairs)``; ``r`` is NaN with fewer than 3 pairs or residuals that do not
    vary (a law through every point). A value well above 0
    (0.5 or more) says the law misses over stretches of scale and an i.i.d. likelihood
    overstates certainty: consider ``likelihood="ar1"`` for learning curves and checkpoints.
    """
    e = np.median(fitted_residuals(fit), axis=0)
    a, b = _neighbours(*sequences(fit.spec, fit.data))
    if len(a) < 3:
        return float("nan"), int(len(a))
    c = e - e.mean()
    spread = np.sum(c * c)
    if not spread > 0:
        return float("nan"), int(len(a))
    return float(np.sum(c[a] * c[b]) / spread), int(len(a))


#: Why a pooled fit without a run column is not one sequence (see :func:`ar1_obstacle`).
POOLED_WITHOUT_RUN = (
    "a pooled fit without run=<column>, whose rows of different groups do not form one "
    "sequence"
)


def ar1_obstacle(spec, frame: pd.DataFrame) -> str | None:
    """Why the ``"ar1"`` likelihood cannot follow ``frame``'s rows as sequences, or None.

    :data:`POOLED_WITHOUT_RUN` for a pooled fit without a run column, else the message
    of the tie error of :func:`links` (two rows of one sequence at the same scale).
    """
    if spec.pooled and not spec.run:
        return POOLED_WITHOUT_RUN
    try:
        links(spec, frame)
    except DataError as err:
        return str(err)
    return None


def auto_choice(fit) -> tuple[str, str]:
    """The likelihood ``likelihood="auto"`` keeps after a fit with the law's own, and why.

    For a Student-t fit: ``"ar1"`` when the fit's lag-1 residual autocorrelation along
    its sequences (:func:`residual_autocorrelation`) exceeds :data:`AR1_THRESHOLD` and
    the rows of each sequence have distinct scales; ``"studentt"`` otherwise (also when
    the residuals are autocorrelated but rows share a scale, as in an IsoFLOP grid, and
    for pooled fits without a run column, whose groups do not form one sequence). Any
    other likelihood (accuracy and count laws) is kept.

    Returns
    -------
    (likelihood, reason)
        ``reason`` is one sentence for the fit's settings and report.

    Examples
    --------
    >>> f = bs.fit(curve, "power_law", x={"x": "step"}, likelihood="studentt")  # doctest: +SKIP
    >>> auto_choice(f)  # doctest: +SKIP
    ('ar1', 'ar1: lag-1 residual autocorrelation 0.66 over 64 pairs under studentt > 0.5')
    """
    if fit.spec.likelihood != "studentt":
        return fit.spec.likelihood, (
            f"{fit.spec.likelihood}: the law's likelihood ('ar1' is for Student-t laws)"
        )
    r, pairs = residual_autocorrelation(fit)
    obstacle = ar1_obstacle(fit.spec, fit.data)
    if obstacle == POOLED_WITHOUT_RUN:
        return "studentt", f"studentt: {obstacle} (lag-1 residual autocorrelation {r:.2f})"
    if not np.isfinite(r) or r <= AR1_THRESHOLD:
        return "studentt", (
            f"studentt: lag-1 residual autocorrelation {r:.2f} over {pairs} pairs "
            f"<= {AR1_THRESHOLD}"
        )
    if obstacle is not None:
        return "studentt", (
            f"studentt: residuals autocorrelated (lag-1 r = {r:.2f}) but 'ar1' does not "
            f"apply: {obstacle}"
        )
    return "ar1", (
        f"ar1: lag-1 residual autocorrelation {r:.2f} over {pairs} pairs under studentt "
        f"> {AR1_THRESHOLD}"
    )
