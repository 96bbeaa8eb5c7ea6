"""Build the PyMC model from a law, validated data, priors and grouping.

The :class:`ModelSpec` is an immutable description (law, priors, pooling,
likelihood, data centres) computed once from the training data; the same spec
rebuilds the model and reconstructs every parameter per posterior draw for any
new rows in numpy (:func:`param_draws`), so prediction needs no PyMC round trip.

Parameterisation (what NUTS sees)
---------------------------------
* Power-law coefficient ``A`` of a term ``A * x**(-alpha)``: sampled as
  ``A_c = log(A * x_c**(-alpha))``, the log of the term at the data's centre
  ``x_c``, with prior ``Normal(mu - alpha*(log x_c - log x_ref), sigma)`` so the
  law's prior at the reference scale ``x_ref`` is reproduced exactly.
* Pooled parameter: ``theta_g = inv(u + tau * z_g)`` with ``u`` the population
  value on the unconstrained scale (logit for unit-interval, log for positive,
  log-term for coefficients), ``tau ~ HalfNormal(tau0)`` and ``z_g ~ Normal(0, 1)``
  (non-centred). Crossed groupings add their offsets on that scale.
* A coefficient that is not pooled while its exponent is: the groups share the
  term's value at the data centre, ``A_g = exp(A_c + alpha_g * log x_c)``, not the
  raw coefficient (whose meaning moves with the exponent and the units of ``x``).
* Pooled ``BelowMin`` parameter (the irreducible loss ``E``): the population value
  keeps the law's prior (below the smallest observed response) and groups get
  ``E_g = E * exp(o_g)``, i.e. offsets on the log scale, the same scale for seen
  and unseen groups. A group's ``E_g`` is not forced below its own smallest loss
  (the likelihood keeps it there); relative offsets of a few percent are typical.
  ``AboveMax`` parameters (a ceiling above the largest response) are pooled the same way.
* ``correlated=True``: the offsets of all parameters pooled over one grouping
  column are drawn jointly, ``o_g = L z_g`` with ``L`` the Cholesky factor of an
  LKJ(2) covariance whose scales have the same half-normal priors as the
  independent case.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .data import is_real_number
from .errors import BayescaleError, DataError, LawError, PriorWarning, hints_for, warn
from .law import REFERENCE_SCALES, Law, sigmoid
from .likelihoods import get_likelihood
from .priors import Prior, as_prior, check_prior, create, interval_bounds

#: Default prior scale of group offsets on each parameter's unconstrained scale.
GROUP_SCALE = {
    "unit": 0.3,
    "coef": 0.5,
    "BelowMin": 0.3,
    "AboveMax": 0.3,
    "positive": 0.5,
    "location": 0.5,
    "interval": 0.5,
}
RUN_SCALE = 0.05
#: Prior kinds whose bound comes from the data: below the smallest / above the largest response.
DATA_BOUNDED = ("BelowMin", "AboveMax")
#: Shape of the LKJ prior on the correlation of group offsets (``correlated=True``).
LKJ_ETA = 2.0


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build the model and to predict from its posterior."""

    law: Law
    priors: Mapping[str, Prior]
    pooled: Mapping[str, tuple[str, ...]]
    likelihood: str
    x: Mapping[str, str]
    y: str
    log_centres: Mapping[str, float]
    log_refs: Mapping[str, float]
    levels: Mapping[str, tuple[str, ...]]
    bounds: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    run: str | None = None
    group_scale: Mapping[str, float] = field(default_factory=dict)
    correlated: bool = False
    trials: str | None = None

    @property
    def group_columns(self) -> tuple[str, ...]:
        """All grouping columns used by pooled parameters (in first-use order)."""
        out: list[str] = []
        for gs in self.pooled.values():
            for g in gs:
                if g not in out:
                    out.append(g)
        return tuple(out)

    @property
    def noise_params(self) -> tuple[str, ...]:
        """Names of the likelihood's noise parameters."""
        return tuple(get_likelihood(self.likelihood).priors)

    def free_parameter_count(self) -> int:
        """Count the free scalar parameters (for the "too few rows" check)."""
        n = sum(1 for p in self.law.params if self.priors[p].dist != "Fixed")
        n += sum(1 for p in self.noise_params if self.priors[p].dist != "Fixed")
        return n

    def correlated_blocks(self) -> dict[str, list[str]]:
        """``{group column: [params]}`` whose offsets are correlated (LKJ).

        Empty unless ``correlated=True``; a column pooling only one parameter has
        nothing to correlate and keeps independent offsets.
        """
        if not self.correlated:
            return {}
        out = {}
        for g in self.group_columns:
            ps = [p for p in _ordered_params(self.law) if g in self.pooled.get(p, ())]
            if len(ps) >= 2:
                out[g] = ps
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (stored in saved fits)."""
        return {
            "law": self.law.name,
            "priors": {k: v.to_dict() for k, v in self.priors.items()},
            "pooled": {k: list(v) for k, v in self.pooled.items()},
            "likelihood": self.likelihood,
            "x": dict(self.x),
            "y": self.y,
            "log_centres": dict(self.log_centres),
            "log_refs": dict(self.log_refs),
            "levels": {k: list(v) for k, v in self.levels.items()},
            "bounds": {k: dict(v) for k, v in self.bounds.items()},
            "run": self.run,
            "group_scale": dict(self.group_scale),
            "correlated": self.correlated,
            "trials": self.trials,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], law: Law) -> ModelSpec:
        """Inverse of :meth:`to_dict` (the law object is passed in)."""
        return cls(
            law=law,
            priors={k: Prior.from_dict(v) for k, v in d["priors"].items()},
            pooled={k: tuple(v) for k, v in d["pooled"].items()},
            likelihood=d["likelihood"],
            x=dict(d["x"]),
            y=d["y"],
            log_centres=dict(d["log_centres"]),
            log_refs=dict(d["log_refs"]),
            levels={k: tuple(v) for k, v in d["levels"].items()},
            bounds={k: dict(v) for k, v in d["bounds"].items()},
            run=d.get("run"),
            group_scale=dict(d.get("group_scale", {})),
            correlated=bool(d.get("correlated", False)),
            trials=d.get("trials"),
        )


# ----------------------------------------------------------------------------------------
# spec construction


def normalise_pooled(
    pooled: str | list[str] | Mapping[str, str | list[str]] | None, law: Law
) -> dict[str, tuple[str, ...]]:
    """Turn the user's ``pooled=`` into ``{param: (group columns...)}``.

    Examples
    --------
    >>> from bayescale.laws import power_law
    >>> normalise_pooled("family", power_law)
    {'E': ('family',), 'A': ('family',), 'alpha': ('family',)}
    >>> normalise_pooled({"E": ["task", "family"]}, power_law)
    {'E': ('task', 'family')}
    """
    usage = ("pooled= takes a column name ('family'), a list of them, or a dict from "
             "parameter to column(s) ({'E': 'family', 'alpha': ['task', 'family']})")
    if pooled is None:
        return {}
    if isinstance(pooled, (set, frozenset)):
        pooled = sorted(pooled, key=str)
    if isinstance(pooled, (str, list, tuple)):
        cols = (pooled,) if isinstance(pooled, str) else tuple(pooled)
        if not all(isinstance(c, str) for c in cols):
            raise LawError(f"{usage}; got {pooled!r}.")
        _check_repeated(cols, "pooled=")
        return {p: cols for p in law.params if law.priors[p].dist != "Fixed"}
    if not isinstance(pooled, Mapping):
        raise LawError(f"{usage}; got a {type(pooled).__name__}.")
    out: dict[str, tuple[str, ...]] = {}
    for p, g in pooled.items():
        if p not in law.params:
            raise LawError(
                f"pooled= names {p!r}, which is not a parameter of law {law.name!r}; "
                f"its parameters are {list(law.params)}."
            )
        cols = (g,) if isinstance(g, str) else tuple(g) if isinstance(g, (list, tuple)) else None
        if cols is None or not all(isinstance(c, str) for c in cols):
            raise LawError(f"{usage}; {p!r} is given {g!r}.")
        if not cols:
            continue
        _check_repeated(cols, f"pooled={{{p!r}: ...}}")
        out[p] = cols
    return out


def _check_repeated(cols: tuple[str, ...], where: str) -> None:
    """A column named twice for one parameter would add its offset twice (doubling it)."""
    twice = sorted({c for c in cols if cols.count(c) > 1})
    if twice:
        raise LawError(
            f"{where} names column(s) {twice} more than once; name each group column once."
        )


#: Decades between the data's centre and :data:`REFERENCE_SCALES` beyond which an input
#: is taken to be in other units (see :func:`reference_scales`).
UNITS_DECADES = 4.0
#: The same for compute: raw FLOPs ladders span 1e14-1e25 and more, while other units and
#: quantities lie 9 decades away or further (GFLOPs, parameters or tokens fed as compute,
#: PF-days 20): a small ladder at 1e16 FLOPs is not in other units, and an onset prior
#: stated in log10 FLOPs must not move to it.
UNITS_DECADES_BY = {"C": 8.0}
_UNIT_NAMES = {"N": "parameters", "D": "tokens", "C": "FLOPs"}


def group_levels(
    frame: pd.DataFrame, columns: Sequence[str], declared: Mapping[str, Sequence[Any]] | None
) -> dict[str, tuple[Any, ...]]:
    """The levels of each group or run column: the data's, sorted, or those ``declared``.

    A declared column keeps its order and must list every level of the data; a level
    without rows is allowed (its offset comes from the population). Labels are compared
    as strings, as the validated data holds them (``10`` declares the run ``"10"``). Raises
    :class:`~bayescale.errors.DataError` naming what is wrong.

    Examples
    --------
    >>> df = pd.DataFrame({"run": ["b", "a", "b"]})
    >>> group_levels(df, ["run"], None)
    {'run': ('a', 'b')}
    >>> group_levels(df, ["run"], {"run": ["a", "b", "c"]})
    {'run': ('a', 'b', 'c')}
    >>> group_levels(pd.DataFrame({"run": ["1", "2"]}), ["run"], {"run": [1.0, 2.0, 3.0]})
    {'run': ('1', '2', '3')}
    """
    declared = dict(declared or {})
    unknown = set(declared) - set(columns)
    if unknown:
        raise DataError(
            f"levels= names {sorted(unknown)}, which the fit neither pools over nor uses as "
            f"run=; its group columns are {list(columns)}."
        )
    out: dict[str, tuple[Any, ...]] = {}
    for g in columns:
        seen = tuple(sorted(frame[g].unique()))
        if g not in declared:
            out[g] = seen
            continue
        from .data import group_labels  # the data's own labelling: 1.0 is '1', as in the data

        given = tuple(group_labels(pd.Series(list(declared[g]), dtype=object)))
        known = set(given)
        missing = [v for v in seen if v not in known]
        if missing or len(set(given)) != len(given):
            what = (f"misses {missing[:5]} of the data" if missing
                    else "lists a level more than once")
            raise DataError(
                f"levels={{{g!r}: ...}} {what}: declare each level of column {g!r} once, "
                "those of the data included."
            )
        out[g] = given
    return out


def check_group_scale(group_scale: Any, pooled: Mapping[str, Sequence[str]]) -> None:
    """Check ``group_scale=``: a pooled parameter's name to a positive, finite number.

    Examples
    --------
    >>> check_group_scale({"E": -0.5}, {"E": ("family",)})
    Traceback (most recent call last):
    ...
    bayescale.errors.LawError: group_scale= gives 'E' the value -0.5; ...
    """
    if not group_scale:
        return
    if not isinstance(group_scale, Mapping):
        raise LawError(
            "group_scale= takes a dict from pooled parameter to the prior scale of its "
            f"group offsets, e.g. {{'E': 0.1}}; got a {type(group_scale).__name__}."
        )
    for p, v in group_scale.items():
        if p not in pooled:
            raise LawError(
                f"group_scale= names {p!r}, which is not pooled (pooled parameters: "
                f"{sorted(pooled)}); pool it with pooled= or drop it."
                + hints_for([p], list(pooled))
            )
        if not is_real_number(v) or not np.isfinite(v) or v <= 0:
            raise LawError(
                f"group_scale= gives {p!r} the value {v!r}; it must be a positive, finite "
                "number (the HalfNormal scale of its group offsets, e.g. 0.1)."
            )


def make_spec(
    frame: pd.DataFrame,
    law: Law,
    *,
    priors: Mapping[str, Any] | None,
    pooled: Mapping[str, tuple[str, ...]],
    likelihood: str | None,
    x: Mapping[str, str],
    y: str,
    run: str | None = None,
    group_scale: Mapping[str, float] | None = None,
    correlated: bool = False,
    trials: str | None = None,
    levels: Mapping[str, Sequence[Any]] | None = None,
) -> ModelSpec:
    """Compute the model spec (merged priors, centres, group levels, bounds) from data.

    ``levels`` declares every level of a group or run column (:func:`group_levels`).
    """
    lik_name = likelihood or law.likelihood
    lik = get_likelihood(lik_name)
    check_link(law, lik_name)
    allowed = set(law.params) | set(lik.priors) | ({"sigma_run"} if run else set())
    priors = dict(priors or {})
    unknown = set(priors) - allowed
    if unknown:
        raise LawError(
            f"Unknown prior name(s) {sorted(unknown)} for law {law.name!r}; "
            f"known names are {sorted(allowed)}."
            + hints_for(sorted(unknown), allowed)
        )
    merged: dict[str, Prior] = dict(law.priors)
    merged.update(lik.priors)
    if run:
        merged["sigma_run"] = Prior("HalfNormal", sigma=RUN_SCALE)
    merged.update({k: as_prior(v, k) for k, v in priors.items()})
    for p, prior in merged.items():
        check_prior(p, prior)
    check_log_scale_priors(law, merged, x)
    defaults = {**law.priors, **lik.priors, "sigma_run": Prior("HalfNormal", sigma=RUN_SCALE)}
    for p in [*lik.priors, *(["sigma_run"] if run else [])]:  # scales, shapes: positive
        if merged[p].dist == "Fixed" and not float(merged[p].params["value"]) > 0:
            raise LawError(
                f"{p!r} is fixed at {merged[p].params['value']!r}, but it is a scale or shape "
                f"of the {lik_name!r} likelihood and must be positive (its default prior "
                f"is {defaults[p].dist}); fix it at a positive value."
            )
        support = merged[p].support
        if merged[p].dist in DATA_BOUNDED or support in ("fixed", "positive", "unit"):
            continue
        lo = interval_bounds(merged[p])[0] if support == "interval" else -np.inf
        if not lo >= 0:  # sigma ~ Normal(0.05, 0.1): a third of its mass where logp = -inf
            raise LawError(
                f"Prior of {p!r}: {merged[p]} reaches zero and below, but {p!r} is a scale "
                f"or shape of the {lik_name!r} likelihood and must be positive. Use a prior "
                f"on positive values (its default is {defaults[p]}; HalfNormal, LogNormal, "
                "Gamma or a TruncatedNormal with lower=0)."
            )
    for p in law.params:  # a number outside its default prior's (0, 1): ceiling=1.5
        value = merged[p].params.get("value") if merged[p].dist == "Fixed" else None
        if (value is not None and law.priors[p].support == "unit"
                and not 0.0 <= float(value) <= 1.0):
            warn(
                f"{p!r} of law {law.name!r} is fixed at {float(value):g}, outside [0, 1], "
                f"where its default prior {law.priors[p]} lives (a ceiling, a share, an "
                "exponent): the law's curve may leave its range (an accuracy above 1 or "
                "below chance). Check the value.",
                PriorWarning,
            )
    for p, cols in pooled.items():
        if merged[p].dist == "Fixed":
            raise LawError(f"Parameter {p!r} is fixed and cannot be pooled over {cols}.")
    check_group_scale(group_scale, pooled)
    _warn_fixed_beyond_data(law, merged, frame, y)
    positive = {inp for inp in law.inputs if bool((frame[inp] > 0).all())}
    log_centres = {
        inp: float(np.mean(np.log(frame[inp]))) if inp in positive else 0.0
        for inp in law.inputs
    }
    log_refs = reference_scales(law, x, log_centres, positive)
    merged.update(moved_positions(law, merged, log_refs, x,
                                  given=set(priors) | law.user_priors))
    columns = [g for cols in pooled.values() for g in cols] + ([run] if run else [])
    columns = list(dict.fromkeys(columns))
    group_levels_ = group_levels(frame, columns, levels)
    for p, prior in merged.items():
        # bounded by the data only where the law's value is a plain parameter (E, a
        # ceiling); elsewhere the bound was None: "Cannot convert None to a tensor variable"
        if prior.dist in DATA_BOUNDED and (p not in law.params or p in law.terms
                                           or p in law.locations):
            role = ("a term's coefficient (log scale, centred)" if p in law.terms
                    else "a location (log scale, centred)" if p in law.locations
                    else "a scale or shape of the likelihood")
            raise LawError(
                f"Prior {prior.dist} of {p!r} places it relative to the smallest or largest "
                f"response, which applies to a law parameter such as an irreducible loss or "
                f"a ceiling; {p!r} is {role}. Give it another prior (its default is "
                f"{defaults[p]})."
            )
    bounds: dict[str, dict[str, float]] = {}
    for p in law.params:
        if merged[p].dist in ("BelowMin", "AboveMax"):
            below = merged[p].dist == "BelowMin"
            edge = float(frame["y"].min() if below else frame["y"].max())
            if not edge > 0:  # bound * sigmoid / bound * (1 + exp) hold for a positive bound
                which = "smallest" if below else "largest"
                where = "between 0 and the smallest" if below else "above the largest"
                raise LawError(
                    f"Prior {merged[p].dist} of {p!r} of law {law.name!r} places it {where} "
                    f"response, which needs a positive response; the {which} is {edge:g}. "
                    f"Give {p!r} another prior, e.g. priors={{{p!r}: "
                    "bs.Prior('Normal', mu=..., sigma=...)}."
                )
            bounds[p] = {"*": edge}
    if not isinstance(correlated, (bool, np.bool_)):
        raise LawError(f"correlated= takes True or False, got {correlated!r}.")
    if correlated and not any(
            sum(g in cols for cols in pooled.values()) >= 2 for g in columns):
        raise LawError(
            "correlated=True correlates the offsets of two or more parameters pooled over one "
            f"column; pooled is {dict(pooled) or 'empty'}, which has none to correlate. Pool "
            "more parameters over a column (pooled={'E': 'family', 'A': 'family'}) or drop "
            "correlated=."
        )
    return ModelSpec(
        law=law,
        priors=merged,
        pooled=dict(pooled),
        likelihood=lik_name,
        x=dict(x),
        y=y,
        log_centres=log_centres,
        log_refs=log_refs,
        levels=group_levels_,
        bounds=bounds,
        run=run,
        group_scale=dict(group_scale or {}),
        correlated=correlated,
        trials=trials,
    )


def _warn_fixed_beyond_data(law: Law, merged: Mapping[str, Prior], frame: pd.DataFrame,
                            y: str) -> None:
    """Warn when an asymptote fixed by the user lies on the wrong side of the data.

    A fitted ``BelowMin`` parameter (the irreducible loss ``E``) stays below the smallest
    response, an ``AboveMax`` one above the largest. A value fixed beyond that bound leaves
    the rows past it explained by noise alone (a wrong unit or quantity, say perplexity
    for loss); the fit goes on, since noise may put a row just past a true asymptote.
    """
    for p in law.params:
        kind, prior = law.priors[p].dist, merged[p]
        if kind not in DATA_BOUNDED or prior.dist != "Fixed":
            continue
        value = float(prior.params["value"])
        below = kind == "BelowMin"
        past = frame["y"] <= value if below else frame["y"] >= value
        if not past.any():
            continue
        bound = frame["y"].min() if below else frame["y"].max()
        side = "above the smallest" if below else "below the largest"
        never = "below" if below else "above"
        first = frame.index[past.to_numpy()][0]
        first = first.item() if hasattr(first, "item") else first
        warn(
            f"{p} of law {law.name!r} is fixed at {value:g}, {side} {y!r} in the data "
            f"({bound:.4g}; {int(past.sum())} row(s) at or {never} it, e.g. row {first!r}). "
            f"The law's mean is never {never} {p}, so those rows can only be noise: check the "
            f"value and the response's unit, or let {p} be fitted.",
            PriorWarning,
        )


def check_link(law: Law, likelihood: str) -> None:
    """A LawError for a probability likelihood on a log-link law.

    The likelihood takes the law's value as a probability, but a log link hands it the
    log of that value (at most 0): every row's probability was clipped to 1e-6 and the
    likelihood did not depend on the parameters (the fit returned the prior).
    """
    if get_likelihood(likelihood).probability and law.link == "log":
        raise LawError(
            f"Likelihood {likelihood!r} takes law {law.name!r}'s value as a probability, but "
            f"the law has link='log' (for losses, compared on the log scale). For an "
            f"accuracy law declare link='identity' (@bs.law(..., link='identity', "
            f"likelihood={likelihood!r}, response='accuracy')); for a loss law use "
            "likelihood='studentt' or 'normal'."
        )


def reference_scales(
    law: Law,
    x: Mapping[str, str],
    log_centres: Mapping[str, float],
    positive: Collection[str] | None = None,
) -> dict[str, float]:
    """Log reference scale per input: where the term priors are stated (see module doc).

    ``N``, ``D`` and ``C`` (by column or input name) use :data:`REFERENCE_SCALES`, raw
    counts of parameters, tokens and FLOPs, so ``A ~ Normal(log 0.3, 1)`` reads "the term
    is about 0.3 at 1e9 parameters". Data centred more than :data:`UNITS_DECADES` decades
    (for compute :data:`UNITS_DECADES_BY`, 8) from that scale are in other units
    (millions of parameters, billions of tokens, PF-days) or far from language-model
    ladders; a prior stated at 1e9 raw parameters would then put the term at the data's
    centre off by many orders of magnitude, so the data's centre is used instead (as for
    any other input), with a :class:`~bayescale.PriorWarning` saying so. Inputs not in
    ``positive`` (default: all) have no log centre and keep the reference.

    Examples
    --------
    >>> import numpy as np, bayescale as bs
    >>> law = bs.get_law("power_law")
    >>> refs = reference_scales(law, {"x": "N"}, {"x": float(np.log(3e8))})
    >>> round(float(np.exp(refs["x"])))
    1000000000
    """
    log_refs = {}
    # the reference is used by term priors and by priors of log10 positions
    uses_ref = {inp for _, inp in law.terms.values()} | set(law.log10_positions.values())
    for inp in law.inputs:
        col = x.get(inp, inp)
        key, ref = _reference(x, inp)
        if ref is None:
            log_refs[inp] = log_centres[inp]
            continue
        off = (log_centres[inp] - np.log(ref)) / np.log(10.0)
        far = abs(off) > UNITS_DECADES_BY.get(key, UNITS_DECADES) and (
            positive is None or inp in positive)
        if far and inp not in uses_ref and inp in REFERENCE_SCALES:  # the law's own N/D/C
            # (not a column that happens to be named so: a loss axis L read from column C)
            # no prior is stated at the reference scale, so none moves; but a law's priors
            # in raw units (kaplan's N_c, D_c ~ LogNormal(log 1e13, 4)) then sit decades
            # away from the data, unsaid (a prior-predictive loss of 24 for losses of 2-3)
            centre = float(np.exp(log_centres[inp]))
            warn(
                f"Column {col!r} (input {inp!r} of law {law.name!r}) is centred at "
                f"{centre:.3g}, {abs(off):.1f} decades {'below' if off < 0 else 'above'} "
                f"{ref:.0e}, a typical raw count of {_UNIT_NAMES[key]}: it looks like other "
                f"units (e.g. millions or billions) or another quantity. Law {law.name!r} "
                f"states no prior at a reference scale of {inp!r}, so none is moved; priors "
                f"in raw units (e.g. kaplan's N_c, D_c) would then be decades off. Pass raw "
                f"counts (e.g. df[{col!r}] * 1e6 for millions), or give those priors in the "
                "data's units.",
                PriorWarning,
            )
        if not far or inp not in uses_ref:
            log_refs[inp] = float(np.log(ref))
            continue
        log_refs[inp] = log_centres[inp]
        centre = float(np.exp(log_centres[inp]))
        warn(
            f"Column {col!r} (input {inp!r} of law {law.name!r}) is centred at {centre:.3g}, "
            f"{abs(off):.1f} decades {'below' if off < 0 else 'above'} {ref:.0e}, the scale "
            f"at which the default priors are stated for a raw count of {_UNIT_NAMES[key]}: "
            f"it looks like other units (e.g. millions or billions) or another quantity. "
            f"The priors stated at that scale ({_moved(law, inp)}) move to the data's centre "
            f"instead. To use the reference priors, pass raw counts (e.g. "
            f"df[{col!r}] * 1e6 for millions); priors given in raw units (e.g. kaplan's N_c, "
            f"D_c) are not moved.",
            PriorWarning,
        )
    return log_refs


#: Largest bound of an interval prior on a log scale (a coefficient's or location's) that is
#: taken as meant there: e^50 is a ratio of 21 decades, so a larger bound is in raw units.
LOG_SCALE_LIMIT = 50.0


def check_log_scale_priors(law: Law, priors: Mapping[str, Prior],
                           x: Mapping[str, str] | None = None) -> None:
    """Refuse a positive or unit-interval prior on a coefficient or a location.

    Their priors are on a log scale (the log of a term's value at the reference scale;
    the log of a location over the data's centre), which takes any real value: a
    ``LogNormal`` meant for the raw coefficient ``A`` was read there, unsaid, and the fit
    came out absurd (the term about 480 at 1e9 parameters). Checked when a law is defined
    (its defaults) and when a fit's priors are merged (the user's).

    Examples
    --------
    >>> import bayescale as bs
    >>> law = bs.get_law("power_law").with_priors(A=bs.Prior("LogNormal", mu=6.0, sigma=1.0))
    >>> check_log_scale_priors(law, law.priors, {"x": "N"})
    Traceback (most recent call last):
    ...
    bayescale.errors.LawError: Prior of 'A': LogNormal(mu=6, sigma=1) has positive support, ...
    """
    from .law import get_law

    for p in sorted(set(law.terms) | set(law.locations)):
        pr = priors[p]
        bounds = [abs(b) for b in interval_bounds(pr) if np.isfinite(b)] \
            if pr.support == "interval" else []
        # Uniform(lower=1e8, upper=1e10) for a break "between 1e8 and 1e10": exp(1e8) is
        # inf, and the break vanished unsaid; no log ratio is beyond 50 (21 decades)
        raw = bool(bounds) and max(bounds) > LOG_SCALE_LIMIT
        if pr.support not in ("positive", "unit") and not raw:
            continue
        try:  # the registered law's own prior, as an example of the scale
            base = get_law(law.name).priors[p]
            default = f" (the default is {base})" if base.support == "real" else ""
        except (LawError, KeyError):  # not registered, or a law of that name without p
            default = ""
        if p in law.terms:
            expo, inp = law.terms[p]
            ref = _reference(x or {}, inp)[1]
            where = f"{inp}_ref = {ref:g}" if ref else f"{inp}_ref the data's centre"
            scale = (f"is sampled through its term's value at a reference scale: its prior is "
                     f"on log({p} * {inp}_ref^-{expo}), {where}")
        else:
            inp = law.locations[p]
            scale = (f"is sampled relative to the data: its prior is on log({p} / centre), the "
                     f"centre being the geometric mean of the fitted {inp}")
        support = (f"bounds beyond +-{LOG_SCALE_LIMIT:g} (raw units?)" if raw
                   else f"{pr.support} support")
        raise LawError(
            f"Prior of {p!r}: {pr} has {support}, but {p} {scale}, which takes "
            f"any real value, so the prior would be read on that log scale, not on {p} "
            f"itself. Give a real-valued prior on that scale{default}, or fix {p} at a "
            f"number in raw units (priors={{{p!r}: value}})."
        )


def _reference(x: Mapping[str, str], inp: str) -> tuple[str, float | None]:
    """Key of :data:`REFERENCE_SCALES` for input ``inp`` and its scale (``None``: none).

    The input's own name when it has a reference (a law of ``C`` states its priors in
    FLOPs, whatever its column is called: ``x={"C": "N"}`` is an onset along parameters,
    whose ``x0`` prior in log10 FLOPs must move), else its column's name (``power_law``'s
    generic ``x`` mapped to ``N`` is a law of parameters).

    Examples
    --------
    >>> _reference({"C": "N"}, "C"), _reference({"x": "N"}, "x"), _reference({}, "x")
    (('C', 1e+21), ('N', 1000000000.0), ('x', None))
    """
    col = x.get(inp, inp)
    if inp in REFERENCE_SCALES:
        return inp, REFERENCE_SCALES[inp]
    key = col if isinstance(col, str) and col in REFERENCE_SCALES else inp
    return key, REFERENCE_SCALES.get(key)


def _moved(law: Law, inp: str) -> str:
    """Which priors of ``law`` move with input ``inp``'s centre (for the warning)."""
    names = [c for c, (_, i) in law.terms.items() if i == inp]
    names += [p for p, i in law.log10_positions.items()
              if i == inp and _location_keys(law.priors[p])]
    return ", ".join(names)


