"""An experiment, not part of the package: Student-t noise whose scale trends with scale.

Registers the likelihood ``"studentt_trend"`` (``python benchmarks/calibration.py
--likelihood studentt_trend``): the law's Student-t residuals on the log scale with a
noise scale that changes log-linearly in the row's log10 scale ``u`` (compute, else
``6 N D``, else the input), measured from the largest fitted scale::

    sigma_i = sigma * exp(sigma_slope * min(u_i - u_max, 0)),   sigma_slope ~ Normal(0, 1)

so ``sigma`` is the noise at the top of the data, and a forecast beyond it keeps that
noise (growth beyond the data is the calibrated discrepancy's job). Question asked: do the
misses of extrapolations come from noise that differs at the top of a ladder (on
Chinchilla's points the residual scatter of the largest quarter of models is 2-3x that of
the rest, on Porian's IsoFLOP ladders it is 3-4x smaller)? Results and reading:
docs/calibration.md, "Experiment (rejected): noise that trends with scale".

The numpy log density measures ``u_max`` on the training rows when given them
(``data["train"]``) and on the rows scored otherwise: enough for the fits of this
benchmark, not for scoring held-out rows (``bs.compare``'s leave-future-out).
"""

from __future__ import annotations

import numpy as np

from bayescale.fit import scale_of
from bayescale.likelihoods import Likelihood, _studentt_logpdf, register_likelihood
from bayescale.priors import Prior


def _z(spec, frame, train=None):
    """Decades below the largest fitted scale (0 at and beyond it)."""
    u = np.log10(scale_of(spec.law, frame))
    top = u.max() if train is None else np.log10(scale_of(spec.law, train)).max()
    return np.minimum(u - top, 0.0)


def _build(eta, y, noise, data):
    import pymc as pm

    dim = data.get("dim", "obs")
    z = pm.Data("noise_z", _z(data["spec"], data["frame"]), dims=dim)
    sigma = noise["sigma"] * pm.math.exp(noise["sigma_slope"] * z)
    return pm.StudentT("y_obs", nu=noise["nu"], mu=eta, sigma=sigma, observed=y, dims=dim)


def _noise_of(noise, data):
    z = _z(data["spec"], data["frame"], data.get("train"))
    return {"nu": noise["nu"], "sigma": noise["sigma"] * np.exp(noise["sigma_slope"] * z)}


def _draw(eta, noise, rng, data):
    n = _noise_of(noise, data)
    return eta + n["sigma"] * rng.standard_t(np.broadcast_to(n["nu"], eta.shape))


def _logpdf(y, eta, noise, data):
    return _studentt_logpdf(y, eta, _noise_of(noise, data), data)


register_likelihood(
    Likelihood(
        "studentt_trend",
        priors={
            "sigma": Prior("HalfNormal", sigma=0.05),
            "nu": Prior("Gamma", alpha=2.0, beta=0.1),
            "sigma_slope": Prior("Normal", mu=0.0, sigma=1.0),
        },
        build=_build,
        draw=_draw,
        logpdf=_logpdf,
    )
)
