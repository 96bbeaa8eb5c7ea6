"""Extrapolation calibration: the tau posterior, and no inflation when the law is right."""

import logging
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from conftest import FAST

import bayescale as bs
from bayescale.calibration import H_GRID, TAU_GRID, Calibration, pit, posterior_tau
from bayescale.laws import power_law


def _groups(rate, rng, n_groups=3, m=12, noise=0.005):
    groups = []
    for _ in range(n_groups):
        d = np.linspace(0.05, 1.2, m)
        var = np.full(m, noise**2)
        r = rate * d * rng.standard_normal() + noise * rng.standard_normal(m)
        groups.append((r, var, d))
    return groups


def test_tau_posterior_near_zero_when_law_is_right():
    rng = np.random.default_rng(0)
    w = posterior_tau(_groups(0.0, rng))
    mean = float(np.sum(w * TAU_GRID))
    assert mean < 0.015
    # and it learns a real drift (pooled over many inner forecasts)
    w = posterior_tau(_groups(0.04, rng, n_groups=40))
    mean = float(np.sum(w * TAU_GRID))
    assert 0.025 < mean < 0.06


def test_growth_exponent_learned():
    """Errors that appear right beyond the data and then grow slowly favour small h."""
    rng = np.random.default_rng(1)
    for h_true, expect in ((0.25, lambda m: m < 0.5), (1.0, lambda m: m > 0.75)):
        groups = []
        for _ in range(30):
            d = np.linspace(0.05, 1.2, 12)
            var = np.full(12, 0.002**2)
            r = 0.03 * d**h_true * rng.standard_normal(12) + 0.002 * rng.standard_normal(12)
            groups.append((r, var, d))
        w = posterior_tau(groups, h_grid=H_GRID)
        assert w.shape == (len(H_GRID), len(TAU_GRID))
        cal = Calibration(tau=TAU_GRID, weights=w, prior_scale=0.005, h=np.asarray(H_GRID))
        h_mean = cal.summary()["h_mean"]
        assert expect(h_mean), (h_true, h_mean)
        assert 0.02 < np.sqrt(cal.mean_sq()) < 0.045
        # the discrepancy variance is tau^2 d^(2h): zero inside the data, tau^2 at one decade
        v = cal.variance(np.array([0.0, 1.0]))
        assert v[0] == 0.0 and v[1] == pytest.approx(cal.mean_sq())
        # round trip through the saved form
        back = Calibration.from_dict(cal.to_dict())
        np.testing.assert_allclose(back.variance(np.array([0.3])), cal.variance(np.array([0.3])))


def test_tau_posterior_prior_only_without_evidence():
    w = posterior_tau([], prior_scale=0.005)
    # HalfCauchy(0.005): the median of the (grid-truncated) prior is the scale
    cdf = np.cumsum(w)
    assert np.interp(0.5, cdf, TAU_GRID) == pytest.approx(0.005, rel=0.05)


@pytest.mark.slow
def test_exact_law_intervals_not_inflated_more_than_20pct(caplog):
    rng = np.random.default_rng(3)
    truth = dict(E=1.7, A=30.0, alpha=0.3)
    x = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 60))
    y = power_law(x, **truth) * np.exp(0.01 * rng.standard_normal(60))
    df = pd.DataFrame({"N": x, "loss": y})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        f = bs.fit(df, "power_law", x={"x": "N"}, random_seed=4, **FAST)
        new = pd.DataFrame({"N": [3e10, 1e11]})  # half and one decade beyond
        with caplog.at_level(logging.INFO, logger="bayescale"):
            # rows inside the data need no calibration: none is computed (it was, 14 s)
            inside = f.decompose(df[["N"]].iloc[:3])
            assert (inside["extrapolation"] == 0).all() and "calibration" not in f.__dict__
            plain = f.predict(new, extrapolation=False)
            assert not caplog.records  # no calibration without the drift
            cal = f.predict(new)
            f.predict(new)
    # the calibration that starts on its own says so, once (on stderr by default)
    said = [r.getMessage() for r in caplog.records]
    assert said == ["Calibrating the extrapolation drift of 'power_law' by nested "
                    "leave-future-out (refits on the smaller runs; once per fit, saved by "
                    "fit.save; extrapolation=False skips it) ..."], said
    ratio = (cal["upper"] - cal["lower"]) / (plain["upper"] - plain["lower"])
    assert (ratio >= 1.0 - 0.03).all()  # never narrower (up to Monte Carlo error)
    assert (ratio <= 1.2).all(), ratio.tolist()
    y_true = power_law(new["N"].to_numpy(), **truth)
    assert ((cal["lower"] <= y_true) & (y_true <= cal["upper"])).all()
    dec = f.decompose(new)
    np.testing.assert_allclose(
        dec[["parameter_share", "noise_share", "extrapolation_share"]].sum(axis=1), 1.0
    )
    assert (dec["extrapolation"].diff().dropna() > 0).all()  # grows with distance
    # the inner forecasts the drift was learned from are covered at about their level
    res = f.calibration.residuals
    assert res["pit"].between(0.0, 1.0).all()
    above = res["residual"] > 0  # truth above the inner median <=> PIT above 1/2
    assert ((res["pit"] > 0.5) == above).mean() > 0.95
    summ = f.calibration.summary()
    assert 0.75 <= summ["inner_cover90"] <= 1.0, summ
    assert 0.3 <= summ["inner_cover50"] <= 0.7, summ