#: Distributions whose listed parameters locate them on their axis (a shift of the axis
#: shifts them); a log10 position's prior of another kind is not moved.
_LOCATION_KEYS = {
    "Normal": ("mu",), "StudentT": ("mu",), "Laplace": ("mu",), "Logistic": ("mu",),
    "SkewNormal": ("mu",), "Gumbel": ("mu",), "Cauchy": ("alpha",),
    "TruncatedNormal": ("mu", "lower", "upper"), "Uniform": ("lower", "upper"),
    "Fixed": ("value",),
}


def _location_keys(prior: Prior) -> tuple[str, ...]:
    """The parameters of ``prior`` that move with its axis (none: it is not moved)."""
    keys = _LOCATION_KEYS.get(prior.dist, ())
    if prior.dist == "Uniform":  # PyMC's defaults 0 and 1 move too
        return keys
    return tuple(k for k in keys if k in prior.params)


def moved_positions(
    law: Law, priors: Mapping[str, Prior], log_refs: Mapping[str, float], x: Mapping[str, str],
    given: Collection[str],
) -> dict[str, Prior]:
    """Priors of ``law.log10_positions`` moved with their input's reference scale.

    A default ``Normal`` prior (or fixed value) of a position in log10 of an input (an
    onset ``x0`` in log10 FLOPs) is stated for the input's reference units; when
    :func:`reference_scales` took the data's centre instead (other units), its mean (or
    value) moves by the same number of decades.
    Priors the user gave (``given``) are theirs and are not moved.

    Examples
    --------
    >>> import numpy as np, bayescale as bs
    >>> law = bs.get_law("sigmoid_compute")
    >>> moved = moved_positions(law, dict(law.priors), {"C": float(np.log(1e3))}, {}, ())
    >>> round(moved["x0"].params["mu"], 6), moved["x0"].params["sigma"]  # 21 - 18 decades
    (3.0, 3.0)
    """
    out = {}
    for p, inp in law.log10_positions.items():
        prior = priors[p]
        ref = _reference(x, inp)[1]
        keys = _location_keys(prior)  # (a fixed anchor, u_shaped's x_ref: its value)
        if p in given or ref is None or not keys:
            continue
        shift = (log_refs[inp] - np.log(ref)) / np.log(10.0)
        if shift:  # (a Uniform's bounds, PyMC's defaults 0 and 1 included)
            now = (dict(zip(("lower", "upper"), interval_bounds(prior)))
                   if prior.dist == "Uniform" else {})
            now.update(prior.params)
            out[p] = Prior(prior.dist, **{**prior.params,
                                          **{k: float(now[k] + shift) for k in keys}})
    return out


