"""The :class:`Law` type, the :func:`law` decorator and the law registry.

A law is a plain Python function whose positional arguments are its *inputs*
(``N``, ``D``, ``C``, ``x``, ...) and whose keyword-only arguments are its
*parameters*. Written with numpy ufuncs, the same function evaluates on numpy
arrays, on xarray posterior draws and on PyTensor tensors inside the PyMC model.
The decorator attaches default priors, the response link and likelihood, and
the declaration of power-law terms that the model builder centres for NUTS.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import LawError, did_you_mean, hints_for
from .priors import Prior, as_prior

#: Default reference scales for centred power-law terms (LAWS.md section 0).
REFERENCE_SCALES = {"N": 1e9, "D": 2e10, "C": 1e21}

_REGISTRY: dict[str, Law] = {}

#: Names of the law catalogue (``LAWS.md``) for laws registered under another name.
ALIASES = {
    "saturating_power_law": "power_law",
    "bnsl": "broken_power_law",
    "kaplan_nd": "kaplan",
}


@dataclass(frozen=True)
class Law:
    """A scaling law: a pure function plus priors, link and likelihood.

    Attributes
    ----------
    name : str
        Registry key (``bs.fit(df, name)``).
    func : callable
        ``func(*inputs, **params)``.
    inputs, params : tuple of str
        Read from the function signature (positional, keyword-only).
    priors : mapping
        Default :class:`~bayescale.Prior` per parameter.
    terms : mapping
        ``{coef: (exponent, input)}`` for every term ``coef * input**(-exponent)``.
        The model samples each coefficient as the log of the term's value at the
        data's centre, with the prior given at the reference scale (a shear with
        unit Jacobian), which removes the ``(log A, alpha)`` ridge.
    locations : mapping
        ``{param: input}`` for parameters that are positions on an input's scale
        (e.g. a break point); their prior is on ``log(param / centre of input)``.
    log10_positions : mapping
        ``{param: input}`` for parameters that are positions in ``log10`` of an input
        with a prior stated in its reference units (an onset ``x0`` in log10 FLOPs);
        when the data are in other units the prior moves with them
        (:func:`bayescale.model.reference_scales`).
    link : {"log", "identity"}
        Scale on which the likelihood compares law and data.
    likelihood : str
        Default likelihood name (see :mod:`bayescale.likelihoods`).
    response : str
        Default response column (``"loss"`` or ``"accuracy"``).
    falling_inputs : tuple of str
        Inputs that *fall* as models grow (a loss fed to an accuracy law): forecasts go
        below their fitted range, not above it (:func:`bayescale.fit.size_of`).
    user_priors : frozenset of str
        Parameters whose prior the user set with :meth:`with_priors`: like priors given
        to the fit, they are theirs, stated in the data's units, and never moved.
    """

    name: str
    func: Callable[..., Any]
    inputs: tuple[str, ...]
    params: tuple[str, ...]
    priors: Mapping[str, Prior]
    terms: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    locations: Mapping[str, str] = field(default_factory=dict)
    log10_positions: Mapping[str, str] = field(default_factory=dict)
    link: str = "log"
    likelihood: str = "studentt"
    response: str = "loss"
    equation: str = ""
    citation: str = ""
    positive_inputs: bool | tuple[str, ...] = True
    falling_inputs: tuple[str, ...] = ()
    user_priors: frozenset[str] = frozenset()

    def is_positive(self, inp: str) -> bool:
        """Whether input ``inp`` must be positive (``positive_inputs`` True or naming it)."""
        if isinstance(self.positive_inputs, bool):
            return self.positive_inputs
        return inp in self.positive_inputs

    def __repr__(self) -> str:
        # short: the dataclass's own repr (function, every prior and mapping) fills a
        # notebook screen per law, e.g. for ``bs.list_laws()``
        return (f"Law({self.name!r}: {self.equation or self.func.__name__}; "
                f"inputs={self.inputs}, params={self.params}, likelihood={self.likelihood!r})")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Evaluate the law (numpy, xarray or PyTensor inputs)."""
        return self.func(*args, **kwargs)

    def __copy__(self) -> Law:  # immutable: a copy is the law itself
        return self

    def __deepcopy__(self, memo: dict) -> Law:  # (by pickling, a law defined inside a
        return self                             # function could not be found again)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by reference (module attribute or registry name): the decorated
        # function is shadowed by the Law object in its module, so the default
        # pickling of ``func`` fails. Needed to send fits to worker processes.
        # The other fields travel by value: a copy made with ``with_priors`` (or
        # ``dataclasses.replace``) must keep its priors in a worker.
        module = getattr(self.func, "__module__", None)
        qualname = getattr(self.func, "__qualname__", None)
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                  if f.name != "func"}
        for k in ("priors", "terms", "locations", "log10_positions"):
            fields[k] = dict(fields[k])
        return (_restore_law, (self.name, module, qualname, fields))

    @property
    def doc(self) -> str:
        """First paragraph of the law's docstring."""
        return (inspect.getdoc(self.func) or "").split("\n\n")[0].replace("\n", " ")

    def with_priors(self, **priors: Any) -> Law:
        """Return a copy with some default priors replaced (by parameter name).

        As in :func:`bayescale.fit`'s ``priors=``: a number fixes a parameter (raw units);
        a coefficient's prior is on the log of its term at the reference scale and a
        location's on the log of its ratio to the data's centre (real-valued priors).

        Examples
        --------
        >>> from bayescale.laws import chinchilla
        >>> chinchilla.with_priors(alpha=Prior("Beta", alpha=2, beta=2)).priors["alpha"]
        Prior('Beta', alpha=2, beta=2)
        """
        unknown = set(priors) - set(self.params)
        if unknown:
            raise LawError(
                f"Unknown prior name(s) {sorted(unknown)} for law {self.name!r}; "
                f"its parameters are {list(self.params)}."
                + hints_for(sorted(unknown), self.params)
            )
        merged = dict(self.priors)
        merged.update({k: as_prior(v, k) for k, v in priors.items()})
        return dataclasses.replace(self, priors=merged,
                                   user_priors=self.user_priors | frozenset(priors))

    def support(self, param: str) -> str:
        """Support of a parameter's prior (``real``/``positive``/``unit``/...)."""
        if param in self.terms:
            return "coef"
        if param in self.locations:
            return "location"
        return self.priors[param].support


