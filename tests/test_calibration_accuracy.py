"""Calibrated extrapolation of accuracy laws: the logit drift and the distance of a loss."""

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.calibration import (
    TAU_GRIDS,
    Calibration,
    apply_drift,
    calibrate,
    decades_beyond,
    drift_scale,
    from_scale,
    inner_position,
    scale_decades,
    to_scale,
)
from bayescale.fit import size_of


def test_accuracy_laws_drift_on_the_logit_scale_and_losses_on_the_log_scale():
    assert drift_scale(bs.get_law("chinchilla")) == "log"
    for name in ("sigmoid_compute", "sigmoid_of_loss", "exp_error_of_loss", "onset_hinge",
                 "u_shaped"):
        assert drift_scale(bs.get_law(name)) == "logit", name
    p = np.array([0.0, 0.1, 0.5, 0.97, 1.0])
    np.testing.assert_allclose(from_scale(to_scale(p, "logit"), "logit"), p, atol=1e-12)
    # a drift moves accuracies on the logit scale and keeps them in [0, 1]; counts of 0 or
    # all questions right stay what they are
    moved = apply_drift(p, np.full(5, 2.0), "logit")
    assert moved[0] == 0.0 and moved[-1] == 1.0
    np.testing.assert_allclose(moved[2], 1 / (1 + np.exp(-2.0)))
    assert np.all((moved[1:-1] > p[1:-1]) & (moved[1:-1] < 1))
    # the log scale is the multiplicative drift of a loss, exactly as before
    np.testing.assert_allclose(apply_drift(np.array([2.0]), np.array([0.1]), "log"),
                               2.0 * np.exp(0.1))
    # a law's mean curve above 1 (exp_error_of_loss at a low loss) is not a NaN
    np.testing.assert_array_equal(apply_drift(np.array([1.02, -0.01]), np.array([0.3, 0.3]),
                                              "logit"), [1.0, 0.0])
    # errors of clipped accuracies stay finite
    assert np.isfinite(to_scale(np.array([0.0, 1.0]), "logit", clip=True)).all()


def test_calibration_refuses_an_unbounded_identity_response_with_a_clear_error():
    @bs.law(priors={"a": bs.Prior("Normal", mu=0.0, sigma=1.0)}, link="identity",
            register=False)
    def linear(x, *, a):
        return a * x

    with pytest.raises(bs.BayescaleError, match="loss laws .* and accuracy laws"):
        calibrate(SimpleNamespace(law=linear))
    # asked for on such a fit, decompose says so too (it reported a zero drift), and by
    # default it leaves the drift out, as predict does
    import xarray as xr

    from bayescale.fit import Fit, prepare_spec

    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0], "y": [0.1, 0.2, 0.3, 0.4]})
    spec, frame = prepare_spec(df, linear, y="y", x=None, priors=None)
    post = xr.Dataset({"a": (("chain", "draw"), np.full((1, 20), 0.1)),
                       "sigma": (("chain", "draw"), np.full((1, 20), 0.01)),
                       "nu": (("chain", "draw"), np.full((1, 20), 5.0))})
    fit = Fit(spec, frame, SimpleNamespace(posterior=post), {"random_seed": 0},
              {"problems": []})
    beyond = {"x": [40.0]}
    assert fit.decompose(beyond)["extrapolation"].tolist() == [0.0]
    with pytest.raises(bs.BayescaleError, match="loss laws .* and accuracy laws"):
        fit.decompose(beyond, extrapolation=True)
    with pytest.raises(bs.BayescaleError, match="loss laws .* and accuracy laws"):
        fit.predict(beyond, extrapolation=True)


