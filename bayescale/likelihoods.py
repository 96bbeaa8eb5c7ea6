"""Likelihoods: how observations relate to the law's mean curve.

Loss laws use ``studentt`` (default) or ``normal`` on the log scale, or ``ar1``
(Student-t residuals autocorrelated along each run or curve, :mod:`bayescale.autocorr`).
Accuracy laws use ``binomial`` (counts known: ``n`` trials per row), ``betabinomial``
(over-dispersed counts; items are not exchangeable) or ``beta`` (only a score in
(0, 1) is known). Predictive draws of the count likelihoods are accuracy
*fractions* ``k / n``; rows without ``n`` use the mean ``n`` of the training data.

Each likelihood knows its noise parameters and default priors, builds the
observed variable inside a PyMC model, and draws posterior predictive values in
numpy (so prediction needs no PyMC round trip).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import LawError, did_you_mean
from .priors import Prior


@dataclass(frozen=True)
class Likelihood:
    """A likelihood on the link scale.

    Attributes
    ----------
    name : str
        Registry key.
    priors : dict
        Default priors of the noise parameters.
    build : callable
        ``build(eta, y, noise, data) -> observed RV`` inside a model context;
        ``eta`` is the linear predictor on the link scale, ``data["frame"]`` the
        observed rows and ``data["dim"]`` their dimension name (default ``"obs"``).
    draw : callable
        ``draw(eta, noise, rng, data) -> draws of y`` in numpy; ``eta`` has shape
        ``(samples, rows)`` and noise values shape ``(samples, 1)``.
    logpdf : callable, optional
        ``logpdf(y, eta, noise, data) -> log density`` in numpy, shape ``(samples, rows)``,
        of ``y`` on the link scale (used by leave-future-out scores and backtests).
    draw_shared : callable, optional
        As ``draw``, with one noise quantile per sample shared by all rows (common random
        numbers): each row's distribution is ``draw``'s, and intervals along a curve come
        without Monte Carlo jitter from row to row. Without it, ``draw`` is used.
    """

    name: str
    priors: dict[str, Prior] = field(default_factory=dict)
    build: Callable[..., Any] | None = None
    draw: Callable[..., Any] | None = None
    observed_transform: Callable[[np.ndarray], np.ndarray] = staticmethod(lambda y: y)
    needs_trials: bool = False
    #: Optional ``logpdf(y, eta, noise, data) -> array`` in numpy, the pointwise log
    #: density of the link-scale observations (shapes broadcast like ``draw``). Used to fill the
    #: ``log_likelihood`` group without compiling a PyTensor function.
    logpdf: Callable[..., Any] | None = None
    #: The law's mean is a probability, clipped into [0, 1] (:func:`_clip_p`): the mean
    #: of the observations where a law leaves the unit interval (``exp_error_of_loss``
    #: at a low loss) is that of the clipped value.
    probability: bool = False
    #: See the class docstring: ``draw`` with noise shared by the rows (for smooth bands).
    draw_shared: Callable[..., Any] | None = None


def _dim(data) -> str:
    """Row dimension of the observed variable (``data["dim"]``, default ``"obs"``)."""
    return (data or {}).get("dim", "obs")


def _studentt_build(eta, y, noise, data):
    import pymc as pm

    return pm.StudentT(
        "y_obs", nu=noise["nu"], mu=eta, sigma=noise["sigma"], observed=y, dims=_dim(data)
    )


def _studentt_draw(eta, noise, rng, data):
    t = rng.standard_t(np.broadcast_to(noise["nu"], eta.shape))
    return eta + noise["sigma"] * t


def _studentt_draw_shared(eta, noise, rng, data):
    nu = np.broadcast_to(noise["nu"], (eta.shape[0], 1))
    return eta + noise["sigma"] * rng.standard_t(nu)


def _normal_build(eta, y, noise, data):
    import pymc as pm

    return pm.Normal("y_obs", mu=eta, sigma=noise["sigma"], observed=y, dims=_dim(data))


def _normal_draw(eta, noise, rng, data):
    return eta + noise["sigma"] * rng.standard_normal(eta.shape)


def _normal_draw_shared(eta, noise, rng, data):
    return eta + noise["sigma"] * rng.standard_normal((eta.shape[0], 1))


def _shared_uniform(eta, rng) -> np.ndarray:
    """One uniform per sample, shape ``(samples, 1)``, strictly inside (0, 1) for ``ppf``."""
    return np.clip(rng.uniform(size=(eta.shape[0], 1)), 1e-12, 1.0 - 1e-12)


def _studentt_logpdf(y, eta, noise, data):
    from scipy.special import gammaln

    nu, sigma = noise["nu"], noise["sigma"]
    z = (y - eta) / sigma
    return (
        gammaln((nu + 1.0) / 2.0)
        - gammaln(nu / 2.0)
        - 0.5 * np.log(nu * np.pi)
        - np.log(sigma)
        - (nu + 1.0) / 2.0 * np.log1p(z * z / nu)
    )


def _normal_logpdf(y, eta, noise, data):
    sigma = noise["sigma"]
    z = (y - eta) / sigma
    return -0.5 * z * z - np.log(sigma) - 0.5 * np.log(2.0 * np.pi)


_LIKELIHOODS: dict[str, Likelihood] = {
    "studentt": Likelihood(
        "studentt",
        priors={
            "sigma": Prior("HalfNormal", sigma=0.05),
            "nu": Prior("Gamma", alpha=2.0, beta=0.1),
        },
        build=_studentt_build,
        draw=_studentt_draw,
        logpdf=_studentt_logpdf,
        draw_shared=_studentt_draw_shared,
    ),
    "normal": Likelihood(
        "normal",
        priors={"sigma": Prior("HalfNormal", sigma=0.05)},
        build=_normal_build,
        draw=_normal_draw,
        logpdf=_normal_logpdf,
        draw_shared=_normal_draw_shared,
    ),
}


# ---- accuracy likelihoods ------------------------------------------------------------
#
# The law's mean ``eta`` is a probability (identity link). It is clipped to
# [P_EPS, 1 - P_EPS] so that draws of a law that can leave the unit interval (the
# exponential error law, the U-shaped trend) give a finite density.
# ``data["frame"]`` holds the validated rows: ``y`` the accuracy fraction and, for the
# count likelihoods, ``n`` the number of trials (questions).

P_EPS = 1e-6
#: Trials used for predictive draws of rows that carry no ``n`` column and a fit
#: that has no training ``n`` either.
DEFAULT_TRIALS = 1000


def _clip_p(eta):
    if type(eta).__module__.startswith("pytensor") or hasattr(eta, "owner"):
        import pytensor.tensor as pt

        return pt.clip(eta, P_EPS, 1.0 - P_EPS)
    return np.clip(eta, P_EPS, 1.0 - P_EPS)


def _counts(frame) -> tuple[np.ndarray, np.ndarray]:
    n = frame["n"].to_numpy(dtype=float)
    k = np.rint(frame["y"].to_numpy(dtype=float) * n)
    return k.astype("int64"), n.astype("int64")


def _trials_for(data, shape) -> np.ndarray:
    """Trials per row for predictive draws: the row's ``n``, else the training mean."""
    frame = data.get("frame")
    if frame is not None and "n" in frame.columns:
        n = frame["n"].to_numpy(dtype=float)
    else:
        train = data.get("train")
        if train is not None and "n" in train.columns:
            n = np.full(shape[-1], float(np.rint(train["n"].mean())))
        else:
            n = np.full(shape[-1], float(DEFAULT_TRIALS))
    return np.broadcast_to(np.rint(n).astype("int64"), shape)


