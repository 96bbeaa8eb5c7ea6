"""Loss laws: loss as a function of parameters ``N``, tokens ``D``, compute ``C``.

All are saturating or pure power laws fitted on the log scale (``link="log"``)
with a Student-t likelihood by default. Power-law coefficients carry priors on
the log of the term's value at a reference scale (``N_ref = 1e9``,
``D_ref = 2e10``, ``C_ref = 1e21``; for other inputs the geometric mean of the
data), so ``A ~ "Normal(log 0.3, 1)"`` reads "the term is about 0.3 at 1e9
parameters, within a factor e".
"""

from __future__ import annotations

import numpy as np

from ..law import clip, law, law_doctests, logaddexp, sigmoid, smooth_min, softplus, stop_gradient
from ..priors import Prior

E_PRIOR = Prior("BelowMin", mu=1.0, sigma=1.5)
TERM_PRIOR = Prior("Normal", mu=float(np.log(0.3)), sigma=1.0)
EXPONENT_PRIOR = Prior("Beta", alpha=3.0, beta=7.0)


@law(
    priors={"E": E_PRIOR, "A": TERM_PRIOR, "alpha": EXPONENT_PRIOR},
    terms={"A": ("alpha", "x")},
    equation="L(x) = E + A * x^(-alpha)",
    citation="Hestness et al. 2017 (arXiv:1712.00409); Henighan et al. 2020 (arXiv:2010.14701)",
)
def power_law(x, *, E, A, alpha):
    """Saturating power law in one input: ``E + A * x**(-alpha)``.

    Map the input to a column with ``x={"x": "N"}`` (or ``"D"``, ``"C"``, any column).

    Examples
    --------
    >>> round(float(power_law(1e9, E=1.8, A=482.0, alpha=0.3478)), 4)
    2.1571
    """
    return E + A * x ** (-alpha)


@law(
    priors={
        "E": E_PRIOR,
        "A": TERM_PRIOR,
        "alpha": EXPONENT_PRIOR,
        "B": TERM_PRIOR,
        "beta": EXPONENT_PRIOR,
    },
    terms={"A": ("alpha", "N"), "B": ("beta", "D")},
    equation="L(N, D) = E + A * N^(-alpha) + B * D^(-beta)",
    citation="Hoffmann et al. 2022 (arXiv:2203.15556); Besiroglu et al. 2024 (arXiv:2404.10102)",
)
def chinchilla(N, D, *, E, A, alpha, B, beta):
    """Chinchilla additive law ``E + A/N**alpha + B/D**beta`` (Hoffmann et al. 2022).

    Examples
    --------
    Epoch AI's refit at 70B parameters and 1.4T tokens:

    >>> round(float(chinchilla(7e10, 1.4e12, E=1.81686, A=482.006, alpha=0.34781,
    ...                        B=2085.43, beta=0.36585)), 4)
    1.9734
    """
    return E + A * N ** (-alpha) + B * D ** (-beta)


@law(
    priors={
        "N_c": Prior("LogNormal", mu=float(np.log(1e13)), sigma=4.0),
        "D_c": Prior("LogNormal", mu=float(np.log(1e13)), sigma=4.0),
        "alpha_N": Prior("Beta", alpha=2.0, beta=18.0),
        "alpha_D": Prior("Beta", alpha=2.0, beta=18.0),
    },
    equation="L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
    citation="Kaplan et al. 2020 (arXiv:2001.08361), eq. 1.5",
)
def kaplan(N, D, *, N_c, D_c, alpha_N, alpha_D):
    """Kaplan et al. joint law ``[(N_c/N)**(alpha_N/alpha_D) + D_c/D]**alpha_D``.

    No irreducible term; ``N`` is non-embedding parameters in the original paper.

    Examples
    --------
    Kaplan's Table 2 values at N = 1e9, D = 2e10:

    >>> round(float(kaplan(1e9, 2e10, N_c=6.4e13, D_c=1.8e13, alpha_N=0.076,
    ...                    alpha_D=0.103)), 4)
    2.3739
    """
    a = (alpha_N / alpha_D) * (np.log(N_c) - np.log(N))
    b = np.log(D_c) - np.log(D)
    return np.exp(alpha_D * logaddexp(a, b))


