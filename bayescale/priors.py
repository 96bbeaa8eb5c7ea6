"""Prior descriptions and their translation into PyMC random variables.

A prior is a *description*: a distribution name as PyMC spells it plus its
keyword arguments. Laws carry defaults; users override them by parameter name
with a plain dict merge. Two bayescale-specific names exist:

``"BelowMin"``
    ``theta = bound * sigmoid(z)``, ``z ~ Normal(mu, sigma)``, where ``bound`` is the
    smallest observed response of the rows the parameter applies to. Used for an
    irreducible loss that must sit below every observed loss.
``"AboveMax"``
    ``theta = bound * (1 + exp(z))``, ``z ~ Normal(mu, sigma)``, where ``bound`` is the
    largest observed response. Used for a ceiling (e.g. the random-guessing error
    ``e_0`` of :func:`~bayescale.laws.m4`) that must sit above every observed value.
``"Fixed"``
    the parameter is a constant ``value`` (e.g. a known chance level).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import LawError

_REAL = {"Normal", "StudentT", "Cauchy", "Laplace", "Logistic", "Flat"}
_POSITIVE = {
    "HalfNormal",
    "HalfStudentT",
    "HalfCauchy",
    "LogNormal",
    "Gamma",
    "Exponential",
    "InverseGamma",
    "Weibull",
}
_UNIT = {"Beta", "Kumaraswamy", "LogitNormal"}
_SPECIAL = {"BelowMin", "AboveMax", "Fixed"}


@dataclass(frozen=True)
class Prior:
    """A prior description: a PyMC distribution name and its parameters.

    Parameters
    ----------
    dist : str
        Name of a ``pymc`` distribution (``"Normal"``, ``"Beta"``, ``"HalfNormal"``,
        ``"LogNormal"``, ``"TruncatedNormal"``, ...) or ``"BelowMin"`` / ``"AboveMax"`` /
        ``"Fixed"``.
    **params
        The distribution's keyword arguments.

    Examples
    --------
    >>> Prior("Beta", alpha=3, beta=7)
    Prior('Beta', alpha=3, beta=7)
    >>> Prior("Beta", alpha=3, beta=7).support
    'unit'
    """

    dist: str
    params: dict[str, Any] = field(default_factory=dict)

    def __init__(self, dist: str, **params: Any) -> None:
        if not isinstance(dist, str):  # Prior(None): getattr(pm, None) raised a TypeError
            raise LawError(
                f"Prior takes a distribution's name first, e.g. Prior('Normal', mu=0, sigma=1); "
                f"got {dist!r}."
            )
        object.__setattr__(self, "dist", dist)
        # a number given as a numpy scalar or 0-d array is kept as the Python number: one
        # hashes (compiled models are keyed on priors) and saves with the fit (JSON)
        object.__setattr__(self, "params", {
            k: v.item() if isinstance(v, (np.ndarray, np.generic)) and np.ndim(v) == 0 else v
            for k, v in params.items()})
        if dist not in _REAL | _POSITIVE | _UNIT | _SPECIAL | {"TruncatedNormal", "Uniform"}:
            import pymc as pm

            if not hasattr(pm, dist):
                raise LawError(
                    f"Unknown prior distribution {dist!r}: use a pymc distribution name "
                    "such as 'Normal', 'Beta', 'HalfNormal', 'LogNormal' or 'TruncatedNormal'."
                )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"Prior({self.dist!r}{', ' if args else ''}{args})"

    def __hash__(self) -> int:
        return hash((self.dist, tuple(sorted(self.params.items()))))

    @property
    def support(self) -> str:
        """Support of the distribution: ``real``, ``positive``, ``unit`` or ``interval``."""
        if self.dist in _REAL:
            return "real"
        if self.dist in _POSITIVE:
            return "positive"
        if self.dist in _UNIT:
            return "unit"
        if self.dist in {"TruncatedNormal", "Uniform", "BelowMin", "AboveMax"}:
            return "interval"
        if self.dist == "Fixed":
            return "fixed"
        return _pymc_support(self)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to a JSON-friendly dict."""
        return {"dist": self.dist, **{k: _plain(v) for k, v in self.params.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Prior:
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        return cls(d.pop("dist"), **d)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.params.items())
        return f"{self.dist}({args})"


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    return v


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def as_prior(value: Any, name: str) -> Prior:
    """Coerce a user value (``Prior``, ``(dist, {kw})`` tuple or dict) to a :class:`Prior`.

    Examples
    --------
    >>> as_prior(("Normal", {"mu": 0, "sigma": 1}), "r")
    Prior('Normal', mu=0, sigma=1)
    >>> as_prior(0.25, "chance")
    Prior('Fixed', value=0.25)
    """
    if isinstance(value, Prior):
        return value
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return Prior("Fixed", value=float(value))  # numpy's too: priors={"E": df.E.max()}
    if isinstance(value, dict) and "dist" in value:
        return Prior.from_dict(value)
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str):
        return Prior(value[0], **dict(value[1]))
    raise LawError(
        f"Prior for {name!r} must be a bayescale.Prior, a (dist, {{params}}) tuple, a dict "
        f"with a 'dist' key or a number (fixed value); got {value!r}."
    )