def param_kind(spec: ModelSpec, p: str) -> str:
    """Kind: ``coef``, ``location``, ``BelowMin``, ``AboveMax``, ``unit``, ``positive``, ...

    (``real``, ``interval``): the scale its offsets and transforms live on.
    """
    if p in spec.law.terms:
        return "coef"
    if p in spec.law.locations:
        return "location"
    pr = spec.priors[p]
    if pr.dist in DATA_BOUNDED:
        return pr.dist
    return pr.support


def _tau0(spec: ModelSpec, p: str) -> float:
    if p in spec.group_scale:
        return float(spec.group_scale[p])
    kind = param_kind(spec, p)
    if kind == "real":
        return 0.5 * float(spec.priors[p].params.get("sigma", 1.0))
    return GROUP_SCALE.get(kind, 0.5)


def _ordered_params(law: Law) -> list[str]:
    coefs = [p for p in law.params if p in law.terms]
    return [p for p in law.params if p not in law.terms] + coefs


# ---- transforms shared by the model (PyTensor) and prediction (numpy) ------------------


def _logit(v):
    return np.log(v) - np.log1p(-v)


def forward(spec: ModelSpec, p: str, theta):
    """Constrained value -> unconstrained scale (not for coef/location/BelowMin/AboveMax)."""
    kind = param_kind(spec, p)
    if kind == "unit":
        return _logit(theta)
    if kind == "positive":
        return np.log(theta)
    if kind == "interval":
        lo, hi = interval_bounds(spec.priors[p])
        if np.isfinite(lo) and np.isfinite(hi):
            return _logit((theta - lo) / (hi - lo))
        if np.isfinite(lo):
            return np.log(theta - lo)
        if np.isfinite(hi):
            return -np.log(hi - theta)
    return theta  # a TruncatedNormal without bounds is a Normal