def _binomial_build(eta, y, noise, data):
    import pymc as pm

    k, n = _counts(data["frame"])
    n_data = pm.Data("n_trials", n, dims=_dim(data))
    k_data = pm.Data("k_obs", k, dims=_dim(data))
    return pm.Binomial("y_obs", n=n_data, p=_clip_p(eta), observed=k_data, dims=_dim(data))


def _binomial_draw(eta, noise, rng, data):
    n = _trials_for(data, eta.shape)
    return rng.binomial(n, _clip_p(eta)) / n


def _binomial_draw_shared(eta, noise, rng, data):
    from scipy.stats import binom

    n = _trials_for(data, eta.shape)
    return binom.ppf(_shared_uniform(eta, rng), n, _clip_p(eta)) / n


def _betabinomial_build(eta, y, noise, data):
    import pymc as pm

    k, n = _counts(data["frame"])
    n_data = pm.Data("n_trials", n, dims=_dim(data))
    k_data = pm.Data("k_obs", k, dims=_dim(data))
    p = _clip_p(eta)
    phi = noise["phi"]
    return pm.BetaBinomial(
        "y_obs", n=n_data, alpha=p * phi, beta=(1.0 - p) * phi, observed=k_data, dims=_dim(data)
    )


def _betabinomial_draw(eta, noise, rng, data):
    n = _trials_for(data, eta.shape)
    p = _clip_p(eta)
    phi = noise["phi"]
    q = rng.beta(p * phi, (1.0 - p) * phi)
    return rng.binomial(n, q) / n