#: names of the model's own variables (noise parameters, data, run offsets), which a
#: law's inputs and parameters cannot take
RESERVED_NAMES = frozenset({"sigma", "nu", "phi", "corr_length", "sigma_run", "y", "y_obs",
                            "n_trials", "k_obs", "y_unit", "obs"})
RESERVED_SUFFIXES = ("_idx", "_log_centre", "_log_ref", "_bound_all")
#: what the model appends to a parameter's name for its own variables (a term's centred
#: coefficient A_c, a bounded parameter's E_logit, a group's offsets alpha_z_family, ...)
DERIVED_SUFFIXES = ("_c", "_ref", "_loc", "_logit", "_loggap")
DERIVED_INFIXES = ("_sd_", "_z_")


def law(
    func: Callable[..., Any] | None = None,
    *,
    priors: Mapping[str, Any],
    name: str | None = None,
    terms: Mapping[str, tuple[str, str]] | None = None,
    locations: Mapping[str, str] | None = None,
    log10_positions: Mapping[str, str] | None = None,
    link: str = "log",
    likelihood: str = "studentt",
    response: str = "loss",
    equation: str = "",
    citation: str = "",
    positive_inputs: bool | tuple[str, ...] = True,
    falling_inputs: tuple[str, ...] = (),
    register: bool = True,
) -> Any:
    """Turn a plain function into a :class:`Law` (and register it by name).

    Inputs come before ``*``, parameters after it. Every parameter needs a
    default prior; checked at definition time.

    Examples
    --------
    >>> import numpy as np
    >>> from bayescale import Prior, law
    >>> @law(priors={"a": Prior("Normal", mu=0, sigma=1), "b": Prior("Beta", alpha=3, beta=7)},
    ...      register=False)
    ... def my_law(x, *, a, b):
    ...     return np.exp(a) * x ** (-b)
    >>> my_law.inputs, my_law.params
    (('x',), ('a', 'b'))
    >>> float(my_law(10.0, a=0.0, b=1.0))
    0.1
    """

    def wrap(f: Callable[..., Any]) -> Law:
        sig = inspect.signature(f)
        inputs = tuple(
            p.name
            for p in sig.parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        )
        params = tuple(p.name for p in sig.parameters.values() if p.kind == p.KEYWORD_ONLY)
        if not inputs:
            raise LawError(f"Law {f.__name__!r} needs at least one input before '*'.")
        if not params:
            raise LawError(f"Law {f.__name__!r} needs keyword-only parameters after '*'.")
        for arg, value, example in (
                ("priors", priors, "{'alpha': bs.Prior('Beta', alpha=3, beta=7), ...}"),
                ("terms", terms, "{'A': ('alpha', 'N')} for a term A * N**-alpha"),
                ("locations", locations, "{'d': 'x'}"),
                ("log10_positions", log10_positions, "{'x0': 'C'}")):
            if value is not None and not isinstance(value, Mapping):
                raise LawError(f"{arg}= of law {f.__name__!r} takes a dict, e.g. {example}; "
                               f"got {value!r}.")
        pri = {k: as_prior(v, k) for k, v in priors.items()}
        missing = [p for p in params if p not in pri]
        extra = [p for p in pri if p not in params]
        if missing or extra:
            raise LawError(
                f"Priors of law {f.__name__!r} must match its parameters {list(params)}: "
                f"missing {missing}, unknown {extra}."
            )
        for coef, term in (terms or {}).items():
            if not (isinstance(term, (tuple, list)) and len(term) == 2):
                raise LawError(
                    f"Term {coef!r} of law {f.__name__!r} takes (exponent, input), e.g. "
                    f"terms={{{coef!r}: ('alpha', {inputs[0]!r})}}; got {term!r}."
                )
            expo, inp = term
            if coef not in params or expo not in params or inp not in inputs:
                raise LawError(
                    f"Term {coef!r}: ({expo!r}, {inp!r}) of law {f.__name__!r} must name a "
                    "coefficient, an exponent (parameters) and an input."
                )
            if expo in (terms or {}) and expo != coef:  # (built after the exponents)
                raise LawError(
                    f"Term {coef!r} of law {f.__name__!r} takes {expo!r} as its exponent, but "
                    f"{expo!r} is the coefficient of another term; an exponent is a "
                    "parameter of its own."
                )
            if coef == expo:
                raise LawError(
                    f"Term {coef!r} of law {f.__name__!r} names {coef!r} as both its "
                    f"coefficient and its exponent; a term is coefficient * input^-exponent, "
                    f"two different parameters, e.g. terms={{'A': ('alpha', {inp!r})}}."
                )
        for loc, inp in {**(locations or {}), **(log10_positions or {})}.items():
            if loc not in params or inp not in inputs:
                raise LawError(f"Location {loc!r} of law {f.__name__!r} is not a parameter/input.")
        roles = [(p, [r for r, m in (("terms", terms), ("locations", locations),
                                     ("log10_positions", log10_positions)) if p in (m or {})])
                 for p in params]
        twice = [(p, r) for p, r in roles if len(r) > 1]
        if twice:
            p, r = twice[0]
            raise LawError(
                f"Parameter {p!r} of law {f.__name__!r} is in {' and '.join(r)}; each "
                "parameter is sampled one way: name it in one of them."
            )
        if not isinstance(positive_inputs, bool):
            bad = [i for i in positive_inputs if i not in inputs]
            if bad:
                raise LawError(f"positive_inputs {bad} of law {f.__name__!r} are not inputs.")
        bad = [i for i in falling_inputs if i not in inputs]
        if bad:
            raise LawError(f"falling_inputs {bad} of law {f.__name__!r} are not inputs.")
        if link not in {"log", "identity"}:
            raise LawError(
                f"link must be 'log' (losses, compared on the log scale) or 'identity' "
                f"(accuracies), got {link!r}."
            )
        taken = [v for v in (*inputs, *params)
                 if v in RESERVED_NAMES or v.endswith(RESERVED_SUFFIXES)]
        if taken:
            raise LawError(
                f"Law {f.__name__!r} uses the name(s) {taken}, which the model gives to its "
                f"own variables (noise, data, group indices: {sorted(RESERVED_NAMES)} and "
                f"names ending in {list(RESERVED_SUFFIXES)}); rename them."
            )
        clash = [(v, p) for v in (*inputs, *params) for p in params
                 if v.startswith(p) and (v[len(p):] in DERIVED_SUFFIXES
                                         or v[len(p):].startswith(DERIVED_INFIXES))]
        if clash:
            v, p = clash[0]
            raise LawError(
                f"Law {f.__name__!r} names {v!r}, the name the model gives a variable of its "
                f"parameter {p!r} (names ending in {list(DERIVED_SUFFIXES)} or holding "
                f"{list(DERIVED_INFIXES)}); rename it."
            )
        obj = Law(
            name=name or f.__name__,
            func=f,
            inputs=inputs,
            params=params,
            priors=pri,
            terms={c: tuple(t) for c, t in (terms or {}).items()},
            locations=dict(locations or {}),
            log10_positions=dict(log10_positions or {}),
            link=link,
            likelihood=likelihood,
            response=response,
            equation=equation,
            citation=citation,
            positive_inputs=(
                positive_inputs if isinstance(positive_inputs, bool) else tuple(positive_inputs)
            ),
            falling_inputs=tuple(falling_inputs),
        )
        logged = [(p, inp, role) for role, pairs in (
            ("term", {c: t[1] for c, t in obj.terms.items()}),
            ("location", obj.locations), ("log10 position", obj.log10_positions))
            for p, inp in pairs.items() if not obj.is_positive(inp)]
        if logged:  # its log centre was taken as 0 and d = exp(u) > 0: silently wrong or NaN
            p, inp, role = logged[0]
            raise LawError(
                f"{p!r} of law {f.__name__!r} is a {role} on input {inp!r}, which is sampled "
                f"on the log scale of {inp!r}, but positive_inputs says {inp!r} may be zero "
                f"or negative. Name {inp!r} in positive_inputs, or declare {p!r} as a plain "
                "parameter (no terms=/locations=)."
            )
        from .model import check_link, check_log_scale_priors

        check_log_scale_priors(obj, obj.priors)  # a coefficient's prior is on a log scale
        from .likelihoods import get_likelihood

        try:
            get_likelihood(likelihood)
        except LawError:  # an unknown likelihood: said where the fit looks it up
            pass
        else:
            check_link(obj, likelihood)  # binomial on a log link: a constant likelihood
        if register:
            # a built-in's name or catalogue alias in any case ("Chinchilla" looked up the
            # built-in before and the user's law after, with no word)
            taken = {n.lower(): law for n, law in _REGISTRY.items() if _builtin(law)}
            taken.update({a.lower(): _REGISTRY.get(t) for a, t in ALIASES.items()})
            old = taken.get(obj.name.lower())
            if old is not None and _builtin(old) and not _builtin(obj):
                raise LawError(
                    f"{obj.name!r} is the name of a built-in law; registering yours under it "
                    f"would replace the built-in for every later fit. Name it differently "
                    f"(@bs.law(..., name='my_{obj.name}')) or pass register=False."
                )
            _REGISTRY[obj.name] = obj
        return obj

    return wrap(func) if func is not None else wrap


