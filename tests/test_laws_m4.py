"""The M4 law (Alabdulmohsin et al. 2022): implicit solve, PyTensor graph and gradient,
the ``AboveMax`` prior of ``e_0``, and parameter recovery with NUTS."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from conftest import FAST

import bayescale as bs
from bayescale.law import stop_gradient
from bayescale.laws import m4
from bayescale.model import make_spec

P = dict(e_inf=0.12, e_0=0.93, beta=8.0, c=0.35, alpha=1.7)


def _residual(x, e, *, e_inf, e_0, beta, c, alpha):
    """log of the two sides of the M4 equation, differenced."""
    return np.log(e - e_inf) - alpha * np.log(e_0 - e) - (np.log(beta) - c * np.log(x))


@pytest.mark.parametrize("alpha", [1e-6, 1e-3, 0.05, 0.3, 0.7, 1.0, 1.5, 3.0, 8.0, 20.0])
def test_solve_satisfies_implicit_equation(alpha):
    x = np.logspace(0, 14, 400)[:, None]
    checked = 0
    for beta in (1e-3, 1.0, 30.0, 1e4):
        for c in (0.05, 0.3, 1.0, 2.5):
            p = dict(e_inf=0.05, e_0=0.95, beta=beta, c=c, alpha=alpha)
            e = m4(x, **p)
            assert np.all((e >= 0.05) & (e <= 0.95))
            # points where both gaps are resolvable in float64 (else e is exact to rounding)
            ok = np.minimum(0.95 - e, e - 0.05) > 1e-6 * 0.9
            with np.errstate(divide="ignore", invalid="ignore"):
                r = _residual(x, e, **p)[ok]
            checked += r.size
            assert np.all(np.abs(r) < 1e-8), (beta, c)
    assert checked > 1000


def test_alpha_zero_is_saturating_power_law_and_alpha_monotone():
    x = np.logspace(2, 12, 50)
    m2 = 0.1 + 3.0 * x**-0.4
    np.testing.assert_allclose(m4(x, e_inf=0.1, e_0=0.95, beta=3.0, c=0.4, alpha=0.0), m2,
                               rtol=1e-12)
    np.testing.assert_allclose(m4(x, e_inf=0.1, e_0=0.95, beta=3.0, c=0.4, alpha=1e-9), m2,
                               rtol=1e-7)
    # the law is a decreasing curve between e_0 and e_inf
    e = m4(np.logspace(-15, 25, 200), e_inf=0.1, e_0=0.95, beta=3.0, c=0.4, alpha=2.0)
    assert np.all(np.diff(e) < 0)
    assert e[0] == pytest.approx(0.95, abs=1e-3) and e[-1] == pytest.approx(0.1, abs=1e-3)


def test_closed_form_alpha_one():
    # alpha = 1: (e - e_inf)/(e_0 - e) = f  =>  e = (e_inf + f e_0) / (1 + f)
    x = np.logspace(3, 9, 20)
    f = 40.0 * x**-0.3
    exact = (0.2 + f * 0.8) / (1 + f)
    np.testing.assert_allclose(m4(x, e_inf=0.2, e_0=0.8, beta=40.0, c=0.3, alpha=1.0), exact,
                               rtol=1e-13)


def test_numpy_xarray_pytensor_agree():
    import pymc as pm

    x = np.logspace(4, 10, 7)
    ref = m4(x, **P)
    xin = xr.DataArray(x, dims="row")
    xpar = {k: xr.DataArray(np.full(3, v), dims="sample") for k, v in P.items()}
    out = m4(xin, **xpar)
    assert set(out.dims) == {"row", "sample"}
    np.testing.assert_allclose(out.transpose("sample", "row").values[0], ref, rtol=1e-12)
    with pm.Model():
        tx = pm.Data("x", x)
        tpar = {k: pm.Data(f"p_{k}", np.asarray(v)) for k, v in P.items()}
        np.testing.assert_allclose(m4(tx, **tpar).eval(), ref, rtol=1e-12)


@pytest.mark.parametrize("alpha", [0.4, 1.7, 6.0])
def test_pytensor_gradient_is_implicit_gradient(alpha):
    """d/dtheta sum(log e) from the PyTensor graph (iterations under stop_gradient, one
    Newton step with gradients) equals central finite differences of the numpy solve."""
    import pytensor
    import pytensor.tensor as pt

    p0 = dict(P, alpha=alpha)
    x = np.logspace(3, 11, 9)
    tx = pt.dvector("x")
    tp = {k: pt.dscalar(k) for k in p0}
    cost = pt.log(m4(tx, **tp)).sum()
    grad = pytensor.function([tx, *tp.values()], pytensor.grad(cost, list(tp.values())))
    got = np.array(grad(x, *p0.values()))
    fd = []
    for k, v in p0.items():
        h = 1e-6 * max(1.0, abs(v))
        up, dn = dict(p0), dict(p0)
        up[k], dn[k] = v + h, v - h
        fd.append((np.log(m4(x, **up)).sum() - np.log(m4(x, **dn)).sum()) / (2 * h))
    np.testing.assert_allclose(got, fd, rtol=1e-6, atol=1e-7)
    assert np.all(np.abs(got) > 1e-3)  # every parameter moves the curve


def test_stop_gradient():
    import pytensor
    import pytensor.tensor as pt

    assert stop_gradient(2.5) == 2.5
    v = pt.dscalar("v")
    g = pytensor.grad(stop_gradient(v) ** 2 + v, v)
    assert float(g.eval({v: 3.0})) == 1.0  # only the "+ v" term carries a gradient


def test_above_max_prior_bound_and_draws():
    import pymc as pm

    df = pd.DataFrame({"N": [1e7, 1e8, 1e9, 1e10], "loss": [0.8, 0.6, 0.45, 0.4]})
    spec = make_spec(df.rename(columns={"N": "x", "loss": "y"}), m4, priors=None, pooled={},
                     likelihood=None, x={"x": "N"}, y="loss")
    assert spec.bounds == {"e_inf": {"*": 0.4}, "e_0": {"*": 0.8}}
    from bayescale.model import build_model

    with build_model(spec, df.rename(columns={"N": "x", "loss": "y"})):
        draws = pm.sample_prior_predictive(draws=2000, random_seed=0).prior
    e0 = draws["e_0"].values.ravel()
    einf = draws["e_inf"].values.ravel()
    assert e0.min() > 0.8 and einf.max() < 0.4
    # documented default: e_0 / max(y) within about [1.03, 5.4] with 90% probability
    lo, hi = np.quantile(e0 / 0.8, [0.05, 0.95])
    assert 1.02 < lo < 1.05 and 4.5 < hi < 6.5
    r = bs.Prior("AboveMax", mu=0.0, sigma=1.0)
    assert r.support == "interval"


@pytest.mark.slow
def test_m4_recovery_and_extrapolation():
    truth = dict(e_inf=0.1, e_0=0.9, beta=5000.0, c=0.5, alpha=1.5)
    x = np.logspace(4.5, 11, 40)  # the curve from 0.81 (e_0 = 0.9) down to 0.11
    rng = np.random.default_rng(2)
    y = m4(x, **truth) * np.exp(0.01 * rng.standard_normal(x.size))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sampling diagnostics are checked below
        fit = bs.fit(pd.DataFrame({"N": x, "loss": y}), "m4", x={"x": "N"}, random_seed=1,
                     **FAST)
    assert fit.diagnostics["divergences"] <= 5
    assert fit.diagnostics["max_rhat"] < 1.03
    for k, v in truth.items():
        d = fit.posterior[k].values.ravel()
        lo, hi = np.quantile(d, [0.05, 0.95])
        assert lo < v < hi, (k, lo, v, hi)
    # forecast at 10x the largest x: truth inside the 90% predictive interval
    xt = pd.DataFrame({"N": [1e12]})
    pred = fit.predict(xt, prob=0.9)
    true_e = float(m4(1e12, **truth))
    assert pred["lower"].iloc[0] < true_e < pred["upper"].iloc[0]
