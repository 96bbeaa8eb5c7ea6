"""Downstream accuracy laws: accuracy as a function of compute or of a loss.

All are fitted on the accuracy scale (``link="identity"``, ``response="accuracy"``)
with a Binomial (counts known: columns ``correct``/``n`` or ``accuracy``/``n``),
beta-binomial or Beta likelihood (only a score known).

The chance level is an *input* named ``chance``: a column of the data (one value
per row, e.g. per task) or a constant given with ``x={"chance": 0.25}``. It is
never a fitted parameter. The ceiling is parameterised as the fraction of the way
from chance to 1 (``ceiling ~ Beta(6, 1.5)``, LAWS.md section 0), so the curve can
never fall below chance or rise above 1:
``top = chance + (1 - chance) * ceiling``.
"""

from __future__ import annotations

import numpy as np

from ..law import law, law_doctests, sigmoid
from ..priors import Prior

LN10 = float(np.log(10.0))
CEILING_PRIOR = Prior("Beta", alpha=6.0, beta=1.5)
STEEPNESS_PRIOR = Prior("LogNormal", mu=float(np.log(3.0)), sigma=0.75)


def log10(x):
    """``log10`` that dispatches to PyTensor for tensors (``np.log(x) / ln 10``)."""
    return np.log(x) / LN10


@law(
    priors={
        "ceiling": CEILING_PRIOR,
        "k": STEEPNESS_PRIOR,
        "x0": Prior("Normal", mu=21.0, sigma=3.0),
    },
    log10_positions={"x0": "C"},
    link="identity",
    likelihood="binomial",
    response="accuracy",
    positive_inputs=("C",),
    equation="acc = chance + (1 - chance) * ceiling * sigmoid(k * (log10 C - x0))",
    citation="Logistic accuracy-vs-compute law (LAWS.md E1 model A; Ruan et al. 2024, "
    "arXiv:2405.10938)",
)
def sigmoid_compute(C, chance, *, ceiling, k, x0):
    """Logistic accuracy in ``log10`` compute with a known chance floor.

    ``acc = chance + (1 - chance) * ceiling * sigmoid(k * (log10 C - x0))``:
    ``x0`` is the midpoint in ``log10`` FLOPs, ``k`` the steepness per decade
    (10% -> 90% of the rise takes ``4.39 / k`` decades) and the curve tops out at
    ``chance + (1 - chance) * ceiling``.

    Examples
    --------
    >>> round(float(sigmoid_compute(1e21, 0.25, ceiling=0.8, k=2.0, x0=21.0)), 4)
    0.55
    >>> round(float(sigmoid_compute(1e30, 0.25, ceiling=0.8, k=2.0, x0=21.0)), 4)
    0.85
    """
    return chance + (1.0 - chance) * ceiling * sigmoid(k * (log10(C) - x0))


@law(
    priors={
        "eps": Prior("Beta", alpha=8.0, beta=2.0),
        "k": Prior("LogNormal", mu=float(np.log(3.0)), sigma=1.0),
        "gamma": Prior("LogNormal", mu=0.0, sigma=0.5),
    },
    link="identity",
    likelihood="beta",
    response="accuracy",
    positive_inputs=("L",),
    falling_inputs=("L",),
    equation="acc = 1 - err, err = eps - k * exp(-gamma * L)",
    citation="Gadre et al. 2024, Language models scale reliably with over-training and on "
    "downstream tasks (arXiv:2403.08540)",
)
def exp_error_of_loss(L, *, eps, k, gamma):
    """Gadre et al.'s exponential link from loss to error, returned as accuracy.

    ``err(L) = eps - k * exp(-gamma * L)`` and the law returns ``1 - err``:
    ``eps`` is the error as the loss grows (about the chance error of the task
    set), ``k`` and ``gamma`` shape the decay. Map the loss column with
    ``x={"L": "loss"}``. For losses small enough that ``err < 0`` the likelihood
    clips the accuracy to just below 1.

    Examples
    --------
    Roughly the fit on the Gadre testbed quoted in LAWS.md D2:

    >>> round(float(exp_error_of_loss(3.0, eps=0.80, k=2.8, gamma=0.95)), 4)
    0.362
    """
    return 1.0 - eps + k * np.exp(-gamma * L)


@law(
    priors={
        "ceiling": CEILING_PRIOR,
        "k": Prior("LogNormal", mu=float(np.log(5.0)), sigma=0.7),
        "L0": Prior("Normal", mu=0.0, sigma=0.3),
    },
    locations={"L0": "L"},
    link="identity",
    likelihood="binomial",
    response="accuracy",
    positive_inputs=("L",),
    falling_inputs=("L",),
    equation="acc = chance + (1 - chance) * ceiling * sigmoid(-k * (L - L0))",
    citation="Bhagia et al. 2024, model ladder step 2 (arXiv:2412.04403)",
)
def sigmoid_of_loss(L, chance, *, ceiling, k, L0):
    """Accuracy as a falling logistic of a (task) loss: the OLMo ladder's step 2.

    ``acc = chance + (1 - chance) * ceiling * sigmoid(-k * (L - L0))``. Accuracy
    rises as the loss falls; ``L0`` is the loss at mid-rise and ``k`` the
    steepness per nat. The prior of ``L0`` is on ``log(L0 / centre)`` where the
    centre is the geometric mean of the fitted losses (``Normal(0, 0.3)``: within
    about 30% of the typical loss). Same curve as LAWS.md D1 with ``b = chance``
    and ``a + b`` the ceiling.

    Examples
    --------
    >>> round(float(sigmoid_of_loss(1.0, 0.25, ceiling=1.0, k=5.0, L0=1.0)), 4)
    0.625
    """
    return chance + (1.0 - chance) * ceiling * sigmoid(-k * (L - L0))


__test__ = law_doctests(globals())
