"""The 'ar1' likelihood: autocorrelated residuals along runs and learning curves."""

from __future__ import annotations

import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from conftest import FAST, few_divergences, fixed_fit

import bayescale as bs
from bayescale import autocorr
from bayescale.laws import power_law

TRUE = dict(E=0.3, A=40.0, alpha=0.25)


def _curve(seed=0, n=60, sigma=0.03, ell=0.5):
    rng = np.random.default_rng(seed)
    x = np.logspace(6, 8, n)
    e = autocorr.ou_residuals(np.log10(x), sigma, ell, rng)
    return pd.DataFrame({"x": x, "loss": power_law(x, **TRUE) * np.exp(e)})


def _spec(run=None):
    return SimpleNamespace(law=bs.get_law("power_law"), run=run)


def test_links_follow_each_run_in_scale_order():
    frame = pd.DataFrame({"x": [4.0, 1.0, 10.0, 2.0, 100.0], "run": list("aabba")})
    prev, dt = autocorr.links(_spec("run"), frame)
    # run a: rows 1 (x=1) -> 0 (x=4) -> 4 (x=100); run b: 3 (x=2) -> 2 (x=10)
    assert prev.tolist() == [1, -1, 3, -1, 0]
    np.testing.assert_allclose(dt, [np.log10(4), 0, np.log10(5), 0, np.log10(25)])
    prev1, _ = autocorr.links(_spec(), frame)  # no run column: one sequence
    assert sorted(prev1.tolist()) == [-1, 0, 1, 2, 3]


def test_tied_scales_in_one_sequence_are_a_clear_error():
    frame = pd.DataFrame({"x": [1.0, 2.0, 2.0], "run": ["a", "a", "a"]}, index=[10, 11, 12])
    with pytest.raises(bs.DataError, match=r"Rows 11 and 12 of run 'a' have the same scale"):
        autocorr.links(_spec("run"), frame)
    frame["run"] = ["a", "a", "b"]  # different runs: fine
    autocorr.links(_spec("run"), frame)
    # two curves concatenated without ignore_index: "Rows 0 and 0 have the same scale"
    two = pd.concat([pd.DataFrame({"x": [1.0, 2.0]})] * 2)
    with pytest.raises(bs.DataError, match=r"The rows at positions 0 and 2 \(both labelled 0\) "
                                           r"have the same scale.*pass run=<column>"):
        autocorr.links(_spec(), two)


def test_forecast_continues_from_the_last_residual_and_relaxes():
    rng = np.random.default_rng(0)
    s = 4000
    train = pd.DataFrame({"x": [1e7, 1e8]})
    new = pd.DataFrame({"x": [10**8.01, 1e12]})
    noise = {
        "sigma": np.full((s, 1), 0.1),
        "nu": np.full((s, 1), 1e6),
        "corr_length": np.full((s, 1), 0.5),
    }
    resid = np.tile([[-0.2, 0.3]], (s, 1))
    data = {"frame": new, "train": train, "spec": _spec(), "train_resid": lambda: resid}
    d = autocorr.draw(np.zeros((s, 2)), noise, rng, data)
    phi = np.exp(-0.01 / 0.5)
    assert d[:, 0].mean() == pytest.approx(0.3 * phi, abs=0.005)
    assert d[:, 0].std() == pytest.approx(0.1 * np.sqrt(1 - phi**2), rel=0.05)
    assert d[:, 1].mean() == pytest.approx(0.0, abs=0.01)  # 8 correlation lengths later
    assert d[:, 1].std() == pytest.approx(0.1, rel=0.05)
    # a replicate of a fitted row conditions on the row before it, not on itself
    d2 = autocorr.draw(np.zeros((s, 1)), noise, rng, dict(data, frame=train.iloc[[1]]))
    assert d2[:, 0].mean() == pytest.approx(-0.2 * np.exp(-1 / 0.5), abs=0.01)


