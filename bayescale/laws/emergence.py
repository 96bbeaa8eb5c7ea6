"""Emergence laws: onsets of abilities and non-monotone (inverse, U-shaped) trends.

The scale axis is ``x = log10(C)`` for the input ``C`` (FLOPs by default; map any
positive scale with ``x={"C": "params"}``). For an onset on a *loss* axis use
:func:`~bayescale.laws.sigmoid_of_loss` (logistic) or :func:`onset_hinge_loss`.
The chance level is an input (column ``chance`` or ``x={"chance": 0}``), never
fitted. Fit with ``likelihood="betabinomial"`` (default) or ``"binomial"``, and pool
the onset location over tasks and families with
``pooled={"x0": ["task", "family"]}``. The onset posterior is derived by
:func:`bayescale.onset`.
"""

from __future__ import annotations

import numpy as np

from ..law import law, law_doctests, sigmoid, softplus
from ..priors import Prior
from .accuracy import CEILING_PRIOR, STEEPNESS_PRIOR, log10

#: Population prior of onset locations in log10 training FLOPs (LAWS.md E1).
ONSET_PRIOR = Prior("Normal", mu=23.0, sigma=1.5)


@law(
    priors={"ceiling": CEILING_PRIOR, "k": STEEPNESS_PRIOR, "x0": ONSET_PRIOR},
    log10_positions={"x0": "C"},
    link="identity",
    likelihood="betabinomial",
    response="accuracy",
    positive_inputs=("C",),
    equation="p = chance + (1 - chance) * ceiling * sigmoid(k * (log10 C - x0))",
    citation="LAWS.md E1 model A; Wei et al. 2022, Emergent Abilities (arXiv:2206.07682)",
)
def onset_logistic(C, chance, *, ceiling, k, x0):
    """Logistic onset (model A): chance floor, fitted ceiling, midpoint ``x0``.

    The onset at fraction ``q`` of the rise is ``x0 + logit(q) / k`` (for
    ``q = 0.1``: ``x0 - 2.1972 / k``); the 10 -> 90% rise spans ``4.3944 / k``
    decades of compute.

    Examples
    --------
    >>> round(float(onset_logistic(1e23, 0.0, ceiling=0.9, k=3.0, x0=23.0)), 4)
    0.45
    """
    return chance + (1.0 - chance) * ceiling * sigmoid(k * (log10(C) - x0))


@law(
    priors={
        "ceiling": CEILING_PRIOR,
        "s": Prior("LogNormal", mu=0.0, sigma=0.75),
        "tau": Prior("LogNormal", mu=float(np.log(0.2)), sigma=0.75),
        "x_on": ONSET_PRIOR,
    },
    log10_positions={"x_on": "C"},
    link="identity",
    likelihood="betabinomial",
    response="accuracy",
    positive_inputs=("C",),
    equation="p = chance + (1 - chance) * ceiling * "
    "(1 - exp(-s * tau * softplus((log10 C - x_on) / tau)))",
    citation="LAWS.md E1 model B; Du et al. 2024 (arXiv:2403.15796); Snell et al. 2024 "
    "(arXiv:2411.16035)",
)
def onset_hinge(C, chance, *, ceiling, s, tau, x_on):
    """Softplus hinge onset (model B): flat at chance, kink at ``x_on``, then rise.

    ``p = chance + (1 - chance) * ceiling * (1 - exp(-s * tau * softplus((x - x_on) / tau)))``
    with ``x = log10 C``: ``s`` is the post-onset rate per decade, ``tau`` the kink
    width in decades (``tau -> 0`` is a hard ReLU).

    Examples
    --------
    Far below the kink the curve is at chance, far above at the ceiling:

    >>> round(float(onset_hinge(1e15, 0.25, ceiling=0.8, s=1.0, tau=0.2, x_on=23.0)), 4)
    0.25
    >>> round(float(onset_hinge(1e35, 0.25, ceiling=0.8, s=1.0, tau=0.2, x_on=23.0)), 4)
    0.85
    """
    x = log10(C)
    return chance + (1.0 - chance) * ceiling * (1.0 - np.exp(-s * tau * softplus((x - x_on) / tau)))


