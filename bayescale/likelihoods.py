"""Likelihoods: how observations relate to the law's mean curve.

Each likelihood knows its noise parameters and default priors, builds the
observed variable inside a PyMC model, and draws posterior predictive values in
numpy (so prediction needs no PyMC round trip).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import LawError
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
        ``eta`` is the linear predictor on the link scale.
    draw : callable
        ``draw(eta, noise, rng, data) -> draws of y`` in numpy; ``eta`` has shape
        ``(samples, rows)`` and noise values shape ``(samples, 1)``.
    logpdf : callable, optional
        ``logpdf(y, eta, noise, data) -> log density`` in numpy, shape ``(samples, rows)``,
        of ``y`` on the link scale (used by leave-future-out scores and backtests).
    """

    name: str
    priors: dict[str, Prior] = field(default_factory=dict)
    build: Callable[..., Any] | None = None
    draw: Callable[..., Any] | None = None
    observed_transform: Callable[[np.ndarray], np.ndarray] = staticmethod(lambda y: y)
    logpdf: Callable[..., Any] | None = None


def _studentt_build(eta, y, noise, data):
    import pymc as pm

    return pm.StudentT(
        "y_obs", nu=noise["nu"], mu=eta, sigma=noise["sigma"], observed=y, dims="obs"
    )


def _studentt_draw(eta, noise, rng, data):
    t = rng.standard_t(np.broadcast_to(noise["nu"], eta.shape))
    return eta + noise["sigma"] * t


def _normal_build(eta, y, noise, data):
    import pymc as pm

    return pm.Normal("y_obs", mu=eta, sigma=noise["sigma"], observed=y, dims="obs")


def _normal_draw(eta, noise, rng, data):
    return eta + noise["sigma"] * rng.standard_normal(eta.shape)


def _studentt_logpdf(y, eta, noise, data):
    from scipy import stats

    return stats.t.logpdf(y, df=noise["nu"], loc=eta, scale=noise["sigma"])


def _normal_logpdf(y, eta, noise, data):
    from scipy import stats

    return stats.norm.logpdf(y, loc=eta, scale=noise["sigma"])


_LIKELIHOODS: dict[str, Likelihood] = {
    "studentt": Likelihood(
        "studentt",
        priors={"sigma": Prior("HalfNormal", sigma=0.05), "nu": Prior("Gamma", alpha=2.0, beta=0.1)},
        build=_studentt_build,
        draw=_studentt_draw,
        logpdf=_studentt_logpdf,
    ),
    "normal": Likelihood(
        "normal",
        priors={"sigma": Prior("HalfNormal", sigma=0.05)},
        build=_normal_build,
        draw=_normal_draw,
        logpdf=_normal_logpdf,
    ),
}


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
        raise LawError(f"Unknown likelihood {name!r}; known: {sorted(_LIKELIHOODS)}.")
    return _LIKELIHOODS[name]