def inverse(spec: ModelSpec, p: str, u, *, bound=None, expo=None, log_centres=None):
    """Unconstrained scale -> constrained value. ``expo`` is the exponent for coefs.

    ``log_centres`` overrides ``spec.log_centres`` (the model passes its ``pm.Data``
    scalars so that a compiled model can swap them with the data).
    """
    kind = param_kind(spec, p)
    centres = spec.log_centres if log_centres is None else log_centres
    if kind == "coef":
        inp = spec.law.terms[p][1]
        return np.exp(u + expo * centres[inp])
    if kind == "location":
        inp = spec.law.locations[p]
        return np.exp(u + centres[inp])
    if kind == "BelowMin":
        return bound * sigmoid(u)
    if kind == "AboveMax":
        return bound * (1.0 + np.exp(u))
    if kind == "unit":
        return sigmoid(u)
    if kind == "positive":
        return np.exp(u)
    if kind == "interval":
        lo, hi = interval_bounds(spec.priors[p])
        if np.isfinite(lo) and np.isfinite(hi):
            return lo + (hi - lo) * sigmoid(u)
        if np.isfinite(lo):
            return lo + np.exp(u)
        if np.isfinite(hi):
            return hi - np.exp(-u)
    return u


def row_bounds(spec: ModelSpec, p: str, frame: pd.DataFrame) -> np.ndarray:
    """Bound of a ``BelowMin``/``AboveMax`` parameter per row (smallest/largest response).

    Pooled bounded parameters bound only their population value; groups are
    ``E * exp(offset)``.
    """
    return np.full(len(frame), spec.bounds[p]["*"])