def _builtin(law: Law) -> bool:
    """True for the laws bayescale ships (defined in :mod:`bayescale.laws`)."""
    return getattr(law.func, "__module__", "").startswith("bayescale.laws")


def _restore_law(name: str, module: str | None, qualname: str | None,
                 fields: Mapping[str, Any] | None = None) -> Law:
    """Unpickle a :class:`Law`: the module attribute it was defined as, else by name.

    The pickled fields (priors, ...) replace that law's where they differ.

    Examples
    --------
    >>> import pickle
    >>> from bayescale.laws import chinchilla
    >>> c2 = chinchilla.with_priors(alpha=Prior("Beta", alpha=2, beta=2))
    >>> pickle.loads(pickle.dumps(c2)).priors["alpha"]
    Prior('Beta', alpha=2, beta=2)
    >>> pickle.loads(pickle.dumps(chinchilla)) is chinchilla
    True
    """
    import importlib

    base: Law | None = None
    if module and qualname and "<locals>" not in qualname:
        try:
            obj: Any = importlib.import_module(module)
            for part in qualname.split("."):
                obj = getattr(obj, part)
            if isinstance(obj, Law):
                base = obj
        except (ImportError, AttributeError):
            pass
    if base is None:
        base = get_law(name)
        own = (getattr(base.func, "__module__", None), getattr(base.func, "__qualname__", None))
        if module and qualname and own != (module, qualname):
            # a law made with register=False under a built-in's name came back as the
            # built-in, with the user's fields grafted on (another formula, unsaid)
            raise LawError(
                f"Law {name!r} was defined as {module}.{qualname}, which cannot be found "
                f"here (defined inside a function, or in a notebook that a worker process "
                f"does not run), and the law registered as {name!r} is another one "
                f"({own[0]}.{own[1]}). Define the law at the top level of an importable "
                "module, or run the fits in this process (executor='serial')."
            )
    changed = {k: v for k, v in (fields or {}).items() if getattr(base, k) != v}
    return dataclasses.replace(base, **changed) if changed else base