@law(
    priors={
        "E": E_PRIOR,
        "b": TERM_PRIOR,
        "c0": Prior("Normal", mu=0.3, sigma=0.5),
        "c1": Prior("Normal", mu=0.0, sigma=1.0),
        "d": Prior("Normal", mu=0.0, sigma=2.0),
        "f": Prior("LogNormal", mu=float(np.log(0.5)), sigma=1.0),
    },
    terms={"b": ("c0", "x")},
    locations={"d": "x"},
    equation="y(x) = E + b * x^(-c0) * (1 + (x/d)^(1/f))^(-c1*f)",
    citation="Caballero et al. 2022, Broken Neural Scaling Laws (arXiv:2210.14891)",
)
def broken_power_law(x, *, E, b, c0, c1, d, f):
    """Smoothly broken power law with one break (BNSL, Caballero et al. 2022).

    The log-log slope is ``-c0`` before the break at ``x = d`` and ``-(c0 + c1)``
    after it; ``f`` sets the sharpness. The prior of ``d`` is on ``log(d / centre)``
    where the centre is the geometric mean of the fitted ``x``.

    Examples
    --------
    With ``c1 = 0`` it is the saturating power law:

    >>> round(float(broken_power_law(1e9, E=1.8, b=482.0, c0=0.3478, c1=0.0, d=1e8, f=0.5)), 4)
    2.1571
    >>> round(float(broken_power_law(1e9, E=0.0, b=1.0, c0=0.0, c1=0.5, d=1e9, f=1.0)), 4)
    0.7071
    """
    # one exponential of the summed logs: b (exp of the centred term) and x^-c0 apart
    # overflowed and underflowed in float32 for large c0 (a NaN gradient)
    return E + np.exp(np.log(b) - c0 * np.log(x) - c1 * f * softplus((np.log(x) - np.log(d)) / f))


@law(
    priors={
        "E": E_PRIOR,
        "A": TERM_PRIOR,
        "alpha": EXPONENT_PRIOR,
        "B": TERM_PRIOR,
        "beta": EXPONENT_PRIOR,
        "R_D": Prior("LogNormal", mu=float(np.log(15.0)), sigma=0.7),
        "R_N": Prior("LogNormal", mu=float(np.log(5.0)), sigma=0.7),
    },
    terms={"A": ("alpha", "N"), "B": ("beta", "D")},
    equation=(
        "L = E + A/N'^alpha + B/D'^beta, D' = U + U*R_D*(1 - exp(-(D/U - 1)/R_D)), "
        "N' = U_N + U_N*R_N*(1 - exp(-(N/U_N - 1)/R_N)), U_N = min(N, N_opt(U))"
    ),
    citation="Muennighoff et al. 2023, Scaling Data-Constrained Language Models (arXiv:2305.16264)",
)
def data_constrained(N, D, U, *, E, A, alpha, B, beta, R_D, R_N):
    """Data-constrained law with repeated data (Muennighoff et al. 2023).

    ``U`` is the number of unique tokens available: a run of ``D`` tokens sees
    ``min(U, D)`` of them (a ``U`` above ``D``, such as the size of a dataset the run
    did not exhaust, counts as ``D``). Excess epochs decay with half-life ``R_D`` and
    excess parameters beyond the compute-optimal size for ``U`` with ``R_N``. The
    ``min`` over ``N`` is a smooth minimum so NUTS sees no kink.
    Reduces to :func:`chinchilla` when ``U >= D`` and ``N <= N_opt(U)``.

    Examples
    --------
    The datablations README example:

    >>> p = dict(E=np.exp(0.6254804), A=np.exp(6.255414), alpha=0.3526596,
    ...          B=np.exp(7.3049974), beta=0.3526596, R_D=15.387756, R_N=5.309743)
    >>> round(float(data_constrained(6.34e9, 242e9, 25e9, **p)), 4)
    2.2256
    """
    U = clip(U, 0.0, D)  # data, not parameters: an exact minimum
    log_g = (np.log(alpha * A) - np.log(beta * B)) / (alpha + beta)
    log_n_opt = (beta / alpha) * (np.log(U) + log_g) + log_g
    log_un = smooth_min(np.log(N), log_n_opt)
    un = np.exp(log_un)
    # excess parameters over U_N, capped at e^50: exp(-rn/R_N) is 0 long before, and an
    # uncapped ratio overflowed where a small alpha and large beta put N_opt near e^-700
    # (the value stayed finite, its gradient was 0 * inf = NaN)
    rn = np.exp(clip(np.log(N) - log_un, 0.0, 50.0)) - 1.0
    rd = D / U - 1.0
    n_eff = un + un * R_N * (1.0 - np.exp(-rn / R_N))
    d_eff = U + U * R_D * (1.0 - np.exp(-rd / R_D))
    return E + A * n_eff ** (-alpha) + B * d_eff ** (-beta)


#: Newton iterations of the M4 solve (run without gradients; one more step carries them).
M4_NEWTON_STEPS = 12


def _m4_logit_excess(g, alpha):
    """Solve ``h(s) = -softplus(-s) + alpha * softplus(s) = g`` for ``s``.

    ``h`` is increasing with slope ``(1 - u) + alpha * u`` (``u = sigmoid(s)``), between
    ``min(1, alpha)`` and ``max(1, alpha)``, so the root lies in
    ``[d / max_slope, d / min_slope]`` (``d = g - h(0)``, order swapped for ``d < 0``);
    ``h`` is convex for ``alpha > 1`` and concave for ``alpha < 1``, so Newton from
    ``d / max_slope`` clamped to that bracket converges monotonically after its first
    step. The iterations run under :func:`~bayescale.law.stop_gradient`; a final Newton
    step with gradients on gives the implicit-function gradient ``ds = (dg - dh) / h'``.
    """
    a_pos = clip(alpha, 1e-12, np.inf)
    slope_lo = clip(a_pos, 0.0, 1.0)
    slope_hi = clip(a_pos, 1.0, np.inf)

    def h(s):
        return -softplus(-s) + alpha * softplus(s)

    def dh(s):
        u = sigmoid(s)
        return clip((1.0 - u) + alpha * u, 1e-300, np.inf)

    d = g - (alpha - 1.0) * np.log(2.0)
    r1, r2 = d / slope_lo, d / slope_hi
    lo = stop_gradient(clip(r1, -np.inf, r2))
    hi = stop_gradient(clip(r1, r2, np.inf))
    s = stop_gradient(r2)
    g_sg, a_sg = stop_gradient(g), stop_gradient(alpha)
    for _ in range(M4_NEWTON_STEPS):
        u = sigmoid(s)
        step = (g_sg + softplus(-s) - a_sg * softplus(s)) / clip(
            (1.0 - u) + a_sg * u, 1e-300, np.inf
        )
        s = clip(s + step, lo, hi)
    s = stop_gradient(s)
    return s + (g - h(s)) / dh(s)