def group_index(spec: ModelSpec, g: str, frame: pd.DataFrame) -> np.ndarray:
    """Integer code of each row's level of group ``g``; -1 for levels unseen in training."""
    lookup = {lab: i for i, lab in enumerate(spec.levels[g])}
    return frame[g].astype(str).map(lambda v: lookup.get(v, -1)).to_numpy(dtype=int)


# ----------------------------------------------------------------------------------------
# the PyMC model


def model_coords(spec: ModelSpec, n_rows: int, dim: str = "obs") -> dict[str, Any]:
    """Coordinates of the model: the row dimension ``dim``, group levels, LKJ blocks."""
    coords: dict[str, Any] = {dim: np.arange(n_rows)}
    for g, levs in spec.levels.items():
        coords[g] = list(levs)
    for g, ps in spec.correlated_blocks().items():
        coords[f"{g}_param"] = list(ps)
    return coords


def build_model(spec: ModelSpec, frame: pd.DataFrame):
    """Build the ``pm.Model`` for ``spec`` on the validated ``frame``.

    Every array is a ``pm.Data`` container, so compiled samplers can swap data:
    the law inputs (by input name), ``y``, ``<group>_idx``, and the data-derived
    scalars ``<input>_log_centre``, ``<input>_log_ref`` and, for ``BelowMin`` and
    ``AboveMax`` parameters, ``<param>_bound_all`` (the bound of the population value).
    The pieces are :func:`add_law` and :func:`add_likelihood`, which other model
    builders (:func:`bayescale.fit_joint`) call inside PyMC sub-models.
    """
    import pymc as pm

    with pm.Model(coords=model_coords(spec, len(frame))) as model:
        mu, idx = add_law(spec, frame)
        add_likelihood(spec, frame, mu, idx)
    return model