#: Parameters that must be positive, by distribution (PyMC's names).
_POSITIVE_PARAMS = {
    "Normal": ("sigma", "tau"),
    "StudentT": ("nu", "sigma", "lam"),
    "Cauchy": ("beta",),
    "Laplace": ("b",),
    "Logistic": ("s",),
    "HalfNormal": ("sigma", "tau"),
    "HalfStudentT": ("nu", "sigma", "lam"),
    "HalfCauchy": ("beta",),
    "LogNormal": ("sigma", "tau"),
    "Gamma": ("alpha", "beta", "mu", "sigma"),
    "Exponential": ("lam", "scale"),
    "InverseGamma": ("alpha", "beta", "mu", "sigma"),
    "Weibull": ("alpha", "beta"),
    "Beta": ("alpha", "beta", "sigma", "nu"),
    "Kumaraswamy": ("a", "b"),
    "LogitNormal": ("sigma", "tau"),
    "TruncatedNormal": ("sigma", "tau"),
    "BelowMin": ("sigma",),
    "AboveMax": ("sigma",),
}
#: The parameters bayescale's own prior names take.
_SPECIAL_PARAMS = {"BelowMin": {"mu", "sigma"}, "AboveMax": {"mu", "sigma"}, "Fixed": {"value"}}


def check_prior(name: str, prior: Prior) -> None:
    """Raise a clear LawError for a prior that PyMC would reject or sample as NaN.

    Checks that every parameter is a finite number, that scales are positive, that an
    interval has ``lower < upper``, and that PyMC's distribution takes the parameters
    given (names and parameterisation). Runs before a model is built, so a bad prior
    never surfaces as a failed initial point inside the sampler.

    Examples
    --------
    >>> check_prior("alpha", Prior("Beta", alpha=3, beta=7))
    >>> check_prior("alpha", Prior("HalfNormal", sigma=0))
    Traceback (most recent call last):
    ...
    bayescale.errors.LawError: Prior of 'alpha': sigma of HalfNormal must be positive, got 0.
    """
    for k, v in prior.params.items():
        # one real number per parameter: "1" passed np.asarray(float) and then failed in
        # PyTensor; [0.1, 0.2] broadcast against the data's rows inside the model
        if isinstance(v, (str, bytes, bool)) or np.ndim(v) != 0:
            raise LawError(
                f"Prior of {name!r}: {k} of {prior.dist} must be one number, got {v!r}."
            )
        try:
            arr = np.asarray(v, dtype=float)
        except (TypeError, ValueError):
            raise LawError(
                f"Prior of {name!r}: {k} of {prior.dist} must be a number, got {v!r}."
            ) from None
        bounds = k in ("lower", "upper")  # an infinite bound means none
        if np.isnan(arr).any() or (not bounds and not np.isfinite(arr).all()):
            raise LawError(f"Prior of {name!r}: {k} of {prior.dist} must be finite, got {v!r}.")
        if k in _POSITIVE_PARAMS.get(prior.dist, ()) and (arr <= 0).any():
            raise LawError(
                f"Prior of {name!r}: {k} of {prior.dist} must be positive, got {v!r}."
            )
    mu, sd = prior.params.get("mu"), prior.params.get("sigma")
    if prior.dist == "Beta" and mu is not None and sd is not None and not (
            0 < float(mu) < 1 and float(sd) ** 2 < float(mu) * (1 - float(mu))):
        # alpha = mu (mu (1 - mu) / sigma^2 - 1) <= 0: a log density of -inf everywhere,
        # said only when sampling could not start
        raise LawError(
            f"Prior of {name!r}: Beta(mu={mu}, sigma={sd}) needs 0 < mu < 1 and sigma^2 < "
            f"mu (1 - mu) = {float(mu) * (1 - float(mu)):.4g} (else no Beta has them)."
        )
    if prior.dist in {"TruncatedNormal", "Uniform"}:
        lo, hi = interval_bounds(prior)
        if not lo < hi:
            raise LawError(
                f"Prior of {name!r}: {prior.dist} needs lower < upper, got lower={lo}, "
                f"upper={hi}."
            )
    if prior.dist in _SPECIAL_PARAMS:
        unknown = sorted(set(prior.params) - _SPECIAL_PARAMS[prior.dist])
        if unknown or (prior.dist == "Fixed" and "value" not in prior.params):
            raise LawError(
                f"Prior of {name!r}: {prior.dist} takes {sorted(_SPECIAL_PARAMS[prior.dist])}, "
                f"got {sorted(prior.params)}."
            )
        return
    _check_pymc_parameters(name, prior)
    if _facts(prior)[3]:  # nutpie's initial point failed on it: "Cannot convert ... int64"
        raise LawError(
            f"Prior of {name!r}: pymc.{prior.dist} is a distribution of whole numbers; "
            "parameters are continuous: use a continuous distribution (e.g. 'Gamma' or "
            "'LogNormal' for a positive one), or a number to fix it."
        )