@pytest.mark.slow
def test_ar1_recovers_the_process_and_widens_the_law_posterior():
    df = _curve()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        iid = bs.fit(df, "power_law", likelihood="studentt", random_seed=1, **FAST)
        ar = bs.fit(df, "power_law", likelihood="ar1", random_seed=1, **FAST)
    s_iid = iid.summary(prob=0.99)
    s_ar = ar.summary(prob=0.99)
    # 60 strongly correlated rows are worth far fewer independent ones
    assert s_ar.loc["alpha", "sd"] > 2.0 * s_iid.loc["alpha", "sd"]
    for p, v in TRUE.items():
        lo, hi = s_ar.loc[p, "hdi_0.5%"], s_ar.loc[p, "hdi_99.5%"]
        assert lo <= v <= hi, (p, lo, v, hi)
    lo, hi = s_ar.loc["corr_length", "hdi_0.5%"], s_ar.loc["corr_length", "hdi_99.5%"]
    assert lo <= 0.5 <= hi
    assert s_ar.loc["sigma", "hdi_0.5%"] <= 0.03 <= s_ar.loc["sigma", "hdi_99.5%"]
    # the i.i.d. fit's residuals show the autocorrelation, and its report says what to do
    r, pairs = autocorr.residual_autocorrelation(iid)
    assert r > 0.7 and pairs == len(df) - 1
    assert any("likelihood='ar1'" in n for n in bs.report(iid).notes)
    assert not any("likelihood='ar1'" in n for n in bs.report(ar).notes)
    # the numpy log-likelihood (LOO, LFO scores) equals PyMC's for the same draws
    import pymc as pm

    ll = ar.idata.log_likelihood["y_obs"].values
    ref = pm.compute_log_likelihood(
        ar.idata.copy(), model=ar.model, extend_inferencedata=False, progressbar=False
    )["y_obs"].values
    np.testing.assert_allclose(ll, ref, rtol=1e-6, atol=1e-8)