def add_law(
    spec: ModelSpec,
    frame: pd.DataFrame,
    *,
    dim: str = "obs",
    inputs: Mapping[str, Any] | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Add the law's data, priors and parameters to the current model; return its mean.

    ``inputs`` gives tensors for some of the law's inputs (e.g. a latent loss from
    another law) instead of ``pm.Data`` columns of ``frame``. Returns the law's
    mean per row (on the response scale) and the group-index data by column.
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = spec.law
    given = dict(inputs or {})
    blocks = spec.correlated_blocks()
    inputs = {
        inp: given[inp]
        if inp in given
        else pm.Data(inp, frame[inp].to_numpy(dtype=float), dims=dim)
        for inp in law.inputs
    }
    idx = {g: pm.Data(f"{g}_idx", group_index(spec, g, frame), dims=dim) for g in spec.levels}
    # data-derived constants as pm.Data scalars (same values as the floats in spec)
    centres = {
        inp: pm.Data(f"{inp}_log_centre", np.float64(c)) for inp, c in spec.log_centres.items()
    }
    refs = {inp: pm.Data(f"{inp}_log_ref", np.float64(r)) for inp, r in spec.log_refs.items()}
    bound_all = {p: pm.Data(f"{p}_bound_all", np.float64(b["*"])) for p, b in spec.bounds.items()}
    # correlated offsets (LKJ), one block per grouping column: level offsets (L, k)
    level_offsets: dict[tuple[str, str], Any] = {}
    for g, ps in blocks.items():
        k = len(ps)
        sd_dist = pm.HalfNormal.dist(sigma=np.array([_tau0(spec, p) for p in ps]), shape=k)
        chol, _, stds = pm.LKJCholeskyCov(
            f"{g}_cov", n=k, eta=LKJ_ETA, sd_dist=sd_dist, compute_corr=True
        )
        pm.Deterministic(f"{g}_chol", chol)
        z = pm.Normal(f"{g}_z", 0.0, 1.0, dims=(g, f"{g}_param"))
        offs = (z[:, None, :] * chol[None, :, :]).sum(axis=-1)  # z @ chol.T
        for j, p in enumerate(ps):
            pm.Deterministic(f"{p}_sd_{g}", stds[j])
            level_offsets[(p, g)] = offs[:, j]
    values: dict[str, Any] = {}
    pops: dict[str, Any] = {}
    for p in _ordered_params(law):
        pr = spec.priors[p]
        kind = param_kind(spec, p)
        cols = spec.pooled.get(p, ())
        if pr.dist == "Fixed":  # the raw value, whatever the kind (never pooled)
            pops[p] = values[p] = create(p, pr)
            continue
        # --- population value on the unconstrained scale
        if kind == "coef":
            expo, inp = law.terms[p]
            shift = centres[inp] - refs[inp]
            e_pop = pops[expo]
            if pr.dist in {"Normal", "StudentT"} and "mu" in pr.params:
                kw = dict(pr.params)
                kw["mu"] = kw["mu"] - e_pop * shift
                u = getattr(pm, pr.dist)(f"{p}_c", **kw)
            else:
                u = pm.Deterministic(f"{p}_c", create(f"{p}_ref", pr) - e_pop * shift)
            pop_val = pm.Deterministic(p, pt.exp(u + e_pop * centres[inp]))
        elif kind == "location":
            u = create(f"{p}_loc", pr)
            pop_val = pm.Deterministic(p, pt.exp(u + centres[law.locations[p]]))
        elif kind == "BelowMin":
            u = pm.Normal(
                f"{p}_logit",
                float(pr.params.get("mu", 1.0)),
                float(pr.params.get("sigma", 1.5)),
            )
            pop_val = pm.Deterministic(p, bound_all[p] * pm.math.sigmoid(u))
        elif kind == "AboveMax":
            u = pm.Normal(
                f"{p}_loggap",
                float(pr.params.get("mu", -1.0)),
                float(pr.params.get("sigma", 1.5)),
            )
            pop_val = pm.Deterministic(p, bound_all[p] * (1.0 + pt.exp(u)))
        else:
            pop_val = create(p, pr)
            u = forward(spec, p, pop_val) if cols else None
        pops[p] = pop_val
        if not cols:
            if kind == "coef" and spec.pooled.get(law.terms[p][0]):
                # exponent pooled, coefficient shared: share the term's value at
                # the data's centre (not the raw coefficient, whose meaning moves
                # with the exponent)
                expo, inp = law.terms[p]
                values[p] = pt.exp(u + values[expo] * centres[inp])
            else:
                values[p] = pop_val
            continue
        # --- pooled: non-centred group offsets on the unconstrained scale
        offset = 0.0
        for g in cols:
            if (p, g) not in level_offsets:
                tau = pm.HalfNormal(f"{p}_sd_{g}", _tau0(spec, p))
                z = pm.Normal(f"{p}_z_{g}", 0.0, 1.0, dims=g)
                level_offsets[(p, g)] = tau * z
            offset = offset + level_offsets[(p, g)][idx[g]]
        if kind in DATA_BOUNDED:
            values[p] = pop_val * pt.exp(offset)
            continue
        expo_rows = values[law.terms[p][0]] if kind == "coef" else None
        values[p] = inverse(spec, p, u + offset, expo=expo_rows, log_centres=centres)
        if len(cols) == 1 and kind != "coef":
            g = cols[0]
            pm.Deterministic(
                f"{p}_{g}",
                inverse(spec, p, u + level_offsets[(p, g)], log_centres=centres),
                dims=g,
            )
    try:
        mu = law(*[inputs[i] for i in law.inputs], **values)
    except BayescaleError:
        raise
    except (TypeError, ValueError, NotImplementedError, AttributeError) as exc:
        raise LawError(_symbolic_failure(law, exc)) from None
    return mu, idx