@law(
    priors={
        "e_inf": E_PRIOR,
        "e_0": Prior("AboveMax", mu=-1.0, sigma=1.5),
        "beta": Prior("Normal", mu=float(np.log(0.3)), sigma=1.5),
        "c": Prior("LogNormal", mu=float(np.log(0.4)), sigma=0.75),
        "alpha": Prior("LogNormal", mu=0.0, sigma=1.0),
    },
    terms={"beta": ("c", "x")},
    equation="(e - e_inf) / (e_0 - e)^alpha = beta * x^(-c), e_inf < e < e_0",
    citation=(
        "Alabdulmohsin, Neyshabur & Zhai 2022, Revisiting Neural Scaling Laws in Language "
        "and Vision (arXiv:2209.06640), estimator M4"
    ),
)
def m4(x, *, e_inf, e_0, beta, c, alpha):
    """M4 law of Alabdulmohsin et al. 2022: ``(e - e_inf)/(e_0 - e)**alpha = beta*x**(-c)``.

    The error (or loss) ``e`` falls from the random-guessing level ``e_0`` towards the
    floor ``e_inf``: a power law ``e - e_inf ~ beta * x**(-c) * (e_0 - e_inf)**alpha`` for
    large ``x``, and ``e_0 - e ~ x**(c/alpha)`` for small ``x`` (sigmoid-like in
    ``log x``). ``alpha = 0`` is the saturating power law ``e_inf + beta * x**(-c)``
    (their M2). Named ``m4`` after the paper's estimator (and Google's
    ``revisiting_neural_scaling_laws`` code), the name its benchmark uses.

    The prediction solves the implicit equation: with ``b = e_0 - e_inf`` and
    ``e = e_inf + b * sigmoid(s)``, ``s`` solves
    ``-softplus(-s) + alpha * softplus(s) = log(beta) - c*log(x) - (1 - alpha)*log(b)``
    (strictly increasing in ``s``), by 12 safeguarded Newton steps without gradients
    and one with them, so NUTS gets the implicit-function gradient.

    Default priors (documented choices, not fitted to any benchmark):

    * ``e_inf``: below the smallest observed value (``BelowMin``, as ``E`` of
      :func:`power_law`).
    * ``e_0``: above the largest observed value, ``e_0 = max(y) * (1 + exp(z))``,
      ``z ~ Normal(-1, 1.5)``: 90% between 1.03x and 5.4x ``max(y)``. Where the chance
      error is known (``1 - 1/classes``), fix it: ``priors={"e_0": 0.999}``.
    * ``beta``: the normalised excess ``beta * x**(-c)`` at the centre of the data
      (geometric mean of ``x``; the reference scale for ``N``/``D``/``C``) is
      ``LogNormal(log 0.3, 1.5)``, wider than the other laws' terms because of the
      ``(e_0 - e)**alpha`` denominator.
    * ``c ~ LogNormal(log 0.4, 0.75)``: 90% in [0.12, 1.4] (data-scaling exponents
      are typically 0.1-1; Google's estimator starts at 0.5).
    * ``alpha ~ LogNormal(0, 1)``: centred on ``alpha = 1`` (the paper's fixed-alpha
      ablation), a factor e either way per sd; small ``alpha`` approaches M2.

    Examples
    --------
    >>> e = m4(np.array([1e6, 1e8]), e_inf=0.1, e_0=0.9, beta=20.0, c=0.3, alpha=1.5)
    >>> lhs = (e - 0.1) / (0.9 - e) ** 1.5
    >>> np.allclose(lhs, 20.0 * np.array([1e6, 1e8]) ** -0.3, rtol=1e-10)
    True
    >>> round(float(m4(1e8, e_inf=0.1, e_0=0.9, beta=20.0, c=0.3, alpha=0.0)), 6)
    0.179621
    """
    b = e_0 - e_inf
    g = np.log(beta) - c * np.log(x) - (1.0 - alpha) * np.log(b)
    # sigmoid(s) as exp(-softplus(-s)): relative accuracy of the excess e - e_inf
    return e_inf + b * np.exp(-softplus(-_m4_logit_excess(g, alpha)))


__test__ = law_doctests(globals())