def _betabinomial_draw_shared(eta, noise, rng, data):
    from scipy.stats import beta, binom

    n = _trials_for(data, eta.shape)
    p, phi = _clip_p(eta), noise["phi"]
    q = beta.ppf(_shared_uniform(eta, rng), p * phi, (1.0 - p) * phi)
    return binom.ppf(_shared_uniform(eta, rng), n, q) / n


def squeeze_unit(y: np.ndarray, n: np.ndarray | None = None) -> np.ndarray:
    """Move scores of exactly 0 or 1 inside (0, 1) for the Beta likelihood.

    With trials ``n`` known the bounds are ``0.5/n`` and ``1 - 0.5/n`` (half a
    question); otherwise ``1e-3`` and ``1 - 1e-3``.

    Scores inside are kept as they are, even within half a question of a bound (a score
    that is not a count, 0.981 of 10 questions, was moved to 0.95).

    Examples
    --------
    >>> squeeze_unit(np.array([0.0, 0.5, 1.0])).tolist()
    [0.001, 0.5, 0.999]
    >>> squeeze_unit(np.array([0.0, 0.02, 0.981, 1.0]), np.full(4, 10)).tolist()
    [0.05, 0.02, 0.981, 0.95]
    """
    y = np.asarray(y, dtype=float)
    eps = 1e-3 if n is None else 0.5 / np.asarray(n, dtype=float)
    return np.where(y <= 0.0, eps, np.where(y >= 1.0, 1.0 - eps, y))


def _beta_build(eta, y, noise, data):
    import pymc as pm

    frame = data["frame"]
    n = frame["n"].to_numpy(dtype=float) if "n" in frame.columns else None
    obs = squeeze_unit(frame["y"].to_numpy(dtype=float), n)
    y_sq = pm.Data("y_unit", obs, dims=_dim(data))
    p = _clip_p(eta)
    phi = noise["phi"]
    return pm.Beta("y_obs", alpha=p * phi, beta=(1.0 - p) * phi, observed=y_sq, dims=_dim(data))


def _beta_draw(eta, noise, rng, data):
    p = _clip_p(eta)
    phi = noise["phi"]
    return rng.beta(p * phi, (1.0 - p) * phi)


def _beta_draw_shared(eta, noise, rng, data):
    from scipy.stats import beta

    p, phi = _clip_p(eta), noise["phi"]
    return beta.ppf(_shared_uniform(eta, rng), p * phi, (1.0 - p) * phi)