def test_an_over_trained_model_inside_every_range_is_beyond_the_data_in_tokens_per_param():
    """Distance beyond the data counts the ratio of each pair of size inputs: a small model
    trained on 8x more tokens per parameter than any fitted run (its N, D and compute all
    inside their ranges) is 0.9 decades out, an under-trained large one 1 decade; a law of
    one input, or an accuracy law of a loss, has no pair."""
    from types import SimpleNamespace

    from bayescale.calibration import ratio_pairs, scale_decades

    train = pd.DataFrame({"N": [1e8, 1e9, 1e10, 1e8, 1e10],
                          "D": [2e9, 2e10, 2e11, 8e9, 8e11]})  # 20 to 80 tokens per param
    chin = SimpleNamespace(law=bs.get_law("chinchilla"), data=train)
    new = pd.DataFrame({"N": [1e8, 1e10, 1e9, 1e11],
                        "D": [6.4e10, 2e10, 4e10, 2e12]})
    d = scale_decades(chin, new)
    np.testing.assert_allclose(d, [np.log10(8), 1.0, 0.0, np.log10(1e11 * 2e12 / (1e10 * 8e11))],
                               atol=1e-12)  # the last: compute, 1.4 decades out
    assert (6 * new.N * new.D)[:2].max() < (6 * train.N * train.D).max()  # compute inside
    assert ratio_pairs(bs.get_law("data_constrained")) == [("N", "D"), ("N", "U"), ("D", "U")]
    assert ratio_pairs(bs.get_law("power_law")) == []
    assert ratio_pairs(bs.get_law("sigmoid_of_loss")) == []