def test_a_loss_input_is_beyond_the_data_below_the_smallest_fitted_loss():
    """An accuracy-of-loss law forecasts larger models at lower loss: its distance and its
    extrapolation ratio grow as the loss falls, in units of the fitted losses' span."""
    law = bs.get_law("sigmoid_of_loss")
    assert law.falling_inputs == ("L",)
    train = pd.DataFrame({"L": [4.0, 3.5, 3.0, 2.5], "chance": 0.25})
    fit = SimpleNamespace(law=law, data=train)
    new = pd.DataFrame({"L": [5.0, 3.0, 2.5, 2.0, 2.5**2 / 4.0], "chance": 0.25})
    span = np.log10(4.0 / 2.5)
    d = scale_decades(fit, new)
    np.testing.assert_allclose(d, [0.0, 0.0, 0.0, np.log10(2.5 / 2.0) / span, 1.0])
    # the same unit for an inner fit on the larger losses: the distance beyond its edge
    inner = {"L": 3.0, "chance": 0.25, "__scale__": 1 / 3.0}
    np.testing.assert_allclose(decades_beyond(fit, new, inner)[2], np.log10(3.0 / 2.5) / span)
    np.testing.assert_allclose(size_of(law, new), 1.0 / new["L"])
    # the inner cutoffs hold out the lowest losses (the largest models)
    pos = inner_position(fit, train, "scale")
    assert np.all(np.diff(pos) > 0)
    np.testing.assert_allclose(inner_position(fit, train, "inputs"), [0.25, 0.5, 0.75, 1.0])
    # compute-based accuracy laws measure in decades of compute, as loss laws do
    sig = SimpleNamespace(law=bs.get_law("sigmoid_compute"),
                          data=pd.DataFrame({"C": [1e19, 1e21], "chance": 0.25}))
    np.testing.assert_allclose(
        scale_decades(sig, pd.DataFrame({"C": [1e20, 1e22], "chance": 0.25})), [0.0, 1.0])


def test_saved_calibration_keeps_its_scale():
    cal = Calibration(tau=TAU_GRIDS["logit"], weights=np.ones((1, len(TAU_GRIDS["logit"]))),
                      prior_scale=0.02, scale="logit")
    back = Calibration.from_dict(cal.to_dict())
    assert back.scale == "logit" and back.summary()["scale"] == "logit"
    older = {k: v for k, v in cal.to_dict().items() if k != "scale"}
    assert Calibration.from_dict(older).scale == "log"  # files from before the logit drift


@pytest.mark.slow
def test_a_bending_loss_to_accuracy_link_is_learned_and_covered():
    """Stage-2 data whose accuracy rises faster below some loss than the logistic form can
    follow: the plain posterior misses the lower-loss targets, the calibrated drift (learned
    from the inner fits' errors, far above its prior) covers them."""
    from scipy.special import expit, logit

    from bayescale.laws import sigmoid_of_loss

    def truth(loss):
        base = sigmoid_of_loss(loss, 0.25, ceiling=0.9, k=4.0, L0=3.0)
        return expit(logit(base) + 2.0 * np.clip(3.2 - loss, 0, None) ** 1.5)

    rng = np.random.default_rng(0)
    loss = np.linspace(4.0, 2.8, 30)
    df = pd.DataFrame({"loss": loss, "correct": rng.binomial(500, truth(loss)), "n": 500})
    f = bs.fit(df, "sigmoid_of_loss", x={"L": "loss", "chance": 0.25}, random_seed=1,
               sampler="nutpie", draws=300, tune=400, chains=2, progressbar=False, warn=False)
    new = pd.DataFrame({"loss": [2.7, 2.6, 2.5, 2.4], "n": 500})
    y = truth(new["loss"].to_numpy())
    plain = f.predict(new, kind="mean", extrapolation=False)
    cal = f.predict(new, kind="mean")
    # the plain posterior is biased low at every target (its intervals end about half a
    # point below the truth); the calibrated intervals cover every one, 2x wider or more
    assert (plain["median"] < y - 0.01).all() and (plain["upper"] < y + 0.005).all(), (plain, y)
    assert ((cal["lower"] <= y) & (y <= cal["upper"])).all(), (cal, y)
    w_plain = (plain["upper"] - plain["lower"]).to_numpy()
    assert ((cal["upper"] - cal["lower"]).to_numpy() > 2 * w_plain).all()
    np.testing.assert_allclose(cal["extrapolation"], 2.8 / new["loss"])
    summ = f.calibration.summary()
    assert summ["scale"] == "logit" and summ["tau_5%"] > 5 * summ["prior_scale"], summ