def _symbolic_failure(law: Law, exc: Exception) -> str:
    """Say why a law failed on PyTensor tensors and how to write it so that it works."""
    return (
        f"Law {law.name!r} cannot be evaluated on the symbolic (PyTensor) tensors that NUTS "
        f"differentiates ({type(exc).__name__}: {exc}). Write it with operations that work "
        "on tensors as well as arrays: arithmetic, ** and numpy functions such as np.exp, "
        "np.log, np.log1p, np.sqrt, np.tanh, np.abs; for a minimum, maximum, clip or "
        "log-sum-exp, `from bayescale.law import smooth_min, clip, softplus, logaddexp, "
        "sigmoid` (they work on both). "
        "np.maximum, np.minimum, np.clip, np.where, np.logaddexp, the math module and "
        "Python's if, min or max on inputs or parameters do not work on tensors."
    )


def add_likelihood(
    spec: ModelSpec, frame: pd.DataFrame, mu, idx: Mapping[str, Any], *, dim: str = "obs"
):
    """Add the run offsets, noise priors and observed variable ``y_obs`` for ``mu``.

    ``frame`` holds the observed rows (``y``, and ``n`` for count likelihoods), one
    per entry of ``mu``; ``idx`` the group-index data of those rows.
    """
    import pymc as pm
    import pytensor.tensor as pt

    law = spec.law
    if law.link == "log":
        eta = pt.log(mu)
        y_obs = np.log(frame["y"].to_numpy(dtype=float))
    else:
        eta = mu
        y_obs = frame["y"].to_numpy(dtype=float)
    if spec.run:
        s_run = create("sigma_run", spec.priors["sigma_run"])
        z_run = pm.Normal("run_z", 0.0, 1.0, dims=spec.run)
        eta = eta + s_run * z_run[idx[spec.run]]
    lik = get_likelihood(spec.likelihood)
    noise = {k: create(k, spec.priors[k]) for k in lik.priors}
    y_data = pm.Data("y", y_obs, dims=dim)
    return lik.build(eta, y_data, noise, {"frame": frame, "dim": dim, "spec": spec})


# ----------------------------------------------------------------------------------------
# numpy reconstruction from posterior draws


def _flat(post, name: str) -> np.ndarray:
    v = post[name]
    arr = v.values
    return arr.reshape((-1,) + arr.shape[2:])