def test_a_drift_per_direction_widens_each_forecast_by_the_way_it_leaves_the_data():
    """With drifts of their own above and below the fitted ``D/N`` (``Calibration.ratio``),
    an over-trained model inside the ranges of N, D and compute gets the drift above the
    ratios only, an under-trained one the drift below, a larger model trained at the fitted
    tokens per parameter the growth drift only, and one that leaves two ways the sum; the
    ratio order of the inner cutoffs holds out both tails of ``D/N``; the calibration
    round-trips through its saved form and is reported."""
    from types import SimpleNamespace

    import bayescale.calibration as calmod
    from bayescale.report import _calibration_table

    train = pd.DataFrame({"N": [1e8, 1e9, 1e10, 1e8, 1e10],
                          "D": [2e9, 2e10, 2e11, 8e9, 8e11]})  # 20 to 80 tokens per param
    chin = SimpleNamespace(law=bs.get_law("chinchilla"), data=train)
    grow = _calibration(0.04, np.random.default_rng(1))
    above = _calibration(0.01, np.random.default_rng(2))
    below = _calibration(0.08, np.random.default_rng(3))
    cal = Calibration(tau=grow.tau, weights=grow.weights, prior_scale=0.005, h=grow.h,
                      residuals=grow.residuals, ratio={"above": above, "below": below})
    chin.calibration = cal
    # over-trained (8x the largest ratio), under-trained (4x below the smallest, inside the
    # ranges too), larger at 20 tokens/param, larger and over-trained
    new = pd.DataFrame({"N": [1e8, 4e9, 1e11, 1e11], "D": [6.4e10, 2e10, 2e12, 6.4e13]})
    g = calmod.scale_decades(chin, new, "growth")
    up = calmod.scale_decades(chin, new, "ratio_above")
    down = calmod.scale_decades(chin, new, "ratio_below")
    big = np.log10(1e11 * 2e12 / (1e10 * 8e11))
    np.testing.assert_allclose(g, [0.0, 0.0, big, big + np.log10(32)], atol=1e-12)
    np.testing.assert_allclose(up, [np.log10(8), 0.0, 0.0, np.log10(8)], atol=1e-12)
    np.testing.assert_allclose(down, [0.0, np.log10(4), 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(calmod.scale_decades(chin, new, "ratio"), np.maximum(up, down))
    np.testing.assert_allclose(calmod.scale_decades(chin, new),
                               np.maximum(g, np.maximum(up, down)))
    parts = calmod.drift_parts(chin, new)
    assert [id(c) for c, _ in parts] == [id(cal), id(above), id(below)]
    var = sum(c.variance(d) for c, d in parts)
    np.testing.assert_allclose(var, grow.variance(g) + above.variance(up) + below.variance(down))
    assert var[0] == pytest.approx(above.variance(up)[0]) and var[0] > 0
    assert var[1] == pytest.approx(below.variance(down)[1]) and var[1] > var[0]  # wider side
    assert var[2] == pytest.approx(grow.variance(g)[2])
    # without drifts of its own along the ratio: one drift at the largest distance
    one = calmod.drift_parts(chin, new, cal=grow)
    assert len(one) == 1 and np.allclose(one[0][1], calmod.scale_decades(chin, new))
    # the drift's draws: the over-trained row moves by the drift above the ratios alone
    draws = calmod.add_drift(chin, new, np.ones((4000, 4)), np.random.default_rng(0))
    sd = np.log(draws).std(axis=0)
    np.testing.assert_allclose(sd[:3], np.sqrt(var[:3]), rtol=0.15)
    # the ratio order holds out the most over- and under-trained rows first
    frame = pd.DataFrame({"N": [1e8] * 5, "D": [1e9, 3e9, 5e9, 2e10, 1e11]})
    pos = calmod.inner_position(chin, frame, "ratio")
    assert pos[2] == pos.min() and pos[0] == pos[4] == pos.max() and pos[0] > pos[1]
    # saved, summarised, shown and reported
    back = Calibration.from_dict(cal.to_dict())
    half = np.array([0.5])
    np.testing.assert_allclose(back.ratio["below"].variance(half), below.variance(half))
    assert back.summary()["ratio"]["above"]["tau_median"] == pytest.approx(above.quantiles()[1])
    assert "below the fitted input ratios" in repr(back)
    table = _calibration_table(back)[0]["value"]
    assert table["ratio_below_tau_median"] == pytest.approx(below.quantiles()[1])
    assert "input ratios" in table["drift"]
    with pytest.raises(bs.BayescaleError, match="part must be"):
        calmod.scale_decades(chin, new, "compute")


def test_inner_position_orders_rows_by_scale_or_by_any_input():
    """``cut_by="inputs"`` holds out a large model trained on few tokens, which ``"scale"``
    (compute) keeps in the inner fit; for a law of one input both orders agree."""
    from types import SimpleNamespace

    from bayescale.calibration import inner_position

    chin = SimpleNamespace(law=bs.get_law("chinchilla"))
    frame = pd.DataFrame({"N": [1e7, 1e8, 1e9, 1e10, 1e7], "D": [1e9, 1e10, 1e11, 1e7, 1e12]})
    by_scale = inner_position(chin, frame, "scale")
    np.testing.assert_allclose(by_scale, np.log10(6 * frame.N * frame.D))
    by_inputs = inner_position(chin, frame, "inputs")
    # row 3 (the largest N, little compute) ranks first by N; row 4 (most tokens) by D
    assert by_inputs[3] == by_inputs[4] == 1.0
    assert by_scale[3] < np.median(by_scale)
    assert np.all((by_inputs > 0) & (by_inputs <= 1))
    one = SimpleNamespace(law=bs.get_law("power_law"))
    x = pd.DataFrame({"x": [3.0, 1.0, 20.0, 7.0]})
    assert (np.argsort(inner_position(one, x, "inputs"))
            == np.argsort(inner_position(one, x, "scale"))).all()
    with pytest.raises(bs.BayescaleError, match="cut_by must be one of"):
        inner_position(chin, frame, "compute")
    cal = Calibration(tau=TAU_GRID, weights=posterior_tau([]), prior_scale=0.005,
                      cut_by="inputs")
    back = Calibration.from_dict(cal.to_dict())
    assert back.cut_by == "inputs" and back.summary()["inner_cut_by"] == "inputs"
    assert Calibration.from_dict({**cal.to_dict(), "cut_by": "scale"}).cut_by == "scale"


def test_inner_coverage_from_pits():
    cal = Calibration(tau=TAU_GRID, weights=posterior_tau([]), prior_scale=0.005,
                      residuals=pd.DataFrame({"pit": [0.5, 0.3, 0.9, 0.99, 0.02]}))
    # central levels |2 PIT - 1|: 0, 0.4, 0.8, 0.98, 0.96
    assert cal.inner_coverage(0.5) == pytest.approx(2 / 5)
    assert cal.inner_coverage(0.9) == pytest.approx(3 / 5)
    with pytest.raises(bs.BayescaleError, match="between 0 and 1"):
        cal.inner_coverage(90)
    assert np.isnan(Calibration(tau=TAU_GRID, weights=posterior_tau([]),
                                prior_scale=0.005).inner_coverage(0.9))
    np.testing.assert_allclose(pit(np.arange(10.0)[:, None], np.array([-1.0, 4.0, 4.5, 20.0])),
                               [0.0, 0.45, 0.5, 1.0])


def _calibration(rate, rng, m=10, noise=0.002, informative=True):
    """A Calibration learned from synthetic inner forecasts with drift ``rate``/decade."""
    rows, groups = [], []
    for q in (0.5, 0.65, 0.8):
        d = np.linspace(0.05, 1.0, m) if informative else np.zeros(m)
        r = rate * d * rng.standard_normal() + noise * rng.standard_normal(m)
        groups.append((r, np.full(m, noise**2), d))
        rows.append(pd.DataFrame({"cutoff_quantile": q, "decades": d, "residual": r,
                                  "predictive_sd": noise}))
    w = posterior_tau(groups, h_grid=H_GRID)
    return Calibration(tau=TAU_GRID, weights=w, prior_scale=0.005,
                       residuals=pd.concat(rows, ignore_index=True),
                       cutoffs=(0.5, 0.65, 0.8), h=np.asarray(H_GRID))


def test_tau_quantiles_are_those_of_the_draws_forecasts_use():
    """``quantiles`` read the cumulative weights at the grid points, while ``sample``
    spreads each point's weight over its cell: the reported 5% of tau was half a grid step
    low (0.00027 against the draws' 0.00030)."""
    cal = _calibration(0.04, np.random.default_rng(2))
    tau, _ = cal.sample(400_000, np.random.default_rng(0))
    q = (0.05, 0.5, 0.95)
    step = cal.tau[1] - cal.tau[0]
    np.testing.assert_allclose(cal.quantiles(q), np.quantile(tau, q), rtol=3e-3)  # MC error
    point = replace(cal, weights=np.eye(1, len(cal.tau), 40))  # all weight on one point
    np.testing.assert_allclose(point.quantiles((0.0, 0.5, 1.0)),
                               cal.tau[40] + np.array([-0.5, 0.0, 0.5]) * step)


def test_calibration_repr_states_rate_growth_and_evidence():
    from dataclasses import replace

    cal = _calibration(0.04, np.random.default_rng(2))
    q = cal.quantiles()
    text = repr(cal)
    assert text.startswith("<bayescale.Calibration log-scale drift") and "\n" not in text
    assert f"tau = {q[1]:.2g} [{q[0]:.2g}, {q[2]:.2g}] per decade" in text
    assert f"d^{float(np.sum(cal.h_weights * cal.h)):.2g}" in text
    assert "30 inner forecasts at cutoffs (0.5, 0.65, 0.8) by 'scale'" in text
    assert "problem" not in text and "tau=array" not in text and "nan" not in text
    pits = cal.residuals.assign(pit=np.linspace(0.01, 0.99, 30))
    assert "their 50%/90% coverage 0.47/0.87)" in repr(replace(cal, residuals=pits))  # 14, 26 of 30
    odd = replace(cal, problems=("inner fit at cutoff q=0.5: 3 divergences",), scale="logit",
                  by="task", population={"series": 7, "tau_population_median": 0.1})
    text = repr(odd)
    assert "logit-scale drift" in text and "per unit of distance" in text
    assert "1 problem(s)" in text and "pooled over 7 series" in text and "'task'" in text
    empty = Calibration(tau=TAU_GRID, weights=posterior_tau([]), prior_scale=0.005)
    assert "from its prior alone" in repr(empty)


def test_pooled_calibration_borrows_the_population_rate(tmp_path, monkeypatch):
    """Series with uninformative inner forecasts take the population's rate; informed ones
    keep their own; pooled fits save and load."""
    from bayescale.calibration_pooling import pool_posteriors

    rng = np.random.default_rng(5)
    x = np.geomspace(1e7, 1e9, 25)
    df = pd.DataFrame({"N": x, "loss": power_law(x, E=1.7, A=30.0, alpha=0.3)
                       * np.exp(0.01 * rng.standard_normal(25))})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        base = bs.fit(df, "power_law", x={"x": "N"}, random_seed=1, **FAST)
    cals = [_calibration(0.04, rng) for _ in range(12)]
    cals.append(_calibration(0.0, rng, informative=False))  # inner forecasts at d = 0
    fits = {f"s{i}": base.with_calibration(c) for i, c in enumerate(cals)}
    pooled = bs.pool_calibration(fits)
    def med(f):
        return float(f.calibration.quantiles([0.5])[0])

    own_last, pooled_last = med(fits["s12"]), med(pooled["s12"])
    assert own_last < 0.007  # the HalfCauchy(0.005) prior alone
    assert 0.015 < pooled_last < 0.09, pooled_last  # the population's rate (about 0.04)
    # an informed series barely moves
    for k in ("s0", "s5"):
        a, b = med(fits[k]), med(pooled[k])
        assert abs(np.log(b / a)) < 0.35, (a, b)
    summ = pooled["s12"].calibration.summary()
    assert "pooled over 13 series" in summ["prior"]
    new = pd.DataFrame({"N": [1e10]})
    w_own = fits["s12"].predict(new, prob=0.9, random_seed=0)
    w_pool = pooled["s12"].predict(new, prob=0.9, random_seed=0)
    assert float(w_pool["upper"].iloc[0] - w_pool["lower"].iloc[0]) > 1.3 * float(
        w_own["upper"].iloc[0] - w_own["lower"].iloc[0])
    path = tmp_path / "pooled.nc"
    pooled["s12"].save(path)
    back = bs.load_fit(path)
    assert back.calibration.population == pooled["s12"].calibration.population
    np.testing.assert_allclose(back.calibration.weights, pooled["s12"].calibration.weights)
    # pooling again gives the same answer (the likelihood is recomputed, not re-divided)
    again = bs.pool_calibration(pooled)
    assert med(again["s12"]) == pytest.approx(pooled_last, rel=0.05)
    with pytest.raises(bs.BayescaleError, match="at least 2"):
        pool_posteriors([np.zeros((4, len(TAU_GRID)))])
    # the drifts along the input ratios (D/N) are pooled too, each side on its own
    sided = {k: f.with_calibration(replace(f.calibration, ratio={
        "above": _calibration(0.04, rng),
        "below": _calibration(0.0, rng, informative=False) if k == "s12"
        else _calibration(0.08, rng)})) for k, f in fits.items()}
    both = bs.pool_calibration(sided)
    below = [float(f.calibration.ratio["below"].quantiles([0.5])[0]) for f in (sided["s12"],
                                                                                both["s12"])]
    assert below[0] < 0.007 and 0.03 < below[1] < 0.18, below  # the other sides' rate
    above = [float(f.calibration.ratio["above"].quantiles([0.5])[0]) for f in (sided["s0"],
                                                                                both["s0"])]
    assert abs(np.log(above[1] / above[0])) < 0.35, above  # informed: its own
    assert "pooled over 13 series" in both["s12"].calibration.summary()["ratio"]["below"]["prior"]
    assert med(both["s12"]) == pytest.approx(pooled_last, rel=1e-9)  # the main drift as before
    # fits whose drifts along D/N are pending (ratio="auto", the default) learn them to be
    # pooled: learned at a later forecast, they kept their own HalfCauchy prior (a 90%
    # interval 23% narrower than after calibrate(ratio=True) and pooling)
    import bayescale.calibration as calibration_module

    pending = {k: f.with_calibration(replace(f.calibration, ratio=None,
                                             ratio_pending={"draws": 100}))
               for k, f in sided.items()}
    sides_of = {id(pending[k]): sided[k].calibration.ratio for k in sided}
    monkeypatch.setattr(calibration_module, "learn_ratio", lambda f, c: replace(
        c, ratio=sides_of[id(f)], ratio_pending=None))
    late = bs.pool_calibration(pending)
    for k in ("s0", "s12"):
        assert late[k].calibration.ratio_pending is None
        for side in ("above", "below"):
            np.testing.assert_allclose(late[k].calibration.ratio[side].weights,
                                       both[k].calibration.ratio[side].weights)
    # a fit calibrated per level (by=) is refused: its forecasts would not see the pooling
    per_level = dict(fits, s0=base.with_calibration(replace(cals[0], by="task")))
    with pytest.raises(bs.BayescaleError, match="by='task'"):
        bs.pool_calibration(per_level)
    for few in ([], {}, [fits["s0"]]):
        with pytest.raises(bs.BayescaleError, match="at least 2 fits"):
            bs.pool_calibration(few)


def test_pooling_on_the_logit_scale_reaches_the_whole_grid():
    """Accuracy drifts live on a logit grid to 3 logits; the pooled population must reach it
    (its grid stopped at 2.4 logits: six series agreeing on 2.5-2.8 were pulled below 2.4)."""
    from bayescale.calibration import TAU_GRIDS
    from bayescale.calibration_pooling import _pool

    rng = np.random.default_rng(0)
    grid = TAU_GRIDS["logit"]

    def logit_cal():
        groups = []
        for _ in range(3):
            d = np.linspace(0.05, 1.0, 40)
            r = 2.8 * d * rng.standard_normal(40) + 0.02 * rng.standard_normal(40)
            groups.append((r, np.full(40, 0.02**2), d))
        w = posterior_tau(groups, prior_scale=0.02, grid=grid, h_grid=H_GRID)
        return Calibration(tau=grid, weights=w, prior_scale=0.02, h=np.asarray(H_GRID),
                           scale="logit")

    cals = [logit_cal() for _ in range(6)]
    for own, pooled in zip(cals, _pool(cals, True, len(cals))):
        a, b = float(own.quantiles([0.5])[0]), float(pooled.quantiles([0.5])[0])
        assert abs(np.log(b / a)) < 0.1, (a, b)  # agreeing series keep their rate
        if a > 2.5:
            assert pooled.tau_weights[grid > 2.4].sum() > 0.3
    # the population itself, and a series without evidence that takes its rate: the grid of
    # the population's median stopped at 2 logits (0.5 in the loss units pooled), so twelve
    # series at 2.4-2.7 logits gave a population median of 1.98 and the 13th 1.9
    uninformed = Calibration(tau=grid, weights=posterior_tau(
        [(0.02 * rng.standard_normal(40), np.full(40, 4e-4), np.zeros(40))] * 3,
        prior_scale=0.02, grid=grid, h_grid=H_GRID), prior_scale=0.02, h=np.asarray(H_GRID),
        scale="logit")
    from bayescale.calibration_pooling import m_grid_for

    with pytest.raises(bs.BayescaleError, match="grid of tau must reach above 0"):
        m_grid_for(np.zeros(3))
    cals = [logit_cal() for _ in range(12)] + [uninformed]
    own = np.median([float(c.quantiles([0.5])[0]) for c in cals[:-1]])
    pooled = _pool(cals, True, len(cals))
    assert pooled[-1].population["tau_population_median"] > 0.9 * own, own
    assert float(pooled[-1].quantiles([0.5])[0]) > 0.85 * own, own


def test_levels_weigh_their_inner_forecasts_as_the_one_drift_calibration_does(monkeypatch):
    """calibrate(by=): each level's log-likelihood is its share of the one drift's (each
    cutoff divided by the number of cutoffs of the whole). A level held out at one cutoff
    only was divided by 1, not 3: three times the weight, a tau posterior too narrow."""
    from bayescale import calibration as C
    from bayescale import calibration_pooling

    rng = np.random.default_rng(0)
    parts = []
    for q, n_a, n_b in [(0.5, 6, 4), (0.65, 4, 0), (0.8, 2, 0)]:
        parts.append(pd.DataFrame({"cutoff_quantile": q, "decades": np.linspace(0.2, 1, n_a),
                                   "residual": 0.01 * rng.standard_normal(n_a),
                                   "predictive_sd": 0.01, "level": "a"}))
        if n_b:  # level b's rows are held out at the first cutoff only
            parts.append(pd.DataFrame({"cutoff_quantile": q, "decades": np.linspace(0.3, 0.9, 4),
                                       "residual": [0.03, -0.04, 0.05, -0.035],
                                       "predictive_sd": 0.01, "level": "b"}))
    res = pd.concat(parts, ignore_index=True)
    cal = Calibration(tau=TAU_GRID, weights=posterior_tau(C._groups(res), 0.005, h_grid=H_GRID),
                      h=np.asarray(H_GRID), prior_scale=0.005, residuals=res, by="family")
    seen = {}
    real = calibration_pooling.pool_on_scale

    def spy(lls, *args, **kwargs):
        seen["lls"] = lls
        return real(lls, *args, **kwargs)

    monkeypatch.setattr(calibration_pooling, "pool_on_scale", spy)
    assert set(cal.levels) == {"a", "b", None}
    whole = C.log_likelihood(C._groups(res), TAU_GRID, H_GRID)
    a, b, new = seen["lls"]
    np.testing.assert_allclose(a + b, whole, rtol=1e-12, atol=1e-9)
    assert not new.any()


def test_a_grid_edge_on_either_side_of_the_ratios_reaches_the_problems(monkeypatch):
    """learn_ratio kept the problems of the side above the fitted D/N only: a drift below
    them cut off by its grid (underestimated) reached neither the problems nor the report."""
    from types import SimpleNamespace

    from bayescale import calibration as C
    from bayescale.report import _calibration_table

    def cal_from(rate):
        d = np.linspace(0.2, 1.0, 8)
        res = pd.DataFrame({"cutoff_quantile": 0.5, "decades": d, "residual": rate * d,
                            "predictive_sd": 0.003})
        w = posterior_tau(C._groups(res), 0.005, h_grid=H_GRID)
        edge = C.grid_edge_problem(w, TAU_GRID, "log")
        return Calibration(tau=TAU_GRID, weights=w, h=np.asarray(H_GRID), prior_scale=0.005,
                           residuals=res, problems=() if edge is None else (edge, "shared"))

    ok, edge = cal_from(0.01), cal_from(3.0)
    assert not ok.problems and "end of its grid" in edge.problems[0]
    ok = replace(ok, problems=("shared",))  # an inner fit's problem: in both sides
    fit = SimpleNamespace(law=bs.get_law("chinchilla"))
    for above, below, side in ((ok, edge, "below"), (edge, ok, "above")):
        monkeypatch.setattr(C, "_calibrate_order", lambda *a, t=(above, below), **k: dict(
            zip(C.RATIO_PARTS, t)))
        got = C.learn_ratio(fit, replace(cal_from(0.01), ratio_pending={})).problems
        assert len(got) == 2 and "drift along the fitted input ratios: shared" in got, got
        assert any(p.startswith(f"drift {side} the fitted input ratios: the drift's rate "
                                "reaches the end of its grid") for p in got), got
        notes = _calibration_table(replace(cal_from(0.01), problems=got))[1]
        assert any("end of its grid" in n for n in notes), notes


def test_decomposition_stays_finite_under_heavy_tailed_noise():
    # Cauchy-like scatter (as on IsoFLOP grids, where nu is fitted below 1): the sample
    # variance of Student-t noise draws has no limit, the robust one does
    rng = np.random.default_rng(7)
    x = np.exp(rng.uniform(np.log(1e7), np.log(1e10), 80))
    y = power_law(x, E=1.7, A=30.0, alpha=0.3) * np.exp(0.01 * rng.standard_t(0.7, 80))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        f = bs.fit(pd.DataFrame({"N": x, "loss": y}), "power_law", x={"x": "N"},
                   likelihood="studentt", random_seed=3, **FAST)
    nu = float(f.posterior["nu"].median())
    assert nu < 2.0  # the noise has no variance
    notes = " ".join(bs.report(f).notes)
    assert ("Cauchy-like" in notes) == (nu < 1.0), (nu, notes)
    new = pd.DataFrame({"N": [3e10, 1e11]}, index=[10, 11])
    dec = f.decompose(new)
    # the table names the rows as the user passed them (N, index), as predict's does,
    # not by the law's input name x
    assert "x" not in dec.columns and list(dec.index) == [10, 11]
    np.testing.assert_array_equal(dec["N"], new["N"])
    pred = f.predict(new)
    assert list(pred.columns[:1]) == ["N"] and list(pred.index) == [10, 11]
    assert "x" not in f.predict().columns and "loss" not in f.predict().columns
    np.testing.assert_array_equal(f.predict()["N"], x)
    sigma = float(f.posterior["sigma"].median())
    # the noise term is of the order of sigma^2, not inflated by extreme draws
    assert (dec["noise"] < 25 * sigma**2).all(), (dec["noise"].tolist(), sigma)
    np.testing.assert_allclose(
        dec[["parameter_share", "noise_share", "extrapolation_share"]].sum(axis=1), 1.0
    )
    # how far out each row is (decades beyond the largest fitted N), beside its shares
    np.testing.assert_allclose(dec["distance"], np.log10(new["N"].to_numpy() / x.max()))


def test_worst_order_keeps_the_wider_calibration(monkeypatch):
    """``cut_by="worst"`` (the default) calibrates with each order of the rows and keeps the
    one that learned the larger discrepancy; a law of one input has one order."""
    from types import SimpleNamespace

    import bayescale.calibration as calmod

    rates = {"scale": 0.01, "inputs": 0.04, "ratio": 0.02}
    calls = []

    def fake(fit, order, *, distances, **kw):
        calls.append(order)
        c = _calibration(rates[order], np.random.default_rng(11))
        return {d: Calibration(tau=c.tau, weights=c.weights, prior_scale=c.prior_scale,
                               residuals=c.residuals, cutoffs=c.cutoffs, h=c.h, cut_by=order)
                for d in distances}

    monkeypatch.setattr(calmod, "_calibrate_order", fake)
    assert calmod.CUT_BY_DEFAULT == "worst"
    chin = SimpleNamespace(law=bs.get_law("chinchilla"))
    cal = calmod.calibrate(chin)
    # the growth orders, compared; the drifts along D/N wait for a forecast that needs them
    assert calls == ["scale", "inputs"] and cal.cut_by == "inputs"
    assert cal.ratio is None and cal.ratio_pending["cutoffs"] == list(calmod.CUTOFFS)
    chin.data = pd.DataFrame({"N": [1e8, 1e9, 1e10], "D": [2e9, 2e10, 2e11]})  # 20 / param
    chin.calibration = cal
    inside = pd.DataFrame({"N": [1e11], "D": [2e12]})  # larger, at 20 tokens per parameter
    assert [c for c, _ in calmod.drift_parts(chin, inside)][0] is cal
    assert calls == ["scale", "inputs"] and chin.calibration is cal  # nothing learned
    over = pd.DataFrame({"N": [1e8], "D": [1e11]})  # over-trained: 1000 tokens per parameter
    parts = calmod.drift_parts(chin, over)
    assert calls == ["scale", "inputs", "ratio"] and len(parts) == 3
    learned = chin.calibration  # learned once, kept on the fit (and saved with it)
    assert set(learned.ratio) == {"above", "below"} and learned.ratio_pending is None
    assert all(c.cut_by == "ratio" for c in learned.ratio.values())
    assert learned.cut_by == "inputs" and learned.compared == cal.compared
    calmod.drift_parts(chin, over)
    assert calls == ["scale", "inputs", "ratio"]  # not again
    back = Calibration.from_dict(cal.to_dict())
    assert back.ratio_pending == cal.ratio_pending and "when a forecast first" in repr(back)
    # the report says it in words (it showed an internal flag, "ratio_pending | True")
    from bayescale.report import _calibration_table

    table = _calibration_table(cal)[0]
    assert "ratio_pending" not in table.index.astype(str).tolist() + table.iloc[:, 0].astype(
        str).tolist()
    assert "learned at the first forecast beyond the fitted input ratios (D/N)" in \
        table.to_string()
    assert "ratio_drifts" not in _calibration_table(learned)[0].to_string()
    assert calmod.calibrate(chin, ratio=True).ratio is not None  # learned now
    calls.clear()
    assert set(cal.compared) == {"scale", "inputs"}
    assert cal.compared["inputs"] > cal.compared["scale"]
    assert cal.compared["inputs"] == pytest.approx(np.sqrt(cal.mean_sq()))
    rates.update(scale=0.05)
    assert calmod.calibrate(chin).cut_by == "scale"
    # an order with no inner forecast (prior only, wide) is not taken for the worse one
    real = fake

    def prior_only_inputs(fit, order, *, distances, **kw):
        c = real(fit, order, distances=distances, **kw)
        if order == "inputs":
            return {d: Calibration(tau=TAU_GRID, weights=posterior_tau([], h_grid=H_GRID),
                                   prior_scale=0.005, h=np.asarray(H_GRID), cut_by=order)
                    for d in distances}
        return c

    monkeypatch.setattr(calmod, "_calibrate_order", prior_only_inputs)
    rates.update(scale=0.01)
    mixed = calmod.calibrate(chin)
    assert mixed.compared["inputs"] > mixed.compared["scale"] and mixed.cut_by == "scale"
    monkeypatch.setattr(calmod, "_calibrate_order", fake)
    # saved and summarised
    back = Calibration.from_dict(cal.to_dict())
    assert back.compared == cal.compared
    assert back.summary()["inner_cut_by_compared"] == cal.compared
    # one input: the orders agree, so only the scale order is fitted
    calls.clear()
    one = calmod.calibrate(SimpleNamespace(law=bs.get_law("power_law")))
    assert calls == ["scale"] and one.cut_by == "scale" and list(one.compared) == ["scale"]
    assert one.ratio is None  # no pair of size inputs
    # a single order is what it says
    calls.clear()
    assert calmod.calibrate(chin, cut_by="scale").compared is None
    assert calls == ["scale"]
    calls.clear()
    off = calmod.calibrate(chin, cut_by="scale", ratio=False)
    assert off.ratio is None and off.ratio_pending is None and calls == ["scale"]
    with pytest.raises(bs.BayescaleError, match="ratio must be"):
        calmod.calibrate(chin, ratio="yes")
    with pytest.raises(bs.BayescaleError, match="cut_by must be one of"):
        calmod.calibrate(chin, cut_by="both")
    for bad in ([1.5], [], [0.5, 0.0], ("a",), {0.5, 0.8}):  # not numbers: the same message
        with pytest.raises(bs.BayescaleError, match="each strictly between 0 and 1"):
            calmod.calibrate(chin, cutoffs=bad)
    # bad settings fail before any inner fit (h = 0 put a drift inside the data, 0**0 = 1;
    # h < 0 an infinite one; prior_scale=0 NaN weights; draws=0 was the default)
    for kw, match in [
        (dict(h_grid=(0.0,)), "h_grid holds"), (dict(h_grid=(-0.5, 1.0)), "h_grid holds"),
        (dict(h_grid=()), "h_grid holds"), (dict(h_grid=0.5), "h_grid holds"),
        (dict(h_grid=("a",)), "h_grid holds"),
        (dict(prior_scale=0.0), "positive number"), (dict(prior_scale=-0.01), "positive"),
        (dict(prior_scale="0.01"), "positive number"),
        (dict(draws=0), "draws must be a positive integer"),
        (dict(min_rows=0), "min_rows must be a positive integer"),
        (dict(draws=100.0), "draws must be a positive integer"),
        (dict(random_seed=-1), "random_seed must be None or a non-negative integer"),
        (dict(random_seed=1.7), "random_seed must be None or a non-negative integer"),
    ]:
        with pytest.raises(bs.BayescaleError, match=match):
            calmod.calibrate(chin, **kw)
    calls.clear()
    calmod.calibrate(chin, cut_by="scale", h_grid=[0.5, 1.0], prior_scale=0.01, draws=50)
    assert calls == ["scale"]  # good values pass


def test_an_inner_fit_the_data_cannot_identify_is_skipped_and_said(monkeypatch):
    """A cutoff whose smaller rows cannot be fitted (e.g. they all share one D) is
    skipped with a problem naming it; the other cutoffs still calibrate."""
    from types import SimpleNamespace

    import bayescale.calibration as calmod

    x = np.geomspace(1e7, 1e10, 24)
    fit = SimpleNamespace(law=bs.get_law("power_law"),
                          data=pd.DataFrame({"x": x, "y": 2.0 + 30 * x**-0.2}),
                          spec=SimpleNamespace(free_parameter_count=lambda: 4), settings={})
    rng = np.random.default_rng(3)

    def inner(fit, train, *, draws, seed, label, parts):
        if label == "q=0.65":
            raise bs.DataError("Column 'D' (input 'D' ...) has the same value in every row")
        n = int((~train).sum())
        logd = rng.normal(0.0, 0.01, (200, n))
        return (np.zeros(n), np.full(n, 1e-4), {p: np.linspace(0.1, 1.0, n) for p in parts},
                logd, np.zeros(n), None)

    monkeypatch.setattr(calmod, "_inner_forecast", inner)
    cal = calmod.calibrate(fit, cut_by="scale")
    assert cal.cutoffs == (0.5, 0.8)
    assert any("cutoff q=0.65 skipped: Column 'D'" in p for p in cal.problems), cal.problems


@pytest.mark.slow
def test_worst_is_the_wider_single_order_calibration_on_real_fits():
    """On a two-input law the default equals whichever single-order calibration learned
    the larger discrepancy (same inner fits, same seeds)."""
    from bayescale.calibration import calibrate

    df = bs.datasets.load("synthetic_chinchilla")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        f = bs.fit(df, "chinchilla", random_seed=2, draws=300, tune=300, chains=2,
                   progressbar=False)
        worst = f.calibration
        single = {o: calibrate(f, cut_by=o) for o in ("scale", "inputs")}
    rms = {o: float(np.sqrt(c.mean_sq())) for o, c in single.items()}
    assert worst.compared == pytest.approx(rms)
    kept = max(rms, key=rms.get)
    assert worst.cut_by == kept
    np.testing.assert_allclose(worst.weights, single[kept].weights)
    # the two orders hold out different rows (else the comparison would be moot)
    assert not single["scale"].residuals["residual"].equals(single["inputs"].residuals["residual"])


def test_a_law_whose_size_may_be_negative_has_no_drift_and_says_so():
    """Distances beyond the data are decades of the size; an input that may be zero or
    negative has none. Forecasts were NaN inside the data (log10 of a negative size) and
    the calibration came from its prior alone with a misleading 'not enough rows'."""
    from conftest import fixed_fit

    @bs.law(priors={"E": bs.Prior("HalfNormal", sigma=3.0), "A": bs.Prior("HalfNormal", sigma=3.0),
                    "k": bs.Prior("HalfNormal", sigma=2.0)}, positive_inputs=False,
            register=False)
    def exp_decay(t, *, E, A, k):
        return E + A * np.exp(-k * t)

    t = np.linspace(-2.0, 2.0, 30)
    df = pd.DataFrame({"t": t, "loss": 1.7 + 0.8 * np.exp(-0.7 * t)})
    fit = fixed_fit(df, exp_decay, {"E": 1.7, "A": 0.8, "k": 0.7, "sigma": 0.01, "nu": 10.0},
                    jitter=0.01)
    new = pd.DataFrame({"t": [-1.0, 3.0]})  # inside the data, beyond it
    out = fit.predict(new)  # "auto": no drift for such a law, no NaN
    assert np.isfinite(out[["median", "lower", "upper"]].to_numpy()).all()
    pd.testing.assert_frame_equal(out, fit.predict(new, extrapolation=False))
    for call in (lambda: fit.predict(new, extrapolation=True), lambda: fit.calibrate()):
        with pytest.raises(bs.BayescaleError, match="zero or negative values of its size"):
            call()


def test_a_drift_cut_off_by_the_end_of_its_grid_is_said():
    """The tau grid ends (0.6 per decade on the log scale); inner errors that need more
    gave a posterior piled at the end, renormalised, with nothing said."""
    from bayescale.calibration import TAU_GRIDS, grid_edge_problem

    d = np.linspace(0.1, 1.0, 8)
    rng = np.random.default_rng(0)
    huge = [(1.5 * d * rng.standard_normal(8), np.full(8, 1e-6), d) for _ in range(4)]
    small = [(0.02 * d * rng.standard_normal(8), np.full(8, 1e-6), d) for _ in range(4)]
    grid = TAU_GRIDS["log"]
    note = grid_edge_problem(posterior_tau(huge, grid=grid, h_grid=H_GRID), grid, "log")
    assert note is not None and "end of its grid" in note and "tau = 0.6" in note
    assert grid_edge_problem(posterior_tau(small, grid=grid, h_grid=H_GRID), grid, "log") is None


def test_the_prior_alone_gives_the_truncated_half_cauchys_quantiles_and_no_mass_at_zero():
    """The grid point tau = 0 counted as a whole cell, half of it clipped to exactly 0: a
    point mass of 0.3% there, and the 5% quantile of the prior 6% low (0.000368 against
    0.000391)."""
    from bayescale.calibration import TAU_GRID, Calibration, posterior_tau

    cal = Calibration(tau=TAU_GRID, weights=posterior_tau([]), prior_scale=0.005)
    q = np.array([0.05, 0.5, 0.95])
    top = np.arctan(TAU_GRID[-1] / 0.005)
    exact = 0.005 * np.tan(q * top)  # HalfCauchy(0.005) cut at the grid's end
    np.testing.assert_allclose(cal.quantiles(q), exact, rtol=2e-3)
    tau, _ = cal.sample(20000, np.random.default_rng(0))
    assert (tau > 0).all()
    np.testing.assert_allclose(np.quantile(tau, q), exact, rtol=0.05)


def test_pool_calibration_names_what_it_was_given_instead_of_fits():
    """A list of calibrations raised AttributeError ('Calibration' object has no attribute
    'law'), one fit TypeError (no len()), a DataFrame KeyError, leave_one_out="no" was True."""
    from conftest import fixed_fit

    from bayescale.calibration import TAU_GRID, Calibration, posterior_tau

    df = pd.DataFrame({"x": np.geomspace(1e3, 1e6, 10), "loss": np.linspace(3, 2, 10)})
    f = fixed_fit(df, "power_law", dict(E=1.0, A=10.0, alpha=0.2, sigma=0.01, nu=5.0))
    cal = Calibration(tau=TAU_GRID, weights=posterior_tau([]), prior_scale=0.005)
    for bad, what in (([cal, cal], r"item 0 is a Calibration \(pass the fits themselves"),
                      (["a", "b"], "item 0 is a str"),
                      (f, "a dict .* or a list of fits .* got a Fit"),
                      (df, "got a DataFrame"),
                      ((x for x in [f, f]), "got a generator")):
        with pytest.raises(bs.BayescaleError, match=what):
            bs.pool_calibration(bad)
    with pytest.raises(bs.BayescaleError, match="leave_one_out must be True or False"):
        bs.pool_calibration([f, f], leave_one_out="no")