@functools.lru_cache(maxsize=256)
def _pymc_facts(prior: Prior) -> tuple[str, float, float, bool]:
    """What PyMC's distribution of ``prior`` says about its values.

    Its default transform (the class name), its interval's bounds (``-inf``/``inf`` where
    open) and whether its values are whole numbers; ``("", -inf, inf, False)`` where PyMC
    does not build it (check_prior reports that).
    """
    import pymc as pm
    from pymc.distributions.transforms import _default_transform

    try:
        rv = getattr(pm, prior.dist).dist(**prior.params)
        transform = _default_transform(rv.owner.op, rv)
    except Exception:  # noqa: BLE001 - check_prior reports a prior PyMC rejects
        return "", -np.inf, np.inf, False
    name = type(transform).__name__
    lo, hi = -np.inf, np.inf
    if name == "Interval":  # Triangular(lower, c, upper), Pareto(alpha, m): m and above
        a, b = transform.args_fn(*rv.owner.inputs)
        lo = -np.inf if a is None else float(a.eval() if hasattr(a, "eval") else a)
        hi = np.inf if b is None else float(b.eval() if hasattr(b, "eval") else b)
    return name, lo, hi, not str(rv.dtype).startswith("float")


def _facts(prior: Prior) -> tuple[str, float, float, bool]:
    """:func:`_pymc_facts`, cached where the prior's parameters can be hashed."""
    try:
        return _pymc_facts(prior)
    except TypeError:  # unhashable parameters (0-d arrays): not cached
        return _pymc_facts.__wrapped__(prior)


#: Support of a distribution by the class of PyMC's default transform (else ``real``).
_TRANSFORM_SUPPORT = {"LogTransform": "positive", "LogOddsTransform": "unit",
                      "Interval": "interval"}


