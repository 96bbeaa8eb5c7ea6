"""Derived quantities evaluated per posterior draw: compute-optimal allocation.

For the Chinchilla form ``E + A N^-alpha + B D^-beta`` under ``C = 6 N D`` the
optimum is closed form (LAWS.md L6)::

    G = (alpha A / (beta B))^(1/(alpha+beta)),  a = beta/(alpha+beta),  b = alpha/(alpha+beta)
    N_opt = G (C/6)^a,  D_opt = (C/6)^b / G

Any other law of ``N`` and ``D`` is minimised numerically along ``D = C/(6N)``
per draw on a fine grid in ``log N`` refined around the minimum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .data import group_labels
from .errors import BayescaleError, DataWarning
from .errors import warn as _warn

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit


def chinchilla_optimum(C, *, A, alpha, B, beta):
    """Closed-form compute-optimal ``(N_opt, D_opt)`` of the Chinchilla law.

    Examples
    --------
    Epoch AI's refit at the Chinchilla budget (LAWS.md section 8 gives 7.225e10,
    1.329e12 and 18.4, within 0.4%; the closed form at its table's rounded inputs gives
    7.250e10 and 1.324e12):

    >>> n, d = chinchilla_optimum(5.76e23, A=482.006, alpha=0.34781, B=2085.43, beta=0.36585)
    >>> f"{n:.3e} {d:.3e} {d / n:.1f}"
    '7.235e+10 1.327e+12 18.3'
    """
    log_g = (np.log(alpha * A) - np.log(beta * B)) / (alpha + beta)
    a = beta / (alpha + beta)
    b = alpha / (alpha + beta)
    logc6 = np.log(np.asarray(C) / 6.0)
    return np.exp(log_g + a * logc6), np.exp(b * logc6 - log_g)


def _positive_number(v: Any) -> bool:
    try:
        return not isinstance(v, (bool, str)) and float(v) > 0
    except (TypeError, ValueError):
        return False


def other_inputs(law, given: Mapping[str, float], d: np.ndarray) -> dict[str, np.ndarray]:
    """Values of ``law``'s inputs other than ``N`` and ``D`` for runs of ``d`` tokens.

    ``given`` holds the user's values. Unique tokens ``U`` (``data_constrained``) are the
    tokens available: a run of ``D`` tokens sees ``min(U, D)`` of them, and left out they
    are unlimited (every token seen once, ``U = D``). Any other input must be given.

    Examples
    --------
    >>> from bayescale.laws import data_constrained
    >>> other_inputs(data_constrained, {}, np.array([1e11]))["U"].tolist()
    [100000000000.0]
    >>> other_inputs(data_constrained, {"U": 4e10}, np.array([1e11]))["U"].tolist()
    [40000000000.0]
    """
    out = {}
    for inp in law.inputs:
        if inp in {"N", "D"}:
            continue
        if inp == "U":
            out[inp] = np.minimum(float(given.get(inp, np.inf)), d)
        elif inp in given:
            out[inp] = np.full_like(d, float(given[inp]))
        else:
            raise BayescaleError(
                f"compute_optimal needs a value of input {inp!r} of law {law.name!r} (the "
                f"allocation of C = 6 N D holds it fixed): pass inputs={{{inp!r}: value}}."
            )
    return out


def _numeric_optimum(law, params: dict[str, np.ndarray], c: float, given: Mapping[str, float]):
    """Grid minimisation of ``law(N, C/(6N))`` per draw (two passes)."""
    s = max(v.shape[0] for v in params.values())
    p = {k: v[:, :1] for k, v in params.items()}  # all rows share the population values
    centre = 0.5 * np.log(c / 6.0)
    lo = np.full((s, 1), centre - 12.0)
    hi = np.full((s, 1), centre + 12.0)
    best = None
    for _ in range(3):
        grid = np.linspace(0.0, 1.0, 257)[None, :]
        logn = lo + (hi - lo) * grid
        n = np.exp(logn)
        d = c / (6.0 * n)
        args = {"N": n, "D": d, **other_inputs(law, given, d)}
        vals = law(*[args[i] for i in law.inputs], **p)
        k = np.argmin(vals, axis=1)
        best = logn[np.arange(s), k][:, None]
        step = (hi - lo) / 256.0
        lo, hi = best - 2 * step, best + 2 * step
    n_opt = np.exp(best[:, 0])
    return n_opt, c / (6.0 * n_opt)


def _warn_other_units(fit: Fit) -> None:
    """Warn when N or D was fitted in other units than raw counts (millions, billions).

    The budgets are then ``6 N D`` in those units and ``tokens_per_param`` is a ratio of
    them (billions of tokens per million parameters is 1000x too small), which the
    table's column names cannot say.
    """
    from .law import REFERENCE_SCALES

    # the fit took them for other units when it moved their priors' reference scale
    # (bayescale.model.reference_scales) off the raw count's
    spec = fit.spec
    other = [f"{spec.x.get(inp, inp)!r} (centred at {np.exp(spec.log_centres[inp]):.3g})"
             for inp in ("N", "D")
             if not np.isclose(spec.log_refs[inp], np.log(REFERENCE_SCALES[inp]))]
    if other:
        _warn(
            f"compute_optimal: {' and '.join(other)} look like other units than raw counts "
            "of parameters and tokens: the budgets C are read as 6*N*D in the fit's units, "
            "and N_opt, D_opt and tokens_per_param are in them too (a ratio of billions of "
            "tokens to millions of parameters is 1000x too small). Refit on raw counts "
            "(df[col] * 1e6 for millions) for FLOPs and tokens per parameter.",
            DataWarning,
        )


def compute_optimal(
    fit: Fit,
    C: float | Sequence[float],
    *,
    prob: float = 0.9,
    groups: Mapping[str, Any] | None = None,
    extrapolation: bool | str = "auto",
    inputs: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Posterior of the compute-optimal allocation for each budget in ``C``.

    For a pooled fit, ``groups`` gives the level of each group column whose parameters
    to use (``{"family": "fam_a"}``); a level not seen in training draws its parameters
    from the population, as :meth:`Fit.predict` does. A group column left out gives one
    row per budget and fitted level of it (by default: every fitted level).

    The ``loss`` at the optimum is the law's mean there; beyond the fitted compute it
    carries the calibrated drift (``extrapolation="auto"``, as :meth:`Fit.draws` with
    ``kind="mean"``: the law's error grows with the distance), at the distance of the
    median optimum beyond the data. ``N_opt``, ``D_opt`` and ``tokens_per_param`` are
    the posterior's (they take the law's form as right). ``extrapolation`` in the
    table is the budget over the largest fitted compute.

    ``inputs`` fixes the law's other inputs (:func:`other_inputs`): for
    ``data_constrained``, ``{"U": 4e11}`` asks for the best split of each budget with
    4e11 unique tokens available (runs of more tokens repeat them); left out, data are
    unlimited and the optimum is Chinchilla's to about 0.1% (N_opt 0.13% lower, D_opt
    0.13% higher at the same loss: the law's smooth minimum over ``N`` and ``N_opt(U)``
    sits at its kink there).
    """
    from .calibration import add_drift
    from .fit import _check_prob
    from .model import param_draws

    prob = _check_prob(prob)

    law = fit.law
    if not {"N", "D"} <= set(law.inputs):
        raise BayescaleError(
            f"compute_optimal needs a law of N and D; law {law.name!r} has inputs "
            f"{list(law.inputs)}."
        )
    one = fit.data.iloc[:1].drop(columns="y")
    columns = list(fit.spec.group_columns)
    for name, value, example in (("groups", groups, "{'family': 'fam_a'}"),
                                 ("inputs", inputs, "{'U': 4e11}")):
        if value is not None and not isinstance(value, Mapping):
            raise BayescaleError(
                f"{name}= takes a dict of column to value, e.g. {name}={example}; got "
                f"{value!r}."
            )
    given = dict(groups or {})
    unknown = sorted(set(given) - set(columns))
    if unknown:
        raise BayescaleError(
            f"groups= names {unknown}, which the fit does not pool over; its group columns "
            f"are {columns}."
        )
    missing = [g for g in columns if g not in given]
    if missing:  # every fitted level (combination) of the columns not given
        levels = fit.data[missing].drop_duplicates().sort_values(missing)
        return pd.concat([compute_optimal(fit, C, prob=prob, groups={**given, **row},
                                          extrapolation=extrapolation, inputs=inputs)
                          for row in levels.to_dict("records")], ignore_index=True)
    for g, level in given.items():
        # one label per column (predict refuses a missing one; a list or None was drawn
        # as a new level, unsaid but for the pooling warning)
        if isinstance(level, (list, tuple, set, dict, np.ndarray, pd.Series)) or pd.isna(level):
            raise BayescaleError(
                f"groups={{{g!r}: {level!r}}}: give one level of {g!r} (e.g. "
                f"{{{g!r}: {fit.data[g].iloc[0]!r}}}), or leave {g!r} out for a row per "
                "fitted level."
            )
        one[g] = group_labels(pd.Series([level])).iloc[0]
    fit._warn_new_levels(one)  # e.g. {"family": "fam-a"} for "fam_a"
    try:
        # True is not a budget of 1 FLOP, nor "1e21" a number (in a list as alone)
        if any(isinstance(c, (bool, np.bool_, str, bytes))
               for c in np.asarray(C, dtype=object).ravel()):
            raise TypeError
        budgets = np.atleast_1d(np.asarray(C, dtype=float))
    except (TypeError, ValueError, OverflowError):  # 10**400: not a float
        budgets = np.array([[np.nan]])
    if budgets.ndim != 1 or budgets.size == 0:
        raise BayescaleError(
            f"C takes one compute budget or a flat list of them (FLOPs), e.g. [1e21, 1e22]; "
            f"got {C!r}."
        )
    if (budgets <= 0).any() or not np.isfinite(budgets).all():
        bad = ", ".join(f"{c:g}" for c in budgets[(budgets <= 0) | ~np.isfinite(budgets)])
        raise BayescaleError(f"Compute budgets C must be positive and finite; got {bad}.")
    _warn_other_units(fit)
    fit._warn_far_beyond(budgets / fit.scale_max, "Budget(s) C", [f"{c:g}" for c in budgets])
    fixed = dict(inputs or {})
    unknown = sorted(set(fixed) - (set(law.inputs) - {"N", "D"}))
    if unknown:
        raise BayescaleError(
            f"inputs= names {unknown}, which are not inputs of law {law.name!r} other than "
            f"N and D; those are {[i for i in law.inputs if i not in {'N', 'D'}]}."
        )
    bad = {k: v for k, v in fixed.items() if not _positive_number(v)}
    if bad:
        raise BayescaleError(f"inputs= takes one positive number per input; got {bad}.")
    rng = np.random.default_rng(0)
    params = param_draws(fit.spec, fit.posterior, one, rng=rng)
    drift = fit._use_extrapolation(extrapolation)
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    rows = []
    closed = set(law.terms) >= {"A", "B"} and law.name == "chinchilla"
    for c in budgets:
        if closed:
            n_opt, d_opt = chinchilla_optimum(
                c, **{k: params[k][:, 0] for k in ("A", "alpha", "B", "beta")}
            )
        else:
            n_opt, d_opt = _numeric_optimum(law, params, c, fixed)
        args = {"N": n_opt[:, None], "D": d_opt[:, None]}
        args.update(other_inputs(law, fixed, args["D"]))
        pop = {k: v[:, :1] for k, v in params.items()}
        loss = np.asarray(law(*[args[i] for i in law.inputs], **pop))[:, 0]
        if not np.isfinite(loss).all():
            raise BayescaleError(
                f"Law {law.name!r} is not finite at the compute-optimal allocation of "
                f"C = {c:g} for {int((~np.isfinite(loss)).sum())} of {len(loss)} posterior "
                "draws; check the values of its other inputs (inputs=)."
            )
        if drift:
            n_mid, d_mid = float(np.median(n_opt)), float(np.median(d_opt))
            others = other_inputs(law, fixed, np.array([d_mid]))
            others = {k: float(v[0]) for k, v in others.items()}
            at = one.assign(N=n_mid, D=d_mid, **others)
            loss = add_drift(fit, at, loss[:, None], rng)[:, 0]
        row = {**{g: given[g] for g in columns}, "C": c, "extrapolation": c / fit.scale_max}
        for name, v in (
            ("N_opt", n_opt),
            ("D_opt", d_opt),
            ("tokens_per_param", d_opt / n_opt),
            ("loss", loss),
        ):
            q = np.quantile(v, [0.5, lo_q, hi_q])
            row[f"{name}"] = q[0]
            row[f"{name}_lower"] = q[1]
            row[f"{name}_upper"] = q[2]
        rows.append(row)
    return pd.DataFrame(rows)