def test_pooled_accuracy_calibrations_borrow_the_population_rate_in_logits():
    """pool_calibration on accuracy fits: the population is learned on the logit scale, so
    an uninformed series takes the others' rate of 1.5 logits per decade (as large as the
    Gadre tasks' stage 2 learned; the loss scale's grids would cap it at 0.6)."""
    from dataclasses import dataclass

    from bayescale.calibration import H_GRID, posterior_tau

    @dataclass
    class _Fit:  # what pool_calibration uses of a fit
        calibration: Calibration
        law: object = bs.get_law("sigmoid_compute")

        def with_calibration(self, cal):
            return _Fit(cal)

    rng = np.random.default_rng(0)
    grid = TAU_GRIDS["logit"]

    def cal(rate, informative=True, m=10, noise=0.02):
        groups = []
        for _ in range(3):
            d = np.linspace(0.05, 1.0, m) if informative else np.zeros(m)
            r = rate * d * rng.standard_normal() + noise * rng.standard_normal(m)
            groups.append((r, np.full(m, noise**2), d))
        w = posterior_tau(groups, prior_scale=0.02, grid=grid, h_grid=H_GRID)
        res = pd.concat([pd.DataFrame({"cutoff_quantile": q, "decades": d, "residual": r,
                                       "predictive_sd": noise})
                         for q, (r, _, d) in zip((0.5, 0.65, 0.8), groups)])
        return Calibration(tau=grid, weights=w, prior_scale=0.02, residuals=res,
                           h=np.asarray(H_GRID), scale="logit")

    fits = [_Fit(cal(1.5)) for _ in range(12)] + [_Fit(cal(0.0, informative=False))]
    pooled = bs.pool_calibration(fits)
    own = float(fits[-1].calibration.quantiles([0.5])[0])
    got = float(pooled[-1].calibration.quantiles([0.5])[0])
    assert own < 0.03  # its HalfCauchy(0.02) prior alone
    assert 0.8 < got < 2.4, got
    pop = pooled[-1].calibration.population
    assert 0.8 < pop["tau_population_median"] < 2.4, pop
    assert pooled[-1].calibration.scale == "logit"
    mixed = [fits[0], _Fit(Calibration(tau=TAU_GRIDS["log"], weights=posterior_tau([]),
                                       prior_scale=0.005))]
    with pytest.raises(bs.BayescaleError, match="one scale"):
        bs.pool_calibration(mixed)