def _row_counts(y, data) -> tuple[np.ndarray, np.ndarray]:
    """Correct answers and trials of the rows whose accuracy fractions are ``y``."""
    n = data["frame"]["n"].to_numpy(dtype=float)
    return np.rint(np.asarray(y, dtype=float) * n), n


def _binomial_logpdf(y, eta, noise, data):
    from scipy.stats import binom

    k, n = _row_counts(y, data)
    return binom.logpmf(k, n, _clip_p(eta))


def _betabinomial_logpdf(y, eta, noise, data):
    from scipy.stats import betabinom

    k, n = _row_counts(y, data)
    p, phi = _clip_p(eta), noise["phi"]
    return betabinom.logpmf(k, n, p * phi, (1.0 - p) * phi)


def _beta_logpdf(y, eta, noise, data):
    from scipy.stats import beta

    frame = data.get("frame")
    n = frame["n"].to_numpy(dtype=float) if frame is not None and "n" in frame else None
    p, phi = _clip_p(eta), noise["phi"]
    return beta.logpdf(squeeze_unit(np.asarray(y, dtype=float), n), p * phi, (1.0 - p) * phi)


_LIKELIHOODS["binomial"] = Likelihood(
    "binomial", priors={}, build=_binomial_build, draw=_binomial_draw, needs_trials=True,
    logpdf=_binomial_logpdf, probability=True, draw_shared=_binomial_draw_shared,
)
_LIKELIHOODS["betabinomial"] = Likelihood(
    "betabinomial",
    priors={"phi": Prior("Gamma", alpha=2.0, beta=0.01)},
    build=_betabinomial_build,
    draw=_betabinomial_draw,
    needs_trials=True,
    logpdf=_betabinomial_logpdf,
    probability=True,
    draw_shared=_betabinomial_draw_shared,
)
_LIKELIHOODS["beta"] = Likelihood(
    "beta",
    priors={"phi": Prior("LogNormal", mu=float(np.log(200.0)), sigma=1.5)},
    build=_beta_build,
    draw=_beta_draw,
    logpdf=_beta_logpdf,
    probability=True,
    draw_shared=_beta_draw_shared,
)


def _ar1():
    from . import autocorr

    return Likelihood(
        "ar1",
        priors={
            "sigma": Prior("HalfNormal", sigma=0.05),
            "nu": Prior("Gamma", alpha=2.0, beta=0.1),
            # decades of scale: median 0.1, 90% between 0.019 and 0.52, 1.3 at 99.5%. A
            # correlation longer than the fitted span is a smooth drift the law's own
            # curvature can express: prior mass there (the former sigma=1.5 reached 1.2 at
            # 95%) gave learning curves a second mode with another asymptote that NUTS
            # could not mix with (docs/calibration.md, "Choosing the prior")
            "corr_length": Prior("LogNormal", mu=float(np.log(0.1)), sigma=1.0),
        },
        build=autocorr.build,
        draw=autocorr.draw,
        logpdf=autocorr.logpdf,
    )


#: Student-t residuals that follow an AR(1) process in log scale within each run
#: (:mod:`bayescale.autocorr`): for checkpoints and learning curves.
_LIKELIHOODS["ar1"] = _ar1()


def register_likelihood(lik: Likelihood) -> Likelihood:
    """Add a likelihood to the registry (used by accuracy and onset laws)."""
    _LIKELIHOODS[lik.name] = lik
    return lik


def get_likelihood(name: str) -> Likelihood:
    """Look a likelihood up by name.

    Examples
    --------
    >>> sorted(get_likelihood("studentt").priors)
    ['nu', 'sigma']
    """
    if name not in _LIKELIHOODS:
        raise LawError(
            f"Unknown likelihood {name!r}; known: {sorted(_LIKELIHOODS)}."
            + did_you_mean(name, _LIKELIHOODS)
        )
    return _LIKELIHOODS[name]
