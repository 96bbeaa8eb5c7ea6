"""Hierarchical pooling helpers: group-size checks and the group-effects table.

``bs.fit(df, law, pooled=...)`` builds the hierarchy (see :mod:`bayescale.model`);
this module checks that the groups can carry what is asked of them and turns the
posterior into a tidy per-group table (:func:`group_effects`, also available as
``Fit.group_effects``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .errors import BayescaleError, PoolingWarning, warn
from .model import (
    DATA_BOUNDED,
    _flat,
    inverse,
    level_offset_draws,
    param_kind,
    population_unconstrained,
)

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit

POPULATION = "(population)"
SCALE = "(sd)"


def check_group_sizes(frame: pd.DataFrame, pooled: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Warn (:class:`~bayescale.PoolingWarning`) about groups with fewer rows than pooled params.

    A group with fewer rows than the parameters pooled over its column cannot
    identify its own parameters: they come mostly from the population (which is
    what partial pooling is for, but worth knowing). Returns the warning texts.

    Examples
    --------
    >>> df = pd.DataFrame({"family": ["a", "a", "a", "b"]})
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as w:
    ...     warnings.simplefilter("always")
    ...     _ = check_group_sizes(df, {"E": ("family",), "alpha": ("family",)})
    >>> print(w[0].message)  # doctest: +ELLIPSIS
    Group column 'family': level 'b' (1 row) has fewer rows than the 2 parameters ...
    """
    texts = []
    cols: dict[str, list[str]] = {}
    for p, gs in pooled.items():
        for g in gs:
            cols.setdefault(g, []).append(p)
    for g, ps in cols.items():
        counts = frame[g].astype(str).value_counts()
        small = counts[counts < len(ps)].sort_index()
        if len(counts) == 1:
            text = (
                f"Group column {g!r} has a single level ({counts.index[0]!r}): there is "
                f"nothing to pool {ps} across, and the spread between groups comes from its "
                "prior alone. Add rows of other groups, or fit without pooled=."
            )
        elif not small.empty:
            listed = ", ".join(
                f"{lab!r} ({n} row{'s' if n != 1 else ''})" for lab, n in small.items()
            )
            noun = "level" if len(small) == 1 else "levels"
            verb = "has" if len(small) == 1 else "have"
            text = (
                f"Group column {g!r}: {noun} {listed} {verb} fewer rows than the {len(ps)} "
                f"parameters pooled over it ({ps}); their parameters will come mostly from the "
                "population. Add runs for them, or pool fewer parameters over this column."
            )
        else:
            continue
        warn(text, PoolingWarning)
        texts.append(text)
    return texts


def _level_values(fit: Fit, p: str, g: str, levels: list[str], rng, cache) -> np.ndarray:
    """Draws ``(samples, levels)`` of ``p`` for each level of ``g`` (other columns at 0)."""
    spec, post = fit.spec, fit.posterior
    kind = param_kind(spec, p)
    offs = level_offset_draws(spec, post, g, levels, rng, cache)
    if kind in DATA_BOUNDED:
        return _flat(post, p)[:, None] * np.exp(offs[p])
    u = population_unconstrained(spec, post, p)[:, None] + offs[p]
    expo = None
    if kind == "coef":
        e = spec.law.terms[p][0]
        if g in spec.pooled.get(e, ()):
            ue = population_unconstrained(spec, post, e)[:, None] + offs[e]
            expo = inverse(spec, e, ue)
        else:
            expo = _flat(post, e)[:, None]
    return inverse(spec, p, u, expo=expo)


def group_effects(fit: Fit, prob: float = 0.9, random_seed: int | None = None) -> pd.DataFrame:
    """Tidy table of the pooled parameters: per group level, population and group scale.

    For every pooled parameter and grouping column, one row per level of that
    column (the parameter for that level with every other grouping column at its
    population value), one row ``level="(population)"`` (the population value,
    i.e. the value of a typical group) and one row ``level="(sd)"`` (the scale of
    the group offsets on the parameter's unconstrained scale: logit for
    exponents, log for coefficients, positive parameters and ``E``).

    Parameters
    ----------
    fit : Fit
        A fit with ``pooled=``.
    prob : float
        Probability of the central interval (``lower``/``upper``).
    random_seed : int, optional
        Unused for seen levels; kept for symmetry with ``predict``.

    Returns
    -------
    DataFrame
        Columns ``param, group, level, kind, mean, median, lower, upper`` with
        ``kind`` one of ``"level"``, ``"population"``, ``"sd"``.

    Examples
    --------
    >>> fit = bs.fit(df, "power_law", x={"x": "N"}, pooled="family")  # doctest: +SKIP
    >>> fit.group_effects().query("param == 'alpha'")  # doctest: +SKIP
    """
    spec = fit.spec
    if not spec.pooled:
        raise BayescaleError(
            "This fit has no pooled parameters; refit with pooled='family' (or a dict "
            "{param: column}) to get group effects."
        )
    if not 0.0 < float(prob) < 1.0:
        raise BayescaleError(f"prob must be between 0 and 1 (e.g. 0.9), got {prob!r}.")
    rng = np.random.default_rng(random_seed)
    cache: dict = {}
    qs = [0.5, (1 - prob) / 2, (1 + prob) / 2]
    rows = []

    def add(p: str, g: str, levels: list[str], kind: str, d: np.ndarray) -> None:
        d = d.reshape(d.shape[0], -1)
        q = np.quantile(d, qs, axis=0)
        mean = d.mean(axis=0)
        for j, lab in enumerate(levels):
            rows.append(
                {"param": p, "group": g, "level": lab, "kind": kind, "mean": float(mean[j]),
                 "median": float(q[0, j]), "lower": float(q[1, j]), "upper": float(q[2, j])}
            )

    for p in spec.law.params:
        for g in spec.pooled.get(p, ()):
            levels = list(spec.levels[g])
            add(p, g, levels, "level", _level_values(fit, p, g, levels, rng, cache))
            add(p, g, [POPULATION], "population", _flat(fit.posterior, p))
            add(p, g, [SCALE], "sd", _flat(fit.posterior, f"{p}_sd_{g}"))
    return pd.DataFrame(rows, columns=["param", "group", "level", "kind", "mean", "median",
                                       "lower", "upper"])
