"""Joint two-stage model (``bs.fit_joint``): recovery, coverage, agreement with the chain."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import few_divergences

import bayescale as bs
from bayescale.errors import DataError, LawError
from bayescale.laws import power_law, sigmoid_of_loss

# small budget; r_hat is checked against 1.05 instead of the fit-time 1.01 warning
SAMPLE = dict(draws=400, tune=500, chains=4, progressbar=False, warn=False)

TRUE_LOSS = dict(E=1.7, A=1413.0, alpha=0.15)  # loss 3.7 at 1e19 FLOPs -> 2.4 at 1e22
TRUE_ACC = dict(ceiling=0.8, k=5.0, L0=2.9)  # chance at 1e19, 0.80 of the way at 1e22
CHANCE = 0.25
HELD_OUT_C = 1e23  # 10x the largest fitted compute
KW = dict(loss_x={"x": "C"}, accuracy_x={"chance": "chance"})


def true_loss(C):
    return power_law(np.asarray(C, dtype=float), **TRUE_LOSS)


def true_accuracy(C):
    return sigmoid_of_loss(true_loss(C), CHANCE, **TRUE_ACC)


def simulate(n_rows=30, seed=0, n=500, noise=0.01):
    """Loss = law * lognormal noise; correct ~ Binomial(n, acc(mean loss)); some gaps.

    Every 7th row lacks its loss and every 7th row (shifted by 3) its accuracy, so the
    data mix loss-only, accuracy-only and complete rows.
    """
    rng = np.random.default_rng(seed)
    C = np.sort(10 ** rng.uniform(19, 22, n_rows))
    loss = true_loss(C) * np.exp(noise * rng.standard_normal(n_rows))
    correct = rng.binomial(n, true_accuracy(C)).astype(float)
    df = pd.DataFrame({"C": C, "loss": loss, "correct": correct, "n": n, "chance": CHANCE})
    df.loc[df.index[::7], "loss"] = np.nan
    df.loc[df.index[3::7], "correct"] = np.nan
    return df


@pytest.fixture(scope="module")
def sim():
    # seed 1 is a typical draw: with the *true* losses known, the Binomial
    # log-likelihood of the true (ceiling, k, L0) is 1.7 below its maximum (the median
    # of chi2_3 / 2 is 1.2); seed 0 is a 3% tail draw (4.7 below) whose maximum
    # likelihood ceiling is 0.74, which no correct method would put 0.8 inside a 90%
    # interval of
    return simulate(seed=1)


@pytest.fixture(scope="module")
def joint(sim):
    return bs.fit_joint(sim, "power_law", "sigmoid_of_loss", random_seed=1, **KW, **SAMPLE)


NEW = pd.DataFrame({"C": [1e20, 1e21, 1e22, HELD_OUT_C], "chance": CHANCE, "n": 500})


# ---------------------------------------------------------------- the model itself


@pytest.mark.slow
def test_joint_layout_and_latent_loss_is_stage1_mean(joint, sim):
    # 30 rows: 25 with a loss (5 missing), 26 with an accuracy (4 missing), 21 with both
    assert len(joint.loss_fit.data) == int(sim["loss"].notna().sum()) == 25
    assert len(joint.accuracy_fit.data) == int(sim["correct"].notna().sum()) == 26
    assert set(joint.model.coords) >= {"loss_row", "loss_obs", "acc_obs"}
    post = joint.posterior
    # the latent loss of each accuracy row, per draw, is exactly stage 1's law there
    acc_rows = sim.loc[sim["correct"].notna()]
    E, A, alpha = (post[f"loss::{p}"].values.reshape(-1, 1) for p in ("E", "A", "alpha"))
    latent = post["accuracy::latent_loss"].values.reshape(-1, len(acc_rows))
    expect = power_law(acc_rows["C"].to_numpy()[None, :], E=E, A=A, alpha=alpha)
    np.testing.assert_allclose(latent, expect, rtol=1e-8)
    # and it recovers the true mean loss, also on the accuracy-only rows (no loss seen)
    med = np.median(latent, axis=0)
    rel = np.abs(med / true_loss(acc_rows["C"].to_numpy()) - 1)
    assert rel.max() < 0.03, rel
    only_acc = acc_rows["loss"].isna().to_numpy()
    assert only_acc.sum() == 5 and rel[only_acc].max() < 0.03
    # sampled with target_accept="auto" (the default): the rate used is recorded
    assert joint.settings["target_accept"] == "auto"
    assert joint.settings["target_accept_used"] in (0.9, 0.95, 0.99)


@pytest.mark.slow
def test_joint_recovers_stage2_parameters_in_90pct_intervals(joint):
    post = joint.posterior
    for name, truth in TRUE_ACC.items():
        d = post[f"accuracy::{name}"].values.ravel()
        lo, hi = np.quantile(d, [0.05, 0.95])
        assert lo < truth < hi, (name, lo, hi, truth)
    d = joint.diagnostics
    assert few_divergences(d), d
    acc_names = [v for v in joint.var_names if v.startswith("accuracy::")]
    assert (joint.summary().loc[acc_names, "r_hat"] < 1.05).all()


@pytest.mark.slow
def test_joint_interval_covers_truth_at_held_out_scale(joint):
    pred = joint.predict(NEW, prob=0.9, kind="mean", extrapolation=False, random_seed=0)
    truth = true_accuracy(NEW["C"].to_numpy())
    held = pred.iloc[-1]
    assert held["lower"] < truth[-1] < held["upper"], (held, truth[-1])
    # inside the fitted range four 90% intervals would all cover only ~2/3 of the time;
    # the 99% intervals must
    p99 = joint.predict(NEW, prob=0.99, kind="mean", extrapolation=False, random_seed=0)
    assert np.all(p99["lower"] < truth) and np.all(truth < p99["upper"]), (p99, truth)
    # informative, not just wide: the held-out interval is under 15 points wide
    assert held["upper"] - held["lower"] < 0.15, held
    # the tidy table of Chain.predict
    for col in ("loss_median", "loss_lower", "loss_upper", "mean", "median", "lower", "upper"):
        assert col in pred.columns
    # predictive draws add Binomial noise (n = 500): wider, and they are fractions k/500
    pp = joint.draws(NEW, extrapolation=False, random_seed=0)["accuracy"].values
    assert np.allclose(pp * 500, np.rint(pp * 500))
    w_pp = np.subtract(*np.quantile(pp, [0.95, 0.05], axis=0))
    assert np.all(w_pp > (pred["upper"] - pred["lower"]).to_numpy())
    # why the interval is as wide as it is (Chain.decompose, logit scale): the Binomial
    # noise of 500 questions is 1 / (n p (1 - p)) by the delta method
    dec = joint.decompose(NEW, extrapolation=False)
    p = pred["median"].to_numpy()
    np.testing.assert_allclose(dec["noise"], 1 / (500 * p * (1 - p)), rtol=0.25)
    np.testing.assert_allclose(dec[["loss_share", "parameter_share", "noise_share",
                                    "extrapolation_share", "covariance_share"]].sum(axis=1), 1.0)
    assert (dec["extrapolation"] == 0).all() and (dec["loss"] > 0).all()
    # the stages come from one posterior: loss + parameter overstated the law's spread (by
    # 40-75%: their covariance is negative); with the covariance they are that spread
    from bayescale.calibration import robust_variance, to_scale

    _, law = joint.stage_draws(NEW, kind="mean", extrapolation=False)
    spread = robust_variance(to_scale(law, "logit", clip=True))
    assert (dec["covariance"] < 0).all()
    np.testing.assert_allclose(dec["loss"] + dec["parameter"] + dec["covariance"], spread,
                               rtol=0.1)
    # each stage's view has its pointwise log-likelihood: fit.loo() and bs.compare work on
    # it (a TypeError "log likelihood not found"), per row of that stage
    import arviz as az

    for view, var in ((joint.loss_fit, "loss::y_obs"), (joint.accuracy_fit, "accuracy::y_obs")):
        loo = view.loo()
        assert loo.n_data_points == len(view.data)
        # (their r_eff differ: ArviZ takes it from the posterior, here one stage's)
        assert loo.elpd_loo == pytest.approx(az.loo(joint.idata, var_name=var).elpd_loo,
                                             rel=1e-3)
    # the report of a joint fit: its forecast, each stage's tables, each problem said once
    # (the stages' views share the joint posterior's diagnostics)
    from dataclasses import replace

    def with_problem(f):
        return bs.Fit(f.spec, f.data, f.idata, f.settings,
                      {**f.diagnostics, "problems": ["low ESS"]}, f.extras)

    flagged = replace(joint, diagnostics={**joint.diagnostics, "problems": ["low ESS"]},
                      loss_fit=with_problem(joint.loss_fit),
                      accuracy_fit=with_problem(joint.accuracy_fit))
    rep = flagged.report(target=NEW)
    assert {"forecast", "parameters (stage 1: power_law)",
            "parameters (stage 2: sigmoid_of_loss)"} <= set(rep.tables)
    assert [n for n in rep.notes if "low ESS" in n] == ["joint fit: low ESS"], rep.notes
    # its forecast's shares are decompose's, the covariance too: they add up to 1 (the
    # covariance share was left out, and the shown ones summed to 1.08-1.15)
    fc = rep.tables["forecast"]
    shares = [c for c in fc.columns if c.endswith("_share")]
    assert "covariance_share" in shares
    np.testing.assert_allclose(fc[shares].sum(axis=1), 1.0)


@pytest.mark.slow
def test_joint_forecast_beyond_the_data_gets_each_stages_drift(joint):
    """By default (extrapolation="auto") a joint forecast beyond the data adds each stage's
    calibrated drift, learned by refitting each stage's view alone (stage 2 on the
    latent losses); inside the data nothing changes, and the law being right, the truth
    stays inside."""
    plain = joint.predict(NEW, prob=0.9, kind="mean", extrapolation=False, random_seed=0)
    drift = joint.predict(NEW, prob=0.9, kind="mean", random_seed=0)
    w_plain = (plain["upper"] - plain["lower"]).to_numpy()
    w_drift = (drift["upper"] - drift["lower"]).to_numpy()
    np.testing.assert_allclose(w_drift[:2], w_plain[:2])  # inside stage 1's and 2's data
    assert w_drift[3] >= w_plain[3]
    truth = true_accuracy(HELD_OUT_C)
    assert drift["lower"].iloc[3] <= truth <= drift["upper"].iloc[3]
    for stage in (joint.loss_fit, joint.accuracy_fit):
        assert stage.calibration.n_points > 0, stage.calibration.summary()
    assert joint.accuracy_fit.calibration.scale == "logit"


@pytest.mark.slow
def test_joint_agrees_with_two_stage_chain(joint, sim):
    """Medians of the joint model and the chain of two separate fits agree.

    Same data, same laws, same priors; the chain's stage 2 sees the *measured* loss
    of the rows that have both columns (1% noise, an errors-in-variables attenuation
    of order noise^2 / var(log loss) ~ 1e-3), the joint model the latent mean on all
    accuracy rows, and Monte Carlo error of a median from ~1000 draws is ~5% of a
    posterior sd. So the two medians must agree to a small fraction of the posterior
    width: we require a quarter of the joint 90% interval (plus 0.005 for the Binomial
    granularity); a wiring error (wrong rows, wrong loss axis) moves them by more.
    """
    nuts = dict(sampler="nutpie", **SAMPLE)
    f1 = bs.fit(sim.dropna(subset=["loss"]), "power_law", x={"x": "C"}, random_seed=2, **nuts)
    f2 = bs.fit(
        sim.dropna(subset=["loss", "correct"]),
        "sigmoid_of_loss",
        x={"L": "loss", "chance": "chance"},
        random_seed=3,
        **nuts,
    )
    chained = bs.chain(f1, f2).predict(
        NEW, prob=0.9, kind="mean", loss_kind="mean", extrapolation=False, random_seed=0
    )
    pred = joint.predict(NEW, prob=0.9, kind="mean", extrapolation=False, random_seed=0)
    width = (pred["upper"] - pred["lower"]).to_numpy()
    diff = np.abs(pred["median"].to_numpy() - chained["median"].to_numpy())
    assert np.all(diff < 0.25 * width + 0.005), (diff, width)
    # loss medians: same stage-1 law on the same loss rows
    rel = np.abs(pred["loss_median"].to_numpy() / chained["loss_median"].to_numpy() - 1)
    assert rel.max() < 0.02, rel


# ---------------------------------------------------------------- bad input


def _bad(**change):
    df = simulate(n_rows=12, seed=5)
    for col, val in change.items():
        if val is None:
            df = df.drop(columns=col)
        else:
            df[col] = val
    return df


@pytest.mark.parametrize(
    "df, kwargs, err, match",
    [
        # accuracy column outside [0, 1] (Beta path: no n column)
        (
            _bad(correct=None, n=None).assign(accuracy=[0.3, 0.4, 1.4] + [0.5] * 9),
            {},
            DataError,
            "Accuracy column 'accuracy' must lie in \\[0, 1\\].*row 2",
        ),
        (_bad(loss=None), {}, DataError, "Loss column 'loss'.*missing"),
        (_bad(correct=None), {}, DataError, "Accuracy column 'accuracy'.*missing"),
        (_bad(C=None), {}, DataError, "Column 'C'.*missing"),
        (_bad(chance=None), {}, DataError, "chance level.*missing"),
        (_bad(n=None), {}, DataError, "'n' is missing"),
        (_bad(loss=np.nan), {}, DataError, "No row has a loss"),
        (_bad(correct=np.nan), {}, DataError, "No row has an accuracy"),
        (
            _bad().assign(correct=[np.nan] + [100.0] * 11, loss=[np.nan] + [3.0] * 11),
            {},
            DataError,
            "neither a loss.*row 0",
        ),
        (_bad().assign(correct=[600.0] * 12), {}, DataError, "exceeds the number of trials"),
        (_bad().assign(loss=[-1.0] + [3.0] * 11), {}, DataError, "must be positive.*row 0"),
        (
            _bad(),
            {"accuracy_x": {"chance": "chance", "L": "loss"}},
            DataError,
            "loss is latent",
        ),
    ],
)
def test_bad_input_raises_clear_error(df, kwargs, err, match):
    kw = {**KW, **kwargs}
    with pytest.raises(err, match=match):
        bs.fit_joint(df, "power_law", "sigmoid_of_loss", **kw, **SAMPLE)


def test_stages_must_be_loss_then_accuracy_law():
    df = simulate(n_rows=12, seed=5)
    with pytest.raises(LawError, match="Stage 1 of fit_joint must be a loss law"):
        bs.fit_joint(df, "sigmoid_of_loss", "sigmoid_of_loss", **KW, **SAMPLE)
    with pytest.raises(LawError, match="Stage 2 of fit_joint must be an accuracy law"):
        bs.fit_joint(df, "power_law", "power_law", **KW, **SAMPLE)
    with pytest.raises(LawError, match="loss_input 'Q'"):
        bs.fit_joint(df, "power_law", "sigmoid_of_loss", loss_input="Q", **KW, **SAMPLE)


def test_joint_rejects_pooling_with_a_clear_error():
    df = pd.DataFrame({"C": [1e19, 1e20, 1e21], "loss": [3.0, 2.8, 2.6],
                       "correct": [30, 40, 50], "n": [100, 100, 100], "family": list("aab")})
    for kw in ({"pooled": "family"}, {"run": "family"}):
        with pytest.raises(bs.BayescaleError, match="bs.chain"):
            bs.fit_joint(df, "power_law", "sigmoid_of_loss", loss_x={"x": "C"},
                         accuracy_x={"chance": 0.25}, **kw)


def test_bs_fit_arguments_are_refused_with_their_per_stage_names():
    """priors=, likelihood=, ... went to the sampler, which dropped them: the fit ran with
    the default priors, and nothing said so. Each is named with what to give instead;
    an option nutpie does not have is refused too (pm.sample's nutpie path ignored it)."""
    df = simulate(n_rows=12, seed=5)
    for kw, match in (({"priors": {"alpha": 0.15}}, "loss_priors= and accuracy_priors="),
                      ({"likelihood": "normal"}, "loss_likelihood="),
                      ({"extrapolation": False}, "argument of predict"),
                      ({"levels": {"task": ["a"]}}, "bs.chain"),
                      ({"max_depth": 8}, "sampler='nutpie' has no option 'max_depth'")):
        with pytest.raises(bs.BayescaleError, match=match):
            bs.fit_joint(df, "power_law", "sigmoid_of_loss", sampler="nutpie", **KW, **kw,
                         **SAMPLE)


def test_blank_strings_are_missing_in_pandas_string_columns_too(monkeypatch):
    """A loss column read as text with blanks for the missing losses: pandas 3's "str"
    dtype (the default for text) was not checked for blanks, only object columns were."""
    import bayescale.sampling as smp

    class Reached(Exception):
        pass

    def stop(*args, **kwargs):
        raise Reached

    monkeypatch.setattr(smp, "sample_stepping_down", stop)
    df = simulate(n_rows=12, seed=5)
    assert df["loss"].isna().any()  # some rows have an accuracy only
    text = [("" if np.isnan(v) else f"{v}") for v in df["loss"]]
    for dtype in (object, "str"):
        with pytest.raises(Reached):  # validated, then sampled
            bs.fit_joint(df.assign(loss=pd.Series(text, dtype=dtype)), "power_law",
                         "sigmoid_of_loss", **KW, **SAMPLE)


@pytest.mark.parametrize(
    "law2, drop_n, override, expected",
    [
        ("onset_hinge_loss", False, None, "betabinomial"),  # was binomial: too narrow
        ("exp_error_of_loss", False, None, "beta"),  # was binomial
        ("sigmoid_of_loss", False, None, "binomial"),
        ("sigmoid_of_loss", True, None, "beta"),  # scores without trial counts
        ("onset_hinge_loss", False, "binomial", "binomial"),  # accuracy_likelihood= wins
    ],
)
def test_stage_two_keeps_the_accuracy_laws_own_likelihood(monkeypatch, law2, drop_n, override,
                                                          expected):
    """As bs.fit (and so bs.chain) would fit it: the joint fit gave every accuracy law a
    Binomial likelihood when an n column was present, so an over-dispersed task
    (onset_hinge_loss's beta-binomial) had intervals too narrow, unsaid."""
    import sys

    class Reached(Exception):
        pass

    seen = {}

    def stop(spec1, frame1, frame_all, spec2, *args, **kwargs):
        seen["likelihood"] = spec2.likelihood
        raise Reached

    monkeypatch.setattr(sys.modules["bayescale.joint"], "build_joint_model", stop)
    df = simulate(n_rows=12, seed=5)
    if drop_n:
        df = df.assign(accuracy=df["correct"] / df["n"]).drop(columns=["correct", "n"])
    kw = dict(KW, accuracy_x={"chance": "chance"} if law2 != "exp_error_of_loss" else {})
    with pytest.raises(Reached):
        bs.fit_joint(df, "power_law", law2, accuracy_likelihood=override, **kw, **SAMPLE)
    assert seen["likelihood"] == expected
    if not drop_n:  # the single-stage fit of the same law and rows agrees
        from bayescale.fit import prepare_spec

        rows = df.dropna(subset=["correct"]).assign(L=2.5)
        spec, frame = prepare_spec(rows, law2, y=None, x=kw["accuracy_x"] or None,
                                   priors=None, likelihood=override)
        assert spec.likelihood == expected
        # counts for a score likelihood: bs.fit fits their fraction (it said "Response
        # column 'accuracy' is missing"), with n bounding the scores by half a trial
        np.testing.assert_allclose(frame["y"], rows["correct"] / rows["n"])
        assert (frame["n"] == 500).all()


def test_a_joint_fit_without_a_seed_chooses_one_and_samples_with_it(monkeypatch):
    """fit_joint left random_seed=None: its forecasts drew new numbers at every call and the
    fit could not be repeated. A seed is chosen (as bs.fit does) and sampled with."""
    import bayescale.sampling as sampling

    seen = {}
    monkeypatch.setattr(sampling, "random_seed_for_run", lambda: 4242)

    def stop(*args, random_seed=None, **kwargs):
        seen["seed"] = random_seed
        raise RuntimeError("stop before sampling")

    monkeypatch.setattr(sampling, "sample", stop)
    with pytest.raises(RuntimeError, match="stop before"):
        bs.fit_joint(simulate(seed=1), "power_law", "sigmoid_of_loss", **KW, **SAMPLE)
    assert seen["seed"] == 4242