@pytest.mark.slow
def test_independent_residuals_show_no_autocorrelation():
    rng = np.random.default_rng(5)
    x = np.logspace(6, 8, 60)
    df = pd.DataFrame(
        {"x": x, "loss": power_law(x, **TRUE) * np.exp(0.02 * rng.standard_normal(60))}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        f = bs.fit(df, "power_law", random_seed=1, **FAST)
    r, _ = autocorr.residual_autocorrelation(f)
    assert abs(r) < 0.3
    assert not any("likelihood='ar1'" in n for n in bs.report(f).notes)


@pytest.mark.slow
def test_ar1_on_the_jax_path_matches_nutpie():
    df = _curve(seed=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        a = bs.fit(df, "power_law", likelihood="ar1", sampler="nutpie", random_seed=3, **FAST)
        b = bs.fit(df, "power_law", likelihood="ar1", sampler="jax", random_seed=3, **FAST)
    for p in ("alpha", "sigma"):
        ma, mb = (float(f.posterior[p].median()) for f in (a, b))
        sd = float(a.posterior[p].std())
        assert abs(ma - mb) < 0.35 * sd, (p, ma, mb, sd)


def test_sbc_rejects_ar1_clearly():
    design = pd.DataFrame({"x": np.logspace(6, 8, 10)})
    with pytest.raises(bs.BayescaleError, match="does not simulate the 'ar1' likelihood"):
        bs.sbc("power_law", design, n_sims=2, likelihood="ar1")
    with pytest.raises(bs.BayescaleError, match="sbc simulates from one likelihood"):
        bs.sbc("power_law", design, n_sims=2, likelihood="auto")


def _iid_curve(seed=5, n=60):
    rng = np.random.default_rng(seed)
    x = np.logspace(6, 8, n)
    loss = power_law(x, **TRUE) * np.exp(0.02 * rng.standard_normal(n))
    return pd.DataFrame({"x": x, "loss": loss})


@pytest.mark.slow
def test_auto_likelihood_refits_with_ar1_only_when_residuals_are_autocorrelated(tmp_path):
    # the wider corr_length prior docs/calibration.md suggests: "auto" once refused it
    # (the first, i.i.d. fit has no such parameter)
    wide = {"corr_length": bs.Prior("LogNormal", mu=float(np.log(0.1)), sigma=1.5)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        auto_ou = bs.fit(_curve(), "power_law", likelihood="auto", random_seed=1, priors=wide,
                         **FAST)
        ar = bs.fit(_curve(), "power_law", likelihood="ar1", random_seed=1, priors=wide,
                    **FAST)
        auto_iid = bs.fit(_iid_curve(), "power_law", likelihood="auto", random_seed=1,
                          priors=wide, **FAST)
        iid = bs.fit(_iid_curve(), "power_law", likelihood="studentt", random_seed=1, **FAST)
    assert auto_ou.spec.priors["corr_length"] == wide["corr_length"]
    assert "applies to likelihood='ar1' only: unused" in auto_iid.settings["likelihood_choice"]
    assert auto_ou.spec.likelihood == "ar1"
    assert "likelihood='ar1'" in repr(auto_ou)
    assert auto_ou.settings["likelihood_choice"].startswith("auto -> ar1: lag-1 residual")
    # the chosen fit is the explicit fit with the same seed, draw for draw
    np.testing.assert_array_equal(auto_ou.posterior["alpha"], ar.posterior["alpha"])
    assert auto_iid.spec.likelihood == "studentt"
    assert auto_iid.settings["likelihood_choice"].startswith("auto -> studentt")
    np.testing.assert_array_equal(auto_iid.posterior["alpha"], iid.posterior["alpha"])
    # the choice travels with the fit: report, refit, save/load
    assert bs.report(auto_ou).tables["sampler"].loc["likelihood_choice"].iloc[0].startswith(
        "auto -> ar1")
    small = auto_ou.refit(auto_ou.data["x"] < 5e7, draws=100, tune=100, warn=False)
    assert small.spec.likelihood == "ar1"
    back = bs.load_fit(auto_ou.save(tmp_path / "auto.nc"))
    assert back.spec.likelihood == "ar1"
    assert back.settings["likelihood_choice"] == auto_ou.settings["likelihood_choice"]


@pytest.mark.slow
def test_auto_likelihood_keeps_studentt_when_rows_share_a_scale():
    # two runs per scale (no run column), both following one autocorrelated path
    a, b = _curve(seed=4), _curve(seed=4)
    b["loss"] *= np.exp(0.002 * np.random.default_rng(9).standard_normal(len(b)))
    df = pd.concat([a, b], ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        f = bs.fit(df, "power_law", likelihood="auto", random_seed=1, **FAST)
    assert autocorr.residual_autocorrelation(f)[0] > autocorr.AR1_THRESHOLD
    assert f.spec.likelihood == "studentt"
    assert "'ar1' does not apply" in f.settings["likelihood_choice"]
    assert "have the same scale" in f.settings["likelihood_choice"]
    # the report does not send the user to a likelihood that refuses these rows
    note = [n for n in bs.report(f).notes if "autocorrelated" in n][0]
    assert "does not apply" in note and "pass run=<column>" in note


@pytest.mark.slow
def test_auto_likelihood_in_a_jax_batch_chooses_per_series():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        fits = bs.fit_batch([_curve(), _iid_curve()], "power_law", likelihood="auto",
                            sampler="jax", random_seed=1, draws=300, tune=300, chains=2)
    assert [f.spec.likelihood for f in fits] == ["ar1", "studentt"]
    assert [f.settings["random_seed"] for f in fits] == [1, 2]
    assert all(f.settings["likelihood_choice"].startswith("auto -> ") for f in fits)


@pytest.mark.slow
def test_auto_likelihood_with_pooling_and_runs_follows_each_run():
    rng = np.random.default_rng(0)
    parts = []
    for fam, E in (("a", 0.3), ("b", 0.35), ("c", 0.25)):
        for m in range(3):
            x = np.logspace(6, 8, 25) * (1 + m)
            e = autocorr.ou_residuals(np.log10(x), 0.03, 0.5, rng)
            parts.append(pd.DataFrame({"x": x, "loss": power_law(x, E=E, A=40.0, alpha=0.25)
                                       * np.exp(e), "family": fam, "model": f"{fam}{m}"}))
    df = pd.concat(parts, ignore_index=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bs.SamplingWarning)
        f = bs.fit(df, "power_law", pooled={"E": "family"}, run="model", random_seed=0,
                   draws=300, tune=300, chains=2)
        # without run=, the rows of different runs are not one sequence: Student-t kept
        g = bs.fit(df, "power_law", pooled={"E": "family"}, random_seed=0,
                   draws=300, tune=300, chains=2)
    assert f.spec.likelihood == "ar1"  # along each run
    assert g.spec.likelihood == "studentt"
    assert "pooled fit without run=" in g.settings["likelihood_choice"]
    seen = f.predict(pd.DataFrame({"x": [1e9], "family": ["a"], "model": ["a0"]}))
    with pytest.warns(bs.PoolingWarning, match="'d' was not among the fitted levels"):
        new = f.predict(pd.DataFrame({"x": [1e9], "family": ["d"], "model": ["d0"]}))
    # an unseen family and run draw from the populations: a wider interval
    assert (new["upper"] - new["lower"]).iloc[0] > (seen["upper"] - seen["lower"]).iloc[0]


@pytest.mark.slow
def test_ar1_default_fit_of_a_real_learning_curve_has_one_mode(shared_data):
    """ImageNet 10-shot (Revisiting benchmark): with the former corr_length prior
    (LogNormal(log 0.1, 1.5)) a third of the chains sat in a second mode, E ~ 0.125 with
    a correlation length of ~2 decades (11 of 32 chains over seeds 0-7, r_hat 1.5-1.7);
    with the default prior none of 32 did. The posterior still mixes slowly on this curve
    (ESS 14-500 by seed, r_hat up to 1.2 on this machine and 1.3 on another CPU), so
    the test counts chains in the far mode over four seeds instead of asking one seed
    for r_hat < 1.05, and checks that slow mixing is reported on the fit."""
    df = pd.read_csv(shared_data / "revisiting_scaling_laws" / "revisiting_learning_curves.csv")
    sub = df[(df.curve_id == "IC|inet_10|BiT/101/3") & (df.split == "fit")]
    far = 0
    for seed in range(4):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", bs.SamplingWarning)
            f = bs.fit(sub, "power_law", x={"x": "seen_examples"}, y="value",
                       likelihood="ar1", random_seed=seed, chains=4, progressbar=False)
        assert few_divergences(f.diagnostics), f.diagnostics
        e_chain = f.posterior["E"].median("draw").values
        ell_chain = f.posterior["corr_length"].median("draw").values
        far += int(np.sum((e_chain < 0.17) | (ell_chain > 1.2)))
        assert f.posterior["corr_length"].median() < 1.0
        if f.diagnostics["max_rhat"] > 1.01:  # said on the fit, not swallowed
            assert any("r_hat" in p for p in f.diagnostics["problems"]), f.diagnostics
    # the former prior: about 5 of 16 chains far; P(<= 1) about 0.04 under it
    assert far <= 1, far


def test_held_out_ar1_densities_condition_on_the_last_fitted_row():
    """Leave-future-out and backtest scores of an "ar1" fit: the first held-out row of a
    sequence is scored given the last fitted residual, as its forecast draws are (it was
    scored as if the sequence started there)."""
    from scipy import stats

    from bayescale.compare import pointwise_log_density

    rng = np.random.default_rng(4)
    x = np.logspace(3, 7, 30)
    e = np.zeros(30)
    for i in range(1, 30):
        e[i] = 0.97 * e[i - 1] + 0.01 * rng.standard_normal()
    law = bs.get_law("power_law")
    truth = dict(E=1.5, A=30.0, alpha=0.3)
    df = pd.DataFrame({"x": x, "loss": law(x, **truth) * np.exp(e + 0.05)})
    p = {**truth, "sigma": 0.02, "nu": 5.0, "corr_length": 0.5}
    fit = fixed_fit(df.iloc[:24], "power_law", p, draws=20, likelihood="ar1")
    lp = pointwise_log_density(fit, df.iloc[24:])
    resid = np.log(df["loss"].to_numpy()) - np.log(law(x, **truth))
    u = np.log10(x)
    phi = np.exp(-(u[24] - u[23]) / 0.5)
    want = stats.t.logpdf(resid[24] - phi * resid[23], 5.0, scale=0.02 * np.sqrt(1 - phi**2))
    np.testing.assert_allclose(lp[:, 0], want, rtol=1e-9)
    # the next held-out row: given the last fitted row too (its forecast's marginal)
    phi2 = np.exp(-(u[25] - u[23]) / 0.5)
    want2 = stats.t.logpdf(resid[25] - phi2 * resid[23], 5.0, scale=0.02 * np.sqrt(1 - phi2**2))
    np.testing.assert_allclose(lp[:, 1], want2, rtol=1e-9)
    # the training rows themselves: each sequence still starts at its first row
    phi1 = np.exp(-(u[1] - u[0]) / 0.5)
    first = pointwise_log_density(fit, df.iloc[:24])[0, :2]
    np.testing.assert_allclose(first, [stats.t.logpdf(resid[0], 5.0, scale=0.02),
                                       stats.t.logpdf(resid[1] - phi1 * resid[0], 5.0,
                                                      scale=0.02 * np.sqrt(1 - phi1**2))])


def test_held_out_ar1_rows_between_fitted_rows_condition_as_draws_do():
    """Held-out rows interleaved with fitted ones (a split by another column than the
    sequence's scale): each row is scored by its forecast's density, given the nearest
    fitted row below (the process's marginal over held-out rows between), never given
    another held-out row's observed response: the forecast draws do not see it, and a
    backtest of an "ar1" fit scored its rows one step ahead with future data."""
    from scipy import stats

    from bayescale.compare import pointwise_log_density

    x = np.logspace(3, 7, 12)
    law = bs.get_law("power_law")
    truth = dict(E=1.5, A=30.0, alpha=0.3)
    df = pd.DataFrame({"x": x, "loss": law(x, **truth) * np.exp(0.03 * np.sin(np.arange(12)))})
    p = {**truth, "sigma": 0.02, "nu": 5.0, "corr_length": 0.5}
    held = [4, 5, 8]
    fit = fixed_fit(df.drop(index=held), "power_law", p, draws=10, likelihood="ar1")
    lp = pointwise_log_density(fit, df.loc[held])[0]
    resid = np.log(df["loss"].to_numpy()) - np.log(law(x, **truth))
    u = np.log10(x)

    def cond(r, q):  # row r given row q
        phi = np.exp(-(u[r] - u[q]) / 0.5)
        return stats.t.logpdf(resid[r] - phi * resid[q], 5.0, scale=0.02 * np.sqrt(1 - phi**2))

    # rows 4 and 5 follow fitted row 3 (not held-out row 4), row 8 fitted row 7
    np.testing.assert_allclose(lp, [cond(4, 3), cond(5, 3), cond(8, 7)], rtol=1e-9)
    # a held-out row's response moves its own score only
    moved = df.loc[held].copy()
    moved.loc[4, "loss"] *= 1.05
    lp2 = pointwise_log_density(fit, moved)[0]
    np.testing.assert_array_equal(lp2[1:], lp[1:])
    assert lp2[0] != lp[0]


def test_decompose_of_an_ar1_fit_adds_up_to_its_predictive_variance():
    # the carried residual phi * e_last is anti-correlated with the law's spread: split
    # around the law's mean alone, a row just past the last checkpoint once got a total
    # 30x its predictive variance, half of it called parameter uncertainty
    from bayescale.calibration import robust_variance

    curve = _curve()
    p = {"E": 0.3, "A": 40.0, "alpha": 0.25, "sigma": 0.03, "nu": 8.0, "corr_length": 0.5}
    f = fixed_fit(curve, "power_law", p, draws=2000, jitter=0.05, likelihood="ar1")
    top = float(curve["x"].max())
    new = pd.DataFrame({"x": top * 10.0 ** np.array([0.01, 0.3, 2.0])})
    dec = f.decompose(new, extrapolation=False)
    actual = robust_variance(np.log(f.draws(new, extrapolation=False).values))
    np.testing.assert_allclose(dec["total"], actual, rtol=0.2)
    assert dec["parameter_share"].iloc[0] < 0.2  # at the checkpoint: its residual is known


def test_a_falling_input_runs_forward_as_it_falls():
    """A law whose input falls as models grow (Law.falling_inputs) forecasts beyond the data
    *below* the smallest fitted input: the AR(1) ran along the raw input, so that forecast
    ignored the last checkpoint's residual and one on the other side carried it."""
    import dataclasses

    true = dict(E=0.3, A=40.0, alpha=0.25)
    x = np.logspace(6, 8, 9)
    df = pd.DataFrame({"x": x, "loss": power_law(x, **true) * np.exp(0.08)})  # all 0.08 above
    p = {**true, "sigma": 0.03, "nu": 8.0, "corr_length": 0.5}
    carried = {}
    for law in (bs.get_law("power_law"),
                dataclasses.replace(bs.get_law("power_law"), name="falling",
                                    falling_inputs=("x",))):
        f = fixed_fit(df, law, p, draws=20, likelihood="ar1")
        new = pd.DataFrame({"x": [10**5.99, 10**8.01]})
        eta = np.log(f.draws(new, kind="mean", extrapolation=False).values)
        cm = autocorr.conditional_mean(eta, f._noise(), f._lik_data(f._frame(new))) - eta
        carried[law.name] = cm.mean(axis=0)
    # beyond the data: x above 1e8 for a rising input, below 1e6 for a falling one
    assert carried["power_law"][1] == pytest.approx(0.08, abs=0.005)
    assert carried["power_law"][0] == pytest.approx(0.0, abs=1e-12)
    assert carried["falling"][0] == pytest.approx(0.08, abs=0.005)
    assert carried["falling"][1] == pytest.approx(0.0, abs=1e-12)


def test_ar1_named_on_a_pooled_fit_without_runs_is_refused():
    """auto never picks ar1 there (groups do not form one sequence); named by the user,
    rows of different families were chained into one sequence, unsaid."""
    x = np.r_[np.logspace(6, 8, 6), np.logspace(6.1, 8.1, 6)]
    df = pd.DataFrame({"x": x, "loss": power_law(x, E=0.3, A=40.0, alpha=0.25),
                       "family": ["a"] * 6 + ["b"] * 6})
    with pytest.raises(bs.DataError, match="pooled fit without run=<column>.*pass run="):
        bs.fit(df, "power_law", pooled="family", likelihood="ar1", draws=10, tune=10,
               chains=1, progressbar=False)