def law_doctests(namespace: Mapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """The functions behind a module's laws, for its ``__test__`` (doctest skips Law objects).

    Examples
    --------
    >>> from bayescale.laws import loss
    >>> "chinchilla" in loss.__test__
    True
    """
    here = namespace.get("__name__")
    return {k: v.func for k, v in namespace.items()
            if isinstance(v, Law) and getattr(v.func, "__module__", None) == here}


def get_law(law_or_name: str | Law) -> Law:
    """Look a law up by name (or pass a :class:`Law` through).

    Examples
    --------
    >>> get_law("chinchilla").inputs
    ('N', 'D')
    >>> get_law("saturating_power_law").name  # the catalogue's name (ALIASES)
    'power_law'
    """
    if isinstance(law_or_name, Law):
        return law_or_name
    from . import laws as _laws  # noqa: F401  (registers the built-ins)

    name = law_or_name
    if name not in _REGISTRY and name in ALIASES:
        name = ALIASES[name]
    if name not in _REGISTRY:
        aliases = ", ".join(f"{a} -> {t}" for a, t in ALIASES.items())
        raise LawError(
            f"Unknown law {law_or_name!r}.{did_you_mean(law_or_name, [*_REGISTRY, *ALIASES])}"
            f" Known laws: {sorted(_REGISTRY)} (also by the "
            f"catalogue's names: {aliases}). Define your own with the @bayescale.law "
            "decorator."
        )
    return _REGISTRY[name]


def list_laws() -> list[Law]:
    """All registered laws, sorted by name."""
    from . import laws as _laws  # noqa: F401

    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


# --- small helpers that work on numpy, xarray and PyTensor alike ---------------------


def _is_tensor(*xs: Any) -> bool:
    return any(type(x).__module__.startswith("pytensor") for x in xs)


def softplus(x: Any) -> Any:
    """``log(1 + exp(x))``, overflow-safe, on numpy/xarray/PyTensor values.

    Examples
    --------
    >>> round(float(softplus(0.0)), 6)
    0.693147
    """
    if _is_tensor(x):
        import pytensor.tensor as pt

        return pt.softplus(x)
    return np.logaddexp(0.0, x)


def logaddexp(a: Any, b: Any) -> Any:
    """``log(exp(a) + exp(b))`` on numpy/xarray/PyTensor values."""
    if _is_tensor(a, b):
        import pytensor.tensor as pt

        m = pt.maximum(a, b)
        return m + pt.log1p(pt.exp(-abs(a - b)))
    return np.logaddexp(a, b)


def smooth_min(a: Any, b: Any, tau: float = 0.01) -> Any:
    """Smooth minimum ``-tau * logaddexp(-a/tau, -b/tau)`` (never above ``min(a, b)``)."""
    return -tau * logaddexp(-a / tau, -b / tau)


def sigmoid(x: Any) -> Any:
    """Logistic function on numpy/xarray/PyTensor values.

    Exact in the tails on every kind (0.5 (1 + tanh(x / 2)) cancelled in numpy: 0 at
    x = -40, where PyTensor gave 4.25e-18, and the log of a law's value was -inf).

    Examples
    --------
    >>> float(sigmoid(-40.0))
    4.248354255291589e-18
    """
    if _is_tensor(x):
        import pytensor.tensor as pt

        return pt.sigmoid(x)
    from scipy.special import expit

    return expit(x if hasattr(x, "dims") else np.asarray(x, dtype=float))


def clip(x: Any, lo: Any, hi: Any) -> Any:
    """``min(max(x, lo), hi)`` elementwise on numpy/xarray/PyTensor values.

    Examples
    --------
    >>> clip(np.array([-2.0, 0.5, 3.0]), 0.0, 1.0).tolist()
    [0.0, 0.5, 1.0]
    """
    if _is_tensor(x, lo, hi):
        import pytensor.tensor as pt

        return pt.minimum(pt.maximum(x, lo), hi)
    return np.minimum(np.maximum(x, lo), hi)


def stop_gradient(x: Any) -> Any:
    """The value of ``x`` with no gradient flowing through it (identity outside PyTensor).

    Inside the PyMC model this is PyTensor's ``disconnected_grad``: iterative
    solvers run their iterations under it and take one final step with
    gradients on, which yields the implicit-function-theorem gradient.

    Examples
    --------
    >>> float(stop_gradient(2.5))
    2.5
    """
    if _is_tensor(x):
        from pytensor.gradient import disconnected_grad

        return disconnected_grad(x)
    return x
