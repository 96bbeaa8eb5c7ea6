"""backtest: coverage near nominal when the law is right; report; calibration plot."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale.backtest import holdout_mask
from bayescale.errors import BayescaleError, DataError

TRUE = dict(E=1.7, A=60.0, alpha=0.1)


def simulate(n=60, seed=7, noise=0.02):
    rng = np.random.default_rng(seed)
    C = np.logspace(17, 22, n)
    mu = TRUE["E"] + TRUE["A"] * C ** -TRUE["alpha"]
    return pd.DataFrame({"C": C, "loss": mu * np.exp(noise * rng.standard_normal(n))})


@pytest.fixture(scope="module")
def bt():
    df = simulate()
    laws = {
        "power_law": "power_law",
        # a pure power law (no irreducible loss): the wrong law for these data
        "pure_power_law": ("power_law", {"priors": {"E": 0.0}}),
    }
    return bs.backtest(
        df, laws, holdout=dict(by="C", quantile=1 / 3), x={"x": "C"}, executor="serial",
        sampler="nutpie", draws=300, tune=300, chains=2, random_seed=3, warn=False,
    )


@pytest.mark.slow
def test_backtest_coverage_near_nominal_when_law_is_right(bt):
    t = bt.table
    assert list(t.index) == ["power_law", "pure_power_law", "average"]
    assert (t["n"] == 40).all()
    row = t.loc["power_law"]
    # 40 pooled held-out points extrapolated up to 1000x beyond the training range
    assert 0.75 <= row["cov_90"] <= 1.0
    assert 0.75 <= row["cov_95"] <= 1.0
    assert row["cov_50"] <= row["cov_80"] <= row["cov_90"] <= row["cov_95"]
    assert row["abs_rel_err"] < 0.03
    # the right law beats the wrong one on every proper score
    wrong = t.loc["pure_power_law"]
    assert row["lpd"] > wrong["lpd"]
    assert row["crps"] < wrong["crps"]
    assert row["abs_rel_err"] < wrong["abs_rel_err"]
    # LOO stacking weights come from the training rows, where both laws interpolate
    # well: they need not favour the right law for extrapolation (that is what
    # compare(..., lfo=...) is for), but they are a proper weighting
    assert sum(bt.weights.values()) == pytest.approx(1.0)
    assert t.loc["average", "n"] == 40


@pytest.mark.slow
def test_backtest_points_and_calibration(bt):
    pts = bt.points
    assert set(pts["law"]) == {"power_law", "pure_power_law", "average"}
    assert {"y", "median", "lower_90", "upper_90", "lpd", "crps", "extrapolation"} <= set(pts)
    held = simulate().loc[bt.holdout]
    sub = pts[pts["law"] == "power_law"]
    np.testing.assert_allclose(sub["y"].to_numpy(), held["loss"].to_numpy())
    # "mean" as predict gives it: NaN for Student-t noise on log y (no mean), where the
    # draws' sample mean was reported, unstable from one seed to the next
    from bayescale.fit import has_predictive_mean

    assert bt.fits["power_law"].spec.likelihood == "studentt"
    assert not has_predictive_mean(bt.fits["power_law"]) and sub["mean"].isna().all()
    # lpd is the density of the forecast the intervals and CRPS score: with the drift
    from bayescale.compare import log_predictive_density

    f = bt.fits["power_law"]
    with_drift = log_predictive_density(f, held, random_seed=3, extrapolation="auto")
    np.testing.assert_allclose(sub["lpd"].to_numpy(), with_drift, rtol=1e-12)
    assert not np.allclose(with_drift, log_predictive_density(f, held, random_seed=3))
    assert sub["extrapolation"].max() == pytest.approx(1e22 / held["C"].min() * held["C"].min()
                                                       / simulate().loc[~bt.holdout, "C"].max())
    cal = bt.calibration()
    assert len(cal) == 3 * 4 and set(cal["nominal"]) == {0.5, 0.8, 0.9, 0.95}
    ax = bt.plot_calibration()
    assert len(ax.get_lines()) == 1 + 3  # diagonal + one line per law
    page = bt._repr_html_()  # a notebook's view: the split and the score table
    assert f"{int(bt.holdout.sum())} of {len(bt.holdout)} rows held out" in page
    assert bt.table.to_html() in page


@pytest.mark.slow
def test_report_of_a_fit(bt, tmp_path):
    f = bt.fits["power_law"]
    rep = bs.report(f, target={"C": [1e23]})
    md = rep.markdown()
    for section in ("## Model", "## Priors", "## Data", "## Conventions", "## Sampler",
                    "## Diagnostics", "## Parameters", "## Forecast"):
        assert section in md
    assert "E + A * x^(-alpha)" in md and "6 N D" in md and "nutpie" in md
    # settings that are dicts (the timing) read as text with short numbers, not a repr
    assert re.search(r"\| timing \| sample_s [\d.]{1,6}, ", md) and "{'" not in md, md
    from bayescale.fit import data_hash

    assert data_hash(f.data) in md
    par = rep.tables["parameters"]
    assert par.loc["alpha", "lower_90"] < TRUE["alpha"] < par.loc["alpha", "upper_90"]
    # kind="mean": the mean curve's forecast, as predict gives it, without the shares
    mean = bs.report(f, target={"C": [1e23]}, kind="mean")
    fm, own = mean.tables["forecast"], f.predict({"C": [1e23]}, kind="mean")
    assert fm["upper_90"].iloc[0] == pytest.approx(own["upper"].iloc[0], rel=1e-12)
    assert not any(c.endswith("_share") for c in fm.columns)
    assert any("kind='mean'" in n for n in mean.notes)
    ax = f.plot(kind="mean")
    assert "90% mean interval" in [t.get_text() for t in ax.get_legend().get_texts()]
    with pytest.raises(bs.BayescaleError, match="kind must be one of"):
        bs.report(f, target={"C": [1e23]}, kind="means")
    # the report says its parameter intervals are central, unlike ArviZ's summary's HDI
    assert any("central (equal-tailed)" in n and "hdi_" in n for n in rep.notes)
    # a 97.5% interval is labelled 97.5, not 98 (nor 99.9% as 100)
    odd = bs.report(f, prob=0.975).tables["parameters"]
    assert {"lower_97.5", "upper_97.5"} <= set(odd.columns)
    assert odd.loc["alpha", "lower_97.5"] < par.loc["alpha", "lower_90"]
    fc = rep.tables["forecast"]
    largest = simulate().loc[~bt.holdout, "C"].max()
    assert fc["extrapolation"].iloc[0] == pytest.approx(1e23 / largest)
    assert fc["distance"].iloc[0] == pytest.approx(np.log10(1e23 / largest))
    assert fc["lower_90"].iloc[0] < fc["median"].iloc[0] < fc["upper_90"].iloc[0]
    # the variance shares of Fit.decompose: why the interval is as wide as it is
    shares = fc[["parameter_share", "noise_share", "extrapolation_share"]]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    dec = f.decompose({"C": [1e23]})
    np.testing.assert_allclose(fc["extrapolation_share"], dec["extrapolation_share"])
    assert fc["extrapolation_share"].iloc[0] > 0  # 100x beyond the data: the drift counts
    # and the report says which drift that was: its size and what it was learned from
    cal = rep.tables["calibration"]["value"]
    summ = f.calibration.summary()
    assert cal["tau_median"] == summ["tau_median"] > 0
    assert cal["inner_points"] == summ["inner_points"] > 0
    assert "on the log scale" in cal["drift"] and "## Calibration" in md
    fresh = bs.Fit(f.spec, f.data, f.idata, f.settings, f.diagnostics, {})
    assert "calibration" not in bs.report(fresh).tables  # none computed: none reported
    files = rep.to_csv(tmp_path / "rep")
    assert {p.name for p in files} >= {"parameters.csv", "priors.csv", "forecast.csv"}
    back = pd.read_csv(tmp_path / "rep" / "parameters.csv", index_col=0)
    np.testing.assert_allclose(back["median"], par["median"])
    assert "## Parameters" in f.report().markdown()


def test_holdout_forms():
    df = pd.DataFrame({"N": [1e8, 1e9, 1e10, 1e11], "D": [1e9] * 4, "flag": [0, 0, 1, 1]})
    # C computed as 6 N D
    assert holdout_mask(df, dict(by="C", quantile=0.5)).tolist() == [False, False, True, True]
    assert holdout_mask(df, lambda d: d["N"] > 5e9).tolist() == [False, False, True, True]
    assert holdout_mask(df.assign(h=df.flag == 1), "h").tolist() == [False, False, True, True]
    with pytest.raises(DataError, match="'flag' must be boolean"):
        holdout_mask(df, "flag")
    # pandas' nullable boolean: fine when complete, its missing rows named (it said only
    # "dtype object")
    nullable = pd.array([False, False, True, True], dtype="boolean")
    assert holdout_mask(df.assign(h=nullable), "h").tolist() == [False, False, True, True]
    nullable[1] = None
    with pytest.raises(DataError, match="holdout column 'h' has missing values at row 1"):
        holdout_mask(df.assign(h=nullable), "h")
    # ... and as a Series of the rows (it said "got shape (4,) and dtype object")
    with pytest.raises(DataError, match="holdout has missing values at row 1; give every row"):
        holdout_mask(df, pd.Series(nullable, index=df.index))
    with pytest.raises(DataError, match="holdout column 'nope' is missing"):
        holdout_mask(df, "nope")
    with pytest.raises(DataError, match="both must be non-empty"):
        holdout_mask(df, lambda d: d["N"] > 0)
    with pytest.raises(BayescaleError, match="unknown"):
        holdout_mask(df, dict(by="C", quantil=0.5))
    with pytest.raises(DataError, match="Cutoff column 'T' is missing"):
        holdout_mask(df, dict(by="T", cutoff=1.0))
    # columns named by the user: by= may name the law input that x= maps
    own = df.rename(columns={"N": "params", "D": "tokens"}).assign(tokens=[4e9, 3e9, 2e9, 1e9])
    x = {"N": "params", "D": "tokens"}
    assert holdout_mask(own, dict(by="N", cutoff=5e9), x).tolist() == [False, False, True, True]
    # C = 6 N D of the mapped columns: 2.4e18, 1.8e19, 1.2e20, 6e20
    assert holdout_mask(own, dict(by="C", cutoff=1e20), x).tolist() == [False, False, True, True]
    assert holdout_mask(own, dict(by="params", cutoff=5e10), x).tolist() == [False] * 3 + [True]
    with pytest.raises(DataError, match="Cutoff column 'C' is missing"):
        holdout_mask(own, dict(by="C", cutoff=1e20))  # without x the mapping is unknown
    # a boolean Series holds out rows by its labels: reversed, it held out the first rows
    # by position (the smallest models), silently
    big = df["N"] > 5e9
    assert holdout_mask(df, big.iloc[::-1]).tolist() == [False, False, True, True]
    assert holdout_mask(df, lambda d: (d["N"] > 5e9).iloc[::-1]).tolist() == [False, False,
                                                                              True, True]
    with pytest.raises(DataError, match="index does not match the data's rows"):
        holdout_mask(df, big.set_axis([10, 11, 12, 13]))
    assert holdout_mask(df, big.to_numpy()[::-1]).tolist() == [True, True, False, False]
    # the split column's values: a NaN said "cutoff must be a number, got nan" (no cutoff
    # was given); a list by= or text counts raised Python's or NumPy's own errors
    gap = df.assign(N=[1e8, np.nan, 1e10, 1e11])
    with pytest.raises(DataError, match=r"Column 'N' \(for C = 6\*N\*D.*NaN.*row 1"):
        holdout_mask(gap, dict(by="C", quantile=0.5))
    with pytest.raises(DataError, match=r"Column 'params' \(for C = 6\*N\*D.*row 1"):
        holdout_mask(gap.rename(columns={"N": "params"}), dict(by="C", quantile=0.5),
                     {"N": "params"})
    with pytest.raises(BayescaleError, match=r"by= names one column .* got \['C'\]"):
        holdout_mask(df, dict(by=["C"], quantile=0.5))
    with pytest.raises(DataError, match=r"Column 'N' .*"):
        holdout_mask(df.assign(N=["1e8", "1e9", "1e10", "x"]), dict(by="N", quantile=0.5))


@pytest.mark.slow
def test_report_of_a_model_average(bt, tmp_path):
    # bs.report(average) (an AttributeError before): the weights, the average's forecast
    # with its law_form share, then each law's own tables
    avg = bs.average(bt.fits, weights={"power_law": 0.7, "pure_power_law": 0.3})
    rep = avg.report(target={"C": [1e23]}, prob=0.8)
    w = rep.tables["weights"]
    assert w["weight"].to_dict() == {"power_law": 0.7, "pure_power_law": 0.3}
    assert (w["law"] == "power_law").all()
    fc = rep.tables["forecast"]
    pred = avg.predict({"C": [1e23]}, prob=0.8)
    assert fc["median"].iloc[0] == pytest.approx(pred["median"].iloc[0])
    assert fc["lower_80"].iloc[0] == pytest.approx(pred["lower"].iloc[0])
    shares = ["parameter_share", "noise_share", "extrapolation_share", "law_form_share"]
    np.testing.assert_allclose(fc[shares].sum(axis=1), 1.0)
    assert fc["law_form_share"].iloc[0] > 0  # the two laws disagree 100x beyond the data
    pure = rep.tables["priors (pure_power_law)"]
    assert pure.loc["E", "prior"].startswith("Fixed")
    assert "parameters (power_law)" in rep.tables
    md = rep.markdown()
    assert md.startswith("# Average of 2 laws (power_law, pure_power_law)")
    assert "## Parameters (pure_power_law)" in md
    names = {p.name for p in rep.to_csv(tmp_path / "avg")}
    assert {"weights.csv", "forecast.csv", "parameters_power_law.csv",
            "priors_pure_power_law.csv"} <= names
    with pytest.raises(BayescaleError, match="report takes a Fit .* got dict"):
        bs.report(bt.fits)


def test_a_falling_holdout_column_mapped_by_a_law_of_its_own_holds_out_the_lowest(monkeypatch):
    """A loss column mapped by a law's own x= (not the backtest's x=) falls as models grow:
    its lowest values are the future. The law's own mapping was ignored, so the highest
    losses (the smallest models) were held out, without a word."""
    import bayescale.parallel as par

    seen = {}

    def stop(tasks, **kwargs):
        seen["train"] = tasks[0][0]["val_loss"].to_numpy()
        raise RuntimeError("stop before fitting")

    monkeypatch.setattr(par, "run_fits", stop)
    d = pd.DataFrame({"val_loss": np.linspace(4, 2, 10), "accuracy": 0.5, "n": 500})
    mapping = {"L": "val_loss", "chance": 0.25}
    for kw in (dict(laws="sigmoid_of_loss", x=mapping),
               dict(laws={"s": ("sigmoid_of_loss", {"x": mapping})})):
        with pytest.raises(RuntimeError, match="stop before"):
            bs.backtest(d, holdout=dict(by="val_loss", quantile=0.8), average=None, **kw)
        np.testing.assert_allclose(np.sort(seen["train"]), np.linspace(4, 2, 10)[:8][::-1])


def test_a_law_that_does_not_read_the_split_column_has_no_say_in_its_direction():
    """A loss column falls for the law that reads it; a law of compute beside it does not
    read it at all, and vetoed the split ('falls for some laws and rises for others')."""
    from bayescale.backtest import _falling_holdout, _normalise_laws
    from bayescale.compare import falls

    spec = _normalise_laws({"loss": ("sigmoid_of_loss", {"x": {"L": "val_loss"}}),
                            "compute": "sigmoid_compute"})
    assert _falling_holdout(dict(by="val_loss", quantile=0.8), spec, None)
    # laws that read it and disagree are still refused; none reading it: not falling
    with pytest.raises(BayescaleError, match="falls as models grow for some laws"):
        falls([(bs.get_law("sigmoid_of_loss"), {"L": "q"}),
               (bs.get_law("power_law"), {"x": "q"})], "q")
    assert not falls([(bs.get_law("chinchilla"), None)], "C")


def test_an_average_of_laws_on_different_scales_is_refused_before_fitting(monkeypatch):
    """Given weights skipped compare()'s checks: a log-link law and a logit one were mixed
    row by row, their densities on different scales (lpd log(0.5 p_log + 0.5 pmf))."""
    import bayescale.parallel as par

    def never(*args, **kwargs):
        raise AssertionError("fitted before refusing")

    monkeypatch.setattr(par, "run_fits", never)
    d = pd.DataFrame({"C": np.logspace(20, 23, 12), "accuracy": 0.5, "n": 500})
    laws = {"pl": ("power_law", {"x": {"x": "C"}}),
            "sig": ("sigmoid_compute", {"x": {"chance": 0.25}})}
    for average in ({"pl": 0.5, "sig": 0.5}, "stacking", "lfo"):
        with pytest.raises(BayescaleError, match="different links.*cannot be averaged"):
            bs.backtest(d, laws, y="accuracy", holdout=dict(by="C", quantile=0.75),
                        average=average)
    with pytest.raises(BayescaleError, match="weights must be finite"):
        bs.backtest(d, laws, y="accuracy", holdout=dict(by="C", quantile=0.75),
                    average={"pl": None, "sig": 1})
    # one link, but a count's probability against a score's density: refused after the fits
    from conftest import fixed_fit

    params = dict(ceiling=0.9, k=1.0, x0=22.0, phi=50.0)

    def fits(tasks, **kwargs):
        return [fixed_fit(train, law, params, x=kw["x"], y="accuracy",
                          likelihood=kw["likelihood"]) for train, law, kw in tasks]

    monkeypatch.setattr(par, "run_fits", fits)
    laws = {k: ("sigmoid_compute", {"x": {"chance": 0.25}, "likelihood": lik})
            for k, lik in (("counts", "binomial"), ("scores", "beta"))}
    with pytest.raises(BayescaleError, match="mix counts .* with scores"):
        bs.backtest(d, laws, y="accuracy", holdout=dict(by="C", quantile=0.75),
                    average={"counts": 1, "scores": 1})


def test_backtest_rejects_reserved_label():
    with pytest.raises(BayescaleError, match="reserved"):
        bs.backtest(simulate(), {"average": "power_law"}, holdout=dict(by="C", quantile=0.5))
    # settings that were dropped or failed after the fits fail before them
    cut = dict(holdout=dict(by="C", quantile=0.5), x={"x": "C"})
    laws = {"power_law": "power_law", "pure": ("power_law", {"priors": {"E": 0.0}})}
    for kw, match in (
        (dict(average={"power_lw": 1.0}), r"unknown fits \['power_lw'\]"),
        (dict(average={"power_law": 1.0, "pure": -0.5}), "non-negative"),
        (dict(average={"power_law": 0.0}), "not all zero"),
        (dict(lfo=dict(quantile=0.5)), "lfo= sets the split of average='lfo'"),
        (dict(prob=1.5), "strictly between 0 and 1"),
        (dict(prob="wide"), "strictly between 0 and 1"),
    ):
        with pytest.raises(BayescaleError, match=match):
            bs.backtest(simulate(), laws, **cut, **kw)
    # a law named twice: the first was replaced by the second, silently
    with pytest.raises(BayescaleError, match="'power_law' is named twice"):
        bs.backtest(simulate(), ["power_law", ("power_law", {"likelihood": "normal"})], **cut)
    # a law with options that is not a (law, dict) pair: Python's "dictionary update
    # sequence element" before
    with pytest.raises(BayescaleError, match=r"law 'a' is given as \('power_law', 'x'\)"):
        bs.backtest(simulate(), {"a": ("power_law", "x")}, **cut)
    # no laws, or not laws: Python's TypeError; no rows: numpy's IndexError
    for odd in (3, [], None):
        with pytest.raises(BayescaleError, match="backtest takes laws as a name, a Law, a list"):
            bs.backtest(simulate(), odd, **cut)
    with pytest.raises(DataError, match="backtest: the data have no rows"):
        bs.backtest(simulate().iloc[:0], laws, **cut)


@pytest.mark.slow
def test_backtest_lfo_average_weights_the_law_that_extrapolates():
    """average="lfo": weights from a leave-future-out split of the training rows favour the
    law that forecasts (the saturating power law), not the one that interpolates."""
    df = simulate(n=60, seed=11, noise=0.01)
    laws = {"power_law": "power_law", "pure_power_law": ("power_law", {"priors": {"E": 0.0}})}
    # train on the 45 smallest runs; LFO refits on 27 of them and scores the next 18
    # (with only a dozen rows the saturating law's floor is not identified and LFO
    # rightly prefers the simpler law: measured)
    bt = bs.backtest(
        df, laws, holdout=dict(by="C", quantile=0.75), x={"x": "C"}, executor="serial",
        average="lfo", lfo=dict(quantile=0.6), sampler="nutpie", draws=300, tune=300,
        chains=2, random_seed=3, warn=False,
    )
    assert bt.weights["power_law"] > 0.8, bt.weights
    assert sum(bt.weights.values()) == pytest.approx(1.0)
    with pytest.raises(BayescaleError, match="'lfo'"):
        bs.backtest(df, laws, holdout=dict(by="C", quantile=0.5), x={"x": "C"},
                    average="bogus", sampler="nutpie", draws=50, tune=50, chains=1)


def test_crps_is_scored_on_the_log_scale_for_log_link_laws():
    from bayescale.backtest import score_draws
    from bayescale.compare import crps_ensemble

    rng = np.random.default_rng(0)
    # a Student-t with nu = 0.7 on log y: y = exp(t) has no finite mean
    logd = 0.05 * rng.standard_t(0.7, size=(4000, 3)) + np.log([2.0, 3.0, 4.0])
    y = np.array([2.1, 2.9, 4.4])
    raw = score_draws(np.exp(np.minimum(logd, 700)), y)["crps"]
    got = score_draws(np.exp(np.minimum(logd, 700)), y, link="log")["crps"]
    assert np.max(raw) > 1e10  # the scale of y blows up on heavy tails
    clipped = np.clip(logd, np.log(np.finfo(float).tiny), 700)
    np.testing.assert_allclose(got, crps_ensemble(clipped, np.log(y)), rtol=1e-9)
    assert np.all(got < 0.2)


def test_report_latex_escapes_text_and_selects_tables():
    from bayescale.report import Report

    rep = Report("fit of law_x", {
        "model": pd.DataFrame({"value": ["E + A * N^(-alpha)", "auto -> studentt <= 0.5"]},
                              index=pd.Index(["equation", "likelihood_choice"], name="item")),
        "forecast": pd.DataFrame({"median": [1.93456], "upper_90": [2.0]},
                                 index=pd.Index([7e10], name="N")),
    })
    tex = rep.latex(["forecast", "model"])
    assert tex.index(r"\label{tab:forecast}") < tex.index(r"\label{tab:model}")
    assert r"\caption{fit of law\_x: forecast}" in tex and r"\begin{tabular}{lrr}" in tex
    assert r"$7 \times 10^{10}$ & 1.935 & 2 \\" in tex and r"\begin{tabular}{ll}" in tex
    assert r"N\textasciicircum{}(-alpha)" in tex
    assert r"auto -\textgreater{} studentt \textless{}= 0.5" in tex
    assert rep.latex().count(r"\begin{table}") == 2
    # a setting that is a dict or a list reads as text with its numbers formatted
    rep = Report("fit", {"sampler": pd.DataFrame(
        {"value": [{"sample_s": 6.597563131999777, "compiled": True}, [0.5, 0.65, 0.8]]},
        index=pd.Index(["timing", "inner_cutoffs"], name="setting"))})
    md = rep.markdown()
    assert "| timing | sample_s 6.598, compiled True |" in md, md
    assert "| inner_cutoffs | 0.5, 0.65, 0.8 |" in md, md
    with pytest.raises(bs.BayescaleError, match=r"no table\(s\) \['priors'\]"):
        rep.latex(["priors"])
    # the notes (sampling problems) travel with the tables (they were left out), and a
    # second report in one paper can label its tables apart
    rep = Report("fit", rep.tables, notes=("r_hat 1.012 > 1.01 for alpha_z", "50% of x"))
    tex = rep.latex(label="tab:chin-")
    assert r"\label{tab:chin-sampler}" in tex and r"\paragraph{Notes (fit)}" in tex
    assert r"\item r\_hat 1.012 \textgreater{} 1.01 for alpha\_z" in tex
    assert r"\item 50\% of x" in tex and tex.rstrip().endswith(r"\end{itemize}")
    assert r"\item" not in rep.latex(notes=False)


def test_a_script_without_a_main_guard_is_told_what_to_do(tmp_path):
    """The local pool's 'spawn' workers run the calling script again; one that calls it at
    top level used to die with CPython's bootstrapping RuntimeError and BrokenProcessPool
    (and re-run the script's own work in each worker). Workers now stop at once with the
    fix, and so does the caller."""
    import subprocess
    import sys

    script = tmp_path / "unguarded.py"
    script.write_text(
        "import pandas as pd\nimport bayescale as bs\nprint('TOP-LEVEL RUN', flush=True)\n"
        "df = pd.DataFrame({'x': [1.0, 2, 4, 8, 16], 'loss': [3.0, 2.6, 2.3, 2.1, 2.0]})\n"
        "bs.fit_many([df, df], 'power_law', executor='processes', draws=50, tune=50)\n"
    )
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path)
    assert run.returncode == 1
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("bayescale.errors.BayescaleError: A worker of the local process pool")
    assert 'if __name__ == "__main__":' in last and "executor='serial'" in last
    # each worker stopped at the pool, before any fit of its own
    assert "RuntimeError" not in run.stderr and "freeze_support" not in run.stderr


def test_bad_held_out_rows_are_refused_before_any_law_is_fitted(monkeypatch):
    """A held-out row with a negative loss was found only when its forecast was scored,
    after every law had been sampled (minutes, for a backtest of several laws)."""
    import bayescale.parallel as par

    def never(*args, **kwargs):
        raise AssertionError("fitted before refusing")

    monkeypatch.setattr(par, "run_fits", never)
    df = simulate(n=20)
    df.loc[19, "loss"] = -1.0  # the largest run: held out
    laws = {"a": "power_law", "b": ("power_law", {"priors": {"E": 0.0}})}
    with pytest.raises(DataError, match=r"backtest of 'a', held-out rows: .*loss.*19"):
        bs.backtest(df, laws, holdout=dict(by="C", quantile=0.8), x={"x": "C"})
    df.loc[19, "loss"] = 2.0
    df.loc[3, "loss"] = np.nan  # a training row of the second law's fit
    with pytest.raises(DataError, match=r"backtest of 'a', training rows: .*loss"):
        bs.backtest(df, laws, holdout=dict(by="C", quantile=0.8), x={"x": "C"})


def test_latex_writes_large_and_small_numbers_as_powers_of_ten():
    """A forecast at N = 7e10 read '7e+10' in the paper's table."""
    from bayescale.report import Report

    rep = Report("fit", {"forecast": pd.DataFrame(
        {"median": [1.934], "C": [5.88e23], "tau": [1e-5]},
        index=pd.Index([7e10], name="N"))})
    row = rep.latex().splitlines()[8]
    assert row == r"$7 \times 10^{10}$ & 1.934 & $5.88 \times 10^{23}$ & $10^{-5}$ \\", row
