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
from .errors import BayescaleError

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit


def chinchilla_optimum(C, *, A, alpha, B, beta):
    """Closed-form compute-optimal ``(N_opt, D_opt)`` of the Chinchilla law.

    Examples
    --------
    Epoch AI's refit at the Chinchilla budget (LAWS.md section 8 gives 7.225e10,
    1.329e12 and 18.4 from rounded inputs; within 0.2%):

    >>> n, d = chinchilla_optimum(5.76e23, A=482.006, alpha=0.34781, B=2085.43, beta=0.36585)
    >>> f"{n:.3e} {d:.3e} {d / n:.1f}"
    '7.235e+10 1.327e+12 18.3'
    """
    log_g = (np.log(alpha * A) - np.log(beta * B)) / (alpha + beta)
    a = beta / (alpha + beta)
    b = alpha / (alpha + beta)
    logc6 = np.log(np.asarray(C) / 6.0)
    return np.exp(log_g + a * logc6), np.exp(b * logc6 - log_g)


def _numeric_optimum(law, params: dict[str, np.ndarray], c: float, extra: dict[str, float]):
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
        args = {"N": n, "D": d, **{k: np.full_like(n, v) for k, v in extra.items()}}
        vals = law(*[args[i] for i in law.inputs], **p)
        k = np.argmin(vals, axis=1)
        best = logn[np.arange(s), k][:, None]
        step = (hi - lo) / 256.0
        lo, hi = best - 2 * step, best + 2 * step
    n_opt = np.exp(best[:, 0])
    return n_opt, c / (6.0 * n_opt)


def compute_optimal(
    fit: Fit,
    C: float | Sequence[float],
    *,
    prob: float = 0.9,
    groups: Mapping[str, Any] | None = None,
    extrapolation: bool | str = "auto",
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
    """
    from .calibration import add_drift
    from .model import param_draws

    law = fit.law
    if not {"N", "D"} <= set(law.inputs):
        raise BayescaleError(
            f"compute_optimal needs a law of N and D; law {law.name!r} has inputs "
            f"{list(law.inputs)}."
        )
    one = fit.data.iloc[:1].drop(columns="y")
    columns = list(fit.spec.group_columns)
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
                                          extrapolation=extrapolation)
                          for row in levels.to_dict("records")], ignore_index=True)
    for g, level in given.items():
        one[g] = group_labels(pd.Series([level])).iloc[0]
    fit._warn_new_levels(one)  # e.g. {"family": "fam-a"} for "fam_a"
    budgets = np.atleast_1d(np.asarray(C, dtype=float))
    if (budgets <= 0).any() or not np.isfinite(budgets).all():
        bad = ", ".join(f"{c:g}" for c in budgets[(budgets <= 0) | ~np.isfinite(budgets)])
        raise BayescaleError(f"Compute budgets C must be positive and finite; got {bad}.")
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
            extra = {i: np.inf for i in law.inputs if i not in {"N", "D"}}
            n_opt, d_opt = _numeric_optimum(law, params, c, extra)
        args = {"N": n_opt[:, None], "D": d_opt[:, None]}
        pop = {k: v[:, :1] for k, v in params.items()}
        loss = np.asarray(law(*[args.get(i, np.inf) for i in law.inputs], **pop))[:, 0]
        if drift:
            at = one.assign(N=float(np.median(n_opt)), D=float(np.median(d_opt)))
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