@law(
    priors={
        "ceiling": CEILING_PRIOR,
        "s": Prior("LogNormal", mu=float(np.log(3.0)), sigma=0.75),
        "tau": Prior("LogNormal", mu=float(np.log(0.05)), sigma=0.75),
        "L_on": Prior("Normal", mu=0.0, sigma=0.3),
    },
    locations={"L_on": "L"},
    link="identity",
    likelihood="betabinomial",
    response="accuracy",
    positive_inputs=("L",),
    falling_inputs=("L",),
    equation="p = chance + (1 - chance) * ceiling * "
    "(1 - exp(-s * tau * softplus((L_on - L) / tau)))",
    citation="Du et al. 2024, emergence from the loss perspective (arXiv:2403.15796)",
)
def onset_hinge_loss(L, chance, *, ceiling, s, tau, L_on):
    """Softplus hinge onset on a loss axis: the ability switches on below ``L_on``.

    Same as :func:`onset_hinge` with ``x = -L``: ``s`` per nat, ``tau`` in nats.
    The prior of ``L_on`` is on ``log(L_on / centre)`` (geometric mean of the
    fitted losses).

    Examples
    --------
    >>> round(float(onset_hinge_loss(5.0, 0.0, ceiling=1.0, s=3.0, tau=0.05, L_on=2.5)), 4)
    0.0
    """
    return chance + (1.0 - chance) * ceiling * (
        1.0 - np.exp(-s * tau * softplus((L_on - L) / tau))
    )


@law(
    priors={
        "y0": Prior("Normal", mu=0.5, sigma=0.3),
        "b": Prior("Normal", mu=0.0, sigma=0.05),
        "c": Prior("HalfNormal", sigma=0.3),
        "k": STEEPNESS_PRIOR,
        "x0": ONSET_PRIOR,
        # where y0 is the level: 1e21 FLOPs, fixed; it moves with C's units as x0 does
        # (for C in PF-days or parameters, a point 10-20 decades from the data multiplied
        # the drift's prior: half the prior curves left [0, 1])
        "x_ref": Prior("Fixed", value=21.0),
    },
    log10_positions={"x0": "C", "x_ref": "C"},
    link="identity",
    likelihood="beta",
    response="accuracy",
    positive_inputs=("C",),
    equation="acc = y0 + b * (log10 C - x_ref) + c * sigmoid(k * (log10 C - x0)), x_ref = 21",
    citation="LAWS.md E2 (i); Wei et al. 2022, Inverse scaling can become U-shaped "
    "(arXiv:2211.02011); Zhang et al. 2023, NeQA (arXiv:2305.17311)",
)
def u_shaped(C, *, y0, b, c, k, x0, x_ref=21.0):
    """Linear drift plus a logistic rise: inverse, U-shaped or positive scaling.

    ``acc = y0 + b * (log10 C - x_ref) + c * sigmoid(k * (log10 C - x0))``: ``y0`` is
    the level at ``x_ref`` (fixed at 1e21 FLOPs; with compute in other units it moves
    with them, as the prior of ``x0`` does) without the rise, ``b`` the drift per decade
    (negative = inverse scaling) and ``c >= 0`` the size of a late rise at ``x0``.
    ``b < 0`` with ``c > 0`` gives a U shape. Use :func:`bayescale.prob_inverse`
    for the posterior probability of each trend.

    Examples
    --------
    >>> [round(float(u_shaped(10.0 ** x, y0=0.6, b=-0.05, c=0.4, k=4.0, x0=24.0)), 3)
    ...  for x in (20, 23, 26)]
    [0.65, 0.507, 0.75]
    """
    x = log10(C)
    return y0 + b * (x - x_ref) + c * sigmoid(k * (x - x0))


__test__ = law_doctests(globals())