@pytest.mark.slow
def test_each_task_of_a_pooled_fit_learns_its_own_drift(tmp_path):
    """calibrate(by="task"): the same inner fits, split by task. The task whose link bends
    learns a larger drift than the two exact ones, so its interval widens and theirs
    narrow against one drift for all; a new task takes the population; saved and loaded."""
    from dataclasses import replace

    from scipy.special import expit, logit

    from bayescale.laws import sigmoid_of_loss

    def truth(loss, bend):
        base = sigmoid_of_loss(loss, 0.25, ceiling=0.9, k=4.0, L0=3.0)
        return expit(logit(base) + bend * np.clip(3.2 - loss, 0, None) ** 1.5)

    rng = np.random.default_rng(0)
    loss = np.linspace(4.0, 2.8, 20)
    bends = {"a": 0.0, "b": 0.0, "c": 3.0}
    df = pd.concat([pd.DataFrame({"loss": loss, "task": t, "n": 500,
                                  "correct": rng.binomial(500, truth(loss, b))})
                    for t, b in bends.items()])
    f = bs.fit(df, "sigmoid_of_loss", x={"L": "loss", "chance": 0.25},
               pooled={"L0": "task", "k": "task"}, random_seed=1, sampler="nutpie",
               draws=300, tune=400, chains=2, progressbar=False, warn=False)
    # a list raised pandas' "unhashable type: 'list'"; the response "y" was taken as levels
    for bad in ("family", ["task"], {"task"}, "y"):
        with pytest.raises(bs.BayescaleError, match=r"takes one group column of the fit.*"
                                                    r"group columns are \['task'\]"):
            f.calibrate(by=bad)
    g = f.calibrate(by="task")
    levels = g.calibration.level_summary().set_index("task")
    assert list(levels.index) == ["a", "b", "c", "(new level)"]
    assert levels.loc["c", "tau_median"] > 2 * max(levels.loc[["a", "b"], "tau_median"])
    # one drift for all: the same inner forecasts, not split (no refits)
    one = f.with_calibration(replace(g.calibration, by=None))
    new = pd.DataFrame({"loss": 2.6, "task": ["a", "b", "c", "z"], "n": 500})
    warnings.simplefilter("ignore", bs.PoolingWarning)  # task 'z' is new on purpose
    by_task = g.predict(new, kind="mean")
    pooled = one.predict(new, kind="mean")
    w_task = (by_task["upper"] - by_task["lower"]).to_numpy()
    w_one = (pooled["upper"] - pooled["lower"]).to_numpy()
    assert w_task[2] > 1.2 * w_one[2] and np.all(w_task[:2] < 0.85 * w_one[:2]), (w_task, w_one)
    y_c = truth(2.6, bends["c"])
    assert by_task["lower"][2] <= y_c <= by_task["upper"][2]
    dec = g.decompose(new)["extrapolation"].to_numpy()
    assert dec[3] > max(dec[0], dec[1])  # a new task: the population's wider rate
    back = bs.load_fit(g.save(tmp_path / "by_task.nc"))
    assert back.calibration.by == "task" and back.calibration.summary()["by"] == "task"
    pd.testing.assert_frame_equal(back.predict(new, kind="mean"), by_task)


def test_inner_forecasts_piled_on_one_count_stay_in_the_evidence(monkeypatch):
    """An inner forecast of an exact-match task before its onset puts most draws on 0
    correct: its IQR is 0, and the drift's likelihood skips a variance of 0, so the surest
    (and most wrong) inner forecasts dropped out unsaid (tau's median 0.02 where, kept,
    it was 2.4 logits). They keep the draws' variance; one whose draws are all equal has
    none to score against and is named in the calibration's problems."""
    from conftest import fixed_fit
    from scipy.special import expit

    import bayescale.calibration as calmod
    from bayescale.fit import Fit

    c = np.logspace(19, 23, 10)
    df = pd.DataFrame({"C": c, "chance": 0.0, "correct": [0, 0, 0, 0, 0, 1, 0, 3, 5, 9],
                       "n": 100})
    fit = fixed_fit(df, "onset_logistic", {"ceiling": 0.9, "k": 3.0, "x0": 24.0, "phi": 1000.0},
                    draws=400)
    monkeypatch.setattr(Fit, "refit", lambda self, train, **kw: self)  # the inner fit
    train = (np.arange(10) > 0) & (np.arange(10) < 6)
    r, var, _, zd, _, problem = calmod._inner_forecast(fit, train, draws=100, seed=0,
                                                       label="q=0.5")
    zd_c = to_scale(expit(zd), "logit", clip=True)
    iqr0 = calmod.robust_variance(zd_c) == 0
    assert iqr0[1] and r[2] > 3.0  # held row 6: most draws 0 of 100, truth 1 of 100
    assert var[1] == pytest.approx(np.var(zd_c[:, 1])) and var[1] > 0.1
    assert var[0] == 0.0 and np.ptp(zd_c[:, 0]) == 0  # C = 1e19: every draw 0
    assert problem == ("inner fit at cutoff q=0.5: 1 inner forecast(s) with every predictive "
                       "draw the same value were left out of the drift's evidence")