def param_draws(
    spec: ModelSpec,
    posterior,
    frame: pd.DataFrame,
    *,
    rng: np.random.Generator,
) -> dict[str, np.ndarray]:
    """Per-draw, per-row law parameters for the rows of ``frame``.

    Returns ``{param: array (samples, rows)}``. Rows whose group level was not seen
    in training draw that level's offset from the population (one draw per unseen
    level and posterior sample, shared by all rows of that level).

    ``posterior`` is the ``posterior`` group of the InferenceData.
    """
    law = spec.law
    n = len(frame)
    out: dict[str, np.ndarray] = {}
    pops: dict[str, np.ndarray] = {}
    cache: dict[Any, Any] = {}
    s = None
    for p in _ordered_params(law):
        kind = param_kind(spec, p)
        cols = spec.pooled.get(p, ())
        if spec.priors[p].dist == "Fixed":
            val = float(spec.priors[p].params["value"])
            out[p] = np.full((1, n), val)
            pops[p] = np.array([val])
            continue
        pop = _flat(posterior, p)
        s = pop.shape[0]
        pops[p] = pop
        if not cols:
            if kind == "coef" and spec.pooled.get(law.terms[p][0]):
                expo, inp = law.terms[p]
                u = population_unconstrained(spec, posterior, p)
                out[p] = np.exp(u[:, None] + out[expo] * spec.log_centres[inp])
            else:
                out[p] = np.broadcast_to(pop[:, None], (s, n))
            continue
        u = population_unconstrained(spec, posterior, p)
        offset = np.zeros((s, n))
        for g in cols:
            offset = offset + row_offsets(spec, posterior, frame, p, g, rng, cache)
        if kind in DATA_BOUNDED:
            out[p] = pop[:, None] * np.exp(offset)
            continue
        total = u[:, None] + offset
        expo = out[law.terms[p][0]] if kind == "coef" else None
        out[p] = inverse(spec, p, total, expo=expo)
    return out


def population_unconstrained(spec: ModelSpec, posterior, p: str) -> np.ndarray:
    """Return the population value of ``p`` on its unconstrained scale, per draw.

    Coefficients: log of the term at the data centre; locations: log relative to
    the centre; otherwise logit/log/identity of the value (log for ``BelowMin`` and
    ``AboveMax``).
    """
    kind = param_kind(spec, p)
    if kind == "coef":
        return _flat(posterior, f"{p}_c")
    if kind == "location":
        return _flat(posterior, f"{p}_loc")
    pop = _flat(posterior, p)
    if kind in DATA_BOUNDED:
        return np.log(pop)
    return forward(spec, p, pop)


def level_offset_draws(
    spec: ModelSpec, posterior, g: str, labels, rng: np.random.Generator, cache=None
) -> dict[str, np.ndarray]:
    """Offsets ``{param: (samples, len(labels))}`` of the parameters pooled over ``g``.

    Levels seen in training take their posterior offsets; a label not seen in
    training gets one draw from the population per posterior sample (jointly over
    the parameters of a correlated block, so the LKJ correlation is respected).
    ``cache`` (a dict) makes repeated calls for the same ``(g, labels)`` share draws.
    """
    labels = [str(v) for v in labels]
    key = (g, tuple(labels))
    if cache is not None and key in cache:
        return cache[key]
    lookup = {lab: i for i, lab in enumerate(spec.levels[g])}
    gi = np.array([lookup.get(v, -1) for v in labels], dtype=int)
    known = gi >= 0
    new_levels = list(dict.fromkeys(v for v, k in zip(labels, known) if not k))
    pos = {lab: i for i, lab in enumerate(new_levels)}
    new_idx = [pos[v] for v, k in zip(labels, known) if not k]
    ps = [p for p in spec.pooled if g in spec.pooled[p]]
    block = spec.correlated_blocks().get(g, [])
    out: dict[str, np.ndarray] = {}
    if block:
        chol = _flat(posterior, f"{g}_chol")  # (s, k, k)
        z = _flat(posterior, f"{g}_z")  # (s, L, k)
        s, k = chol.shape[0], chol.shape[1]
        zr = np.zeros((s, len(labels), k))
        zr[:, known] = z[:, gi[known]]
        if new_levels:
            znew = rng.standard_normal((s, len(new_levels), k))
            zr[:, ~known] = znew[:, new_idx]
        offs = np.einsum("slk,sjk->slj", zr, chol)
        for j, p in enumerate(block):
            out[p] = offs[:, :, j]
    for p in ps:
        if p in out:
            continue
        tau = _flat(posterior, f"{p}_sd_{g}")
        z = _flat(posterior, f"{p}_z_{g}")
        s = tau.shape[0]
        zr = np.zeros((s, len(labels)))
        zr[:, known] = z[:, gi[known]]
        if new_levels:
            znew = rng.standard_normal((s, len(new_levels)))
            zr[:, ~known] = znew[:, new_idx]
        out[p] = tau[:, None] * zr
    if cache is not None:
        cache[key] = out
    return out


def row_offsets(
    spec: ModelSpec, posterior, frame: pd.DataFrame, p: str, g: str, rng, cache=None
) -> np.ndarray:
    """Offset of parameter ``p`` from grouping column ``g`` per draw and row of ``frame``."""
    labels = frame[g].astype(str).to_numpy()
    uniq, inv = np.unique(labels, return_inverse=True)
    offs = level_offset_draws(spec, posterior, g, list(uniq), rng, cache)
    return offs[p][:, inv]


def run_offsets(spec: ModelSpec, posterior, frame: pd.DataFrame, rng, *,
                shared: bool = False) -> np.ndarray | None:
    """Run-level offsets on the link scale per draw and row (new runs draw fresh ones).

    Rows without a run column are each a new run; with ``shared=True`` (the common random
    numbers of :meth:`bayescale.Fit.draws`) they are one new run: one offset per draw, so a
    band along a grid has no jitter. New runs draw in the sorted order of their labels,
    whatever the order of the rows.
    """
    if not spec.run:
        return None
    s_run = _flat(posterior, "sigma_run")
    z = _flat(posterior, "run_z")
    s = s_run.shape[0]
    n = len(frame)
    if spec.run not in frame.columns:
        return s_run[:, None] * rng.standard_normal((s, 1 if shared else n))
    gi = group_index(spec, spec.run, frame)
    zr = np.zeros((s, n))
    known = gi >= 0
    zr[:, known] = z[:, gi[known]]
    if (~known).any():
        labs = frame[spec.run].astype(str).to_numpy()[~known]
        new_levels = np.unique(labs)  # sorted: the same draws whatever the rows' order
        znew = rng.standard_normal((s, len(new_levels)))
        pos = {lab: i for i, lab in enumerate(new_levels)}
        zr[:, ~known] = znew[:, [pos[v] for v in labs]]
    return s_run[:, None] * zr