def _pymc_support(prior: Prior) -> str:
    """Support of a distribution not listed above, from PyMC's default transform.

    ``positive`` (log transform: ``ChiSquared``, ``Wald``, ``HalfFlat``, ...), ``unit``
    (log-odds) or ``interval`` (``Triangular``, ``Pareto``: bounds from
    :func:`interval_bounds`); else ``real``. A positive prior taken as real let a pooled
    parameter's levels leave its support (``k ~ ChiSquared(3)`` pooled: 3% of levels
    negative; ``Pareto(alpha=3, m=0.2)``: 36% below ``m``).

    Examples
    --------
    >>> Prior("ChiSquared", nu=3).support, Prior("SkewNormal", alpha=2).support
    ('positive', 'real')
    >>> Prior("Triangular", lower=0, c=0.3, upper=1).support
    'interval'
    """
    return _TRANSFORM_SUPPORT.get(_facts(prior)[0], "real")


@functools.lru_cache(maxsize=256)
def _pymc_accepts(prior: Prior) -> str:
    """Empty if ``pymc.<dist>.dist(**params)`` builds, else PyMC's complaint."""
    import pymc as pm

    dist = getattr(pm, prior.dist)
    if not hasattr(dist, "dist"):
        return "not a distribution"
    try:
        dist.dist(**prior.params)
    except (TypeError, ValueError) as exc:
        return str(exc).replace("RandomVariable.make_node() got an ", "")
    return ""


def _check_pymc_parameters(name: str, prior: Prior) -> None:
    try:
        why = _pymc_accepts(prior)
    except TypeError:  # unhashable parameter values (arrays): let PyMC judge at build time
        return
    if why == "not a distribution":
        raise LawError(
            f"Prior of {name!r}: pymc.{prior.dist} is not a distribution; use one such as "
            "'Normal', 'HalfNormal', 'LogNormal' or 'Beta'."
        )
    if why:
        raise LawError(
            f"Prior of {name!r}: pymc.{prior.dist} does not take {prior.params} ({why}). "
            f"Use the parameter names of pymc.{prior.dist}."
        )


def interval_bounds(prior: Prior) -> tuple[float, float]:
    """Lower and upper bound of an interval prior (``TruncatedNormal``/``Uniform``, others).

    A bound left out is PyMC's default: none for ``TruncatedNormal``, 0 and 1 for
    ``Uniform``. Other distributions with an interval transform (``Triangular``,
    ``Pareto``) take its bounds.

    Examples
    --------
    >>> interval_bounds(Prior("Uniform", upper=0.9)), interval_bounds(Prior("TruncatedNormal"))
    ((0.0, 0.9), (-inf, inf))
    """
    p = prior.params
    if prior.dist not in {"TruncatedNormal", "Uniform"}:  # PyMC's own interval transform
        return _facts(prior)[1:3]
    uniform = prior.dist == "Uniform"
    lo = float(p.get("lower", 0.0 if uniform else -np.inf))
    hi = float(p.get("upper", 1.0 if uniform else np.inf))
    return lo, hi


def create(name: str, prior: Prior, *, dims: Any = None, bound: Any = None):
    """Create the PyMC variable for ``prior`` inside the current model context.

    ``bound`` is the upper bound used by ``BelowMin`` and the lower bound used by
    ``AboveMax`` (a number or tensor).
    """
    import pymc as pm

    if prior.dist == "Fixed":
        return pm.Deterministic(name, pm.math.constant(float(prior.params["value"])))
    if prior.dist == "BelowMin":
        z = pm.Normal(
            f"{name}_logit",
            float(prior.params.get("mu", 1.0)),
            float(prior.params.get("sigma", 1.5)),
            dims=dims,
        )
        return pm.Deterministic(name, bound * pm.math.sigmoid(z), dims=dims)
    if prior.dist == "AboveMax":
        z = pm.Normal(
            f"{name}_loggap",
            float(prior.params.get("mu", -1.0)),
            float(prior.params.get("sigma", 1.5)),
            dims=dims,
        )
        return pm.Deterministic(name, bound * (1.0 + pm.math.exp(z)), dims=dims)
    dist = getattr(pm, prior.dist)
    return dist(name, dims=dims, **prior.params)
