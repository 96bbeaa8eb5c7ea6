"""compare / average / leave-future-out / stacking / CRPS, and the executors."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import fixed_fit
from scipy import stats

import bayescale as bs
from bayescale.compare import _allocate, crps_ensemble, stacking_weights
from bayescale.errors import BayescaleError, DataError
from bayescale.laws import broken_power_law

NUTS = dict(sampler="nutpie", draws=300, tune=300, chains=2, progressbar=False, warn=False)


def crps_normal(mu, sigma, y):
    """Closed form CRPS of N(mu, sigma^2) at y (Gneiting & Raftery 2007)."""
    z = (y - mu) / sigma
    return sigma * (z * (2 * stats.norm.cdf(z) - 1) + 2 * stats.norm.pdf(z) - 1 / np.sqrt(np.pi))


def test_crps_matches_normal_closed_form():
    rng = np.random.default_rng(0)
    mu, sigma = 1.5, 0.7
    y = np.array([-1.0, 0.0, 1.5, 2.2, 4.0])
    draws = mu + sigma * rng.standard_normal((100_000, 1)) * np.ones((1, y.size))
    got = crps_ensemble(draws, y)
    np.testing.assert_allclose(got, crps_normal(mu, sigma, y), rtol=0.01, atol=0.002)
    # a point mass: CRPS = |x - y|
    np.testing.assert_allclose(crps_ensemble(np.full((10, 1), 2.0), [3.5]), [1.5])


def test_stacking_weights_reach_the_optimum_beside_a_corner():
    """Softmax logits lose their gradient as one weight nears 1: BFGS stopped at [0, 1, 0, 0]
    where the optimum is [0.121, 0.879, 0, 0] (a leave-future-out table of four laws)."""
    lpd = np.array([[-33.573, -4.842, -5.698, -9.157], [-2.228, -2.104, -2.009, -2.431],
                    [-15.016, -3.194, -3.489, -5.393], [-1.286, -2.036, -1.911, -2.118],
                    [-1.026, -2.02, -1.887, -2.005]])
    w = stacking_weights(lpd)
    np.testing.assert_allclose(w, [0.1213, 0.8787, 0, 0], atol=2e-3)
    # the optimum on the simplex: no weight's derivative exceeds the active ones' (KKT)
    p = np.exp(lpd)
    slope = np.mean(p / (p @ w)[:, None], axis=0)
    assert np.all(slope <= 1 + 1e-3) and np.allclose(slope[w > 0], 1, atol=1e-3), slope
    # random tables of 3-6 laws: never worse than the EM fixed point of the same objective
    rng = np.random.default_rng(0)
    for _ in range(50):
        k, n = rng.integers(3, 7), rng.integers(3, 40)
        lp = rng.normal(-2, 1, (n, k)) - np.abs(rng.standard_cauchy((n, k)))
        q = np.exp(lp)
        em = np.full(k, 1 / k)
        for _ in range(5000):
            em = em * np.mean(q / (q @ em)[:, None], axis=0)
        got = stacking_weights(lp)
        assert np.log(q @ got).sum() > np.log(q @ em).sum() - 1e-5


def test_stacking_weights_pick_the_better_density():
    rng = np.random.default_rng(1)
    y = rng.standard_normal(200)
    good = stats.norm.logpdf(y, 0, 1)
    bad = stats.norm.logpdf(y, 1.5, 1)
    w = stacking_weights(np.column_stack([bad, good]))
    assert w[1] > 0.9 and abs(w.sum() - 1) < 1e-9
    # two halves of a mixture: each model explains half the points
    y2 = np.r_[rng.normal(-3, 0.5, 100), rng.normal(3, 0.5, 100)]
    lp = np.column_stack([stats.norm.logpdf(y2, -3, 0.5), stats.norm.logpdf(y2, 3, 0.5)])
    np.testing.assert_allclose(stacking_weights(lp), [0.5, 0.5], atol=0.02)


def test_allocate_counts_sum_and_proportions():
    c = _allocate(1000, np.array([0.7, 0.2, 0.1]))
    assert c.sum() == 1000 and c.tolist() == [700, 200, 100]
    assert _allocate(7, np.array([0.5, 0.5])).sum() == 7


def simulate_bnsl(n=40, seed=3):
    rng = np.random.default_rng(seed)
    C = np.logspace(15, 21, n)
    mu = broken_power_law(C, E=1.5, b=2.0, c0=0.05, c1=0.4, d=1e18, f=0.3)
    return pd.DataFrame({"C": C, "loss": mu * np.exp(0.01 * rng.standard_normal(n))})


@pytest.fixture(scope="module")
def bnsl_fits():
    df = simulate_bnsl()
    kw = dict(x={"x": "C"}, random_seed=1, **NUTS)
    return {
        "power_law": bs.fit(df, "power_law", **kw),
        "broken_power_law": bs.fit(df, "broken_power_law", **kw),
    }


@pytest.mark.slow
def test_compare_ranks_true_law_first_loo_and_lfo(bnsl_fits):
    table = bs.compare(bnsl_fits, lfo=dict(quantile=0.75, by="C"), executor="serial", warn=False)
    # both rankings put the law the data came from first
    assert table.index[0] == "broken_power_law"
    assert table.loc["broken_power_law", "rank"] == 0
    assert table.loc["broken_power_law", "lfo_rank"] == 0  # from 0, as ArviZ's rank
    assert table.loc["power_law", "elpd_diff"] > 2 * table.loc["power_law", "dse"]
    # stacking puts most weight on it, on LOO and on the future rows
    assert table.loc["broken_power_law", "weight"] > 0.8
    assert table.loc["broken_power_law", "lfo_weight"] > 0.8
    assert (table["lfo_n"] == 10).all()
    # the true law's residuals are independent: auto kept Student-t; the column says so
    assert table.loc["broken_power_law", "likelihood"] == "studentt"
    assert table.loc["power_law", "likelihood"] == bnsl_fits["power_law"].spec.likelihood
    for note in table["pareto_k_note"]:
        assert "Pareto k" in note
    pw = table.attrs["lfo"]["pointwise"]
    assert pw.shape == (10, 2)
    np.testing.assert_allclose(pw.sum().to_numpy(), table.loc[pw.columns, "lfo_elpd"].to_numpy())
    # the refits saw only the rows below the cutoff
    refit = table.attrs["lfo"]["refits"]["power_law"]
    assert len(refit.data) == 30 and refit.data["x"].max() < simulate_bnsl()["C"].iloc[30]


@pytest.mark.slow
def test_lfo_leaves_out_a_law_with_too_few_rows_below_the_cutoff(bnsl_fits):
    table = bs.compare(bnsl_fits, lfo=dict(quantile=0.15, by="C"), executor="serial", warn=False)
    # 6 rows below the cutoff: enough for the power law (5 free parameters), not for BNSL (8)
    assert table.loc["broken_power_law", "lfo_weight"] == 0.0
    assert np.isnan(table.loc["broken_power_law", "lfo_elpd"])
    note = table.loc["broken_power_law", "lfo_note"]
    assert "left out: 6 rows below the cutoff for 8 free" in note
    assert table.loc["power_law", "lfo_weight"] == pytest.approx(1.0)
    assert table.loc["power_law", "lfo_note"] == ""
    assert table.loc["broken_power_law", "lfo_rank"] == 1  # last of two
    with pytest.raises(BayescaleError, match="No law can be refitted"):
        bs.compare(bnsl_fits, lfo=dict(quantile=0.05, by="C"), executor="serial", warn=False)


@pytest.mark.slow
def test_average_mixes_draws_by_weight(bnsl_fits):
    avg = bs.average(bnsl_fits, weights={"power_law": 0.25, "broken_power_law": 0.75})
    new = pd.DataFrame({"C": [1e22, 1e23]})
    d = avg.draws(new)
    assert d.dims == ("sample", "row") and d.shape == (600, 2)
    # a quarter of the mixture draws come from the power law's draws (with the average's seed)
    pl = bnsl_fits["power_law"].draws(new, random_seed=avg.random_seed).values
    share = np.isin(d.values[:, 0], pl[:, 0]).mean()
    assert share == pytest.approx(0.25, abs=0.01)
    pred = avg.predict(new, prob=0.9)
    assert list(pred.columns) == ["C", "mean", "median", "lower", "upper", "extrapolation"]
    assert (pred["lower"] < pred["median"]).all() and (pred["median"] < pred["upper"]).all()
    np.testing.assert_allclose(pred["extrapolation"], [10.0, 100.0])
    # same seed, same draws
    np.testing.assert_array_equal(avg.draws(new).values, d.values)
    # stacking weights from ArviZ favour the true law
    st = bs.average(bnsl_fits)
    assert st.weights["broken_power_law"] > 0.8


@pytest.mark.slow
def test_average_lfo_defaults_to_the_largest_fifth_of_the_scale(bnsl_fits, monkeypatch):
    """weights="lfo" without lfo= splits at the 80% quantile of the fits' scale (here the
    column ``C`` behind the law's input ``x``), the split backtest(average="lfo") uses."""
    from bayescale.compare import default_lfo

    assert default_lfo(bnsl_fits["power_law"]) == {"by": "C", "quantile": 0.8}
    assert default_lfo(bnsl_fits["power_law"], {"cutoff": 1e20}) == {"by": "C", "cutoff": 1e20}
    with warnings.catch_warnings():  # the short refits' sampling notes
        warnings.simplefilter("ignore", bs.SamplingWarning)
        avg = bs.average(bnsl_fits, weights="lfo", executor="serial")
    # the compare after it scores the refits the average made: none is run again
    import bayescale.parallel as par

    ran = []
    real = par.run_fits
    monkeypatch.setattr(par, "run_fits", lambda tasks, **kw: ran.extend(tasks) or real(tasks, **kw))
    table = bs.compare(bnsl_fits, lfo=dict(quantile=0.8, by="C"), executor="serial", warn=False)
    assert ran == []
    for name in bnsl_fits:
        assert avg.weights[name] == pytest.approx(table.loc[name, "lfo_weight"], abs=1e-9)
        assert table.attrs["lfo"]["refits"][name] is bnsl_fits[name]._lfo_refits[
            ("C", None, 0.8, "[]")]
    # another split refits; the kept refits are not pickled with the fit
    bs.compare(bnsl_fits, lfo=dict(quantile=0.7, by="C"), executor="serial", warn=False)
    assert len(ran) == 2
    assert "_lfo_refits" not in pickle.loads(pickle.dumps(bnsl_fits["power_law"])).__dict__
    # the data come from the broken power law: its forecasts of the largest fifth win
    assert avg.weights["broken_power_law"] > 0.8


@pytest.mark.slow
def test_average_decompose_adds_the_spread_between_laws(bnsl_fits):
    """Law of total variance: members' terms weighted, plus w-weighted spread of centres."""
    new = pd.DataFrame({"C": [1e21, 1e22, 1e23]})
    w = {"power_law": 0.3, "broken_power_law": 0.7}
    dec = bs.average(bnsl_fits, weights=w).decompose(new)
    parts = {k: f.decompose(new) for k, f in bnsl_fits.items()}
    for c in ("parameter", "noise", "extrapolation"):
        want = sum(w[k] * parts[k][c].to_numpy() for k in w)
        np.testing.assert_allclose(dec[c].to_numpy(), want, rtol=1e-12)
    # how far out each row is: the farthest any member's inputs say (both laws here: C)
    far = np.max([parts[k]["distance"].to_numpy() for k in w], axis=0)
    np.testing.assert_allclose(dec["distance"].to_numpy(), far)
    np.testing.assert_allclose(far, [0.0, 1.0, 2.0], atol=1e-9)  # the largest fitted C: 1e21
    # each member's centre: the median of its law's mean on the log scale (of its
    # conditional mean for an "ar1" fit, which carries the last fitted residual)
    from bayescale.calibration import decompose_with_centre

    m = {}
    for k, f in bnsl_fits.items():
        m[k] = np.median(np.log(f.draws(new, kind="mean", extrapolation=False).values), axis=0)
        if f.spec.likelihood == "ar1":
            m[k] = decompose_with_centre(f, new)[1]
    gap = m["power_law"] - m["broken_power_law"]
    np.testing.assert_allclose(dec["law_form"].to_numpy(), 0.3 * 0.7 * gap**2, rtol=1e-9)
    assert (dec["law_form"] > 0).all()
    shares = dec[[f"{c}_share" for c in ("parameter", "noise", "extrapolation", "law_form")]]
    np.testing.assert_allclose(shares.sum(axis=1).to_numpy(), 1.0)
    # one law with all the weight: its own decomposition, no law-form term
    one = bs.average(bnsl_fits, weights={"broken_power_law": 1.0}).decompose(new)
    np.testing.assert_allclose(one["total"], parts["broken_power_law"]["total"], rtol=1e-12)
    assert (one["law_form"] == 0).all()


@pytest.mark.slow
def test_average_plot_draws_each_law_and_the_band(bnsl_fits):
    import matplotlib

    matplotlib.use("Agg")
    avg = bs.average(bnsl_fits, weights={"power_law": 0.4, "broken_power_law": 0.6})
    ax = avg.plot(prob=0.8)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "power_law median (weight 0.40)" in labels
    assert "broken_power_law median (weight 0.60)" in labels
    assert "average, 80% predictive" in labels
    # each law's line is its own posterior predictive median over the plotted grid
    line = next(ln for ln in ax.get_lines() if ln.get_label().startswith("power_law"))
    x, y = line.get_data()
    want = bnsl_fits["power_law"].predict(pd.DataFrame({"C": x}), prob=0.8)["median"]
    np.testing.assert_allclose(y, want.to_numpy(), rtol=1e-9)
    assert x.max() == pytest.approx(10 * simulate_bnsl()["C"].max())
    assert ax.get_yscale() == "log"
    # new rows are drawn as forecasts (they were ignored for one-input laws), as is Fit.plot
    for obj in (avg, bnsl_fits["power_law"]):
        ax = obj.plot(new={"C": [1e23]}, prob=0.8)
        assert "forecast" in [t.get_text() for t in ax.get_legend().get_texts()]
        pred = obj.predict({"C": [1e23]}, prob=0.8)
        bars = next(c for c in ax.containers if c.get_label() == "forecast")
        np.testing.assert_allclose(np.asarray(bars.lines[0].get_ydata(), dtype=float),
                                   pred["median"].to_numpy(dtype=float), rtol=1e-9)


def test_fit_pickles(bnsl_fits):
    f = bnsl_fits["power_law"]
    g = pickle.loads(pickle.dumps(f))
    assert g.law is f.law
    new = {"C": [1e22]}
    np.testing.assert_array_equal(g.draws(new).values, f.draws(new).values)


def test_compare_rejects_bad_input(bnsl_fits):
    with pytest.raises(BayescaleError, match="at least two fits"):
        bs.compare({"only": bnsl_fits["power_law"]})
    with pytest.raises(BayescaleError, match="Unknown lfo"):
        bs.compare(bnsl_fits, lfo=dict(cutof=1e20))
    # not ArviZ's "The method lfo, to compute weights, is not supported."
    with pytest.raises(BayescaleError, match=r"method must be one of \['stacking', "
                       r"'BB-pseudo-BMA', 'pseudo-BMA'\] .*got 'lfo' \(leave-future-out "
                       r"scores: lfo=dict\(quantile=0.8, by='C'\)\)"):
        bs.compare(bnsl_fits, method="lfo")
    with pytest.raises(BayescaleError, match="cutoff"):
        bs.compare(bnsl_fits, lfo=dict(cutoff=1e30, by="C"))
    with pytest.raises(BayescaleError, match="unknown fits"):
        bs.average(bnsl_fits, weights={"chinchilla": 1.0})
    for call in (bs.compare, bs.average):
        with pytest.raises(BayescaleError, match=r"takes fits .* 'oops' is a str"):
            call({**bnsl_fits, "oops": "chinchilla"})
        # a list is named by the fits' laws, unless two share a law
        pl = bnsl_fits["power_law"]
        with pytest.raises(BayescaleError, match=r"two fits of the list are of law "
                           r"'power_law'. Name them in a dict"):
            call([pl, pl])
        with pytest.raises(BayescaleError, match="or a list of fits of different laws; got a str"):
            call("power_law")


def test_bb_pseudo_bma_weights_are_the_same_every_call(bnsl_fits):
    # ArviZ's Bayesian bootstrap, unseeded, gave other weights at every call
    runs = [bs.compare(bnsl_fits, method="BB-pseudo-BMA")["weight"] for _ in range(2)]
    pd.testing.assert_series_equal(runs[0], runs[1])
    other = bs.compare(bnsl_fits, method="BB-pseudo-BMA", random_seed=5)["weight"]
    assert not np.allclose(other.to_numpy(), runs[0].to_numpy(), rtol=0, atol=1e-12)


def test_a_list_of_fits_is_named_by_their_laws(bnsl_fits):
    as_list = list(bnsl_fits.values())
    pd.testing.assert_frame_equal(bs.compare(as_list), bs.compare(bnsl_fits))
    avg = bs.average(as_list)
    assert avg.weights == bs.average(bnsl_fits).weights
    assert list(avg.weights) == ["power_law", "broken_power_law"]


# ----------------------------------------------------------------------------- executors

EXEC_KW = dict(x={"x": "C"}, sampler="pymc", draws=100, tune=100, chains=1, random_seed=5,
               progressbar=False)


def two_series():
    rng = np.random.default_rng(11)
    out = {}
    for k, (E, A) in {"a": (1.8, 40.0), "b": (2.2, 90.0)}.items():
        C = np.logspace(17, 21, 12)
        L = (E + A * C**-0.08) * np.exp(0.01 * rng.standard_normal(C.size))
        out[k] = pd.DataFrame({"C": C, "loss": L})
    return out


def posterior_array(f):
    return np.stack([f.posterior[v].values for v in ("E", "A", "alpha", "sigma")])


@pytest.fixture(scope="module")
def serial_fits():
    return bs.fit_many(two_series(), "power_law", executor="serial", warn=False, **EXEC_KW)


@pytest.mark.slow
def test_fit_many_process_pool_equals_serial(serial_fits):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as ex:
        fits = bs.fit_many(two_series(), "power_law", executor=ex, warn=False, **EXEC_KW)
    assert list(fits) == ["a", "b"]
    for k in fits:
        np.testing.assert_array_equal(posterior_array(fits[k]), posterior_array(serial_fits[k]))
    # and the series were really fitted separately
    e_a, e_b = (float(fits[k].posterior["E"].mean()) for k in ("a", "b"))
    assert abs(e_a - e_b) > 0.1


@pytest.mark.slow
def test_fit_many_splits_one_long_frame_by_a_column(serial_fits):
    # one tidy frame with a series column, as notebooks hold many curves
    from bayescale.data import series_frames

    long = pd.concat(two_series(), names=["curve"]).reset_index(level=0)
    fits = bs.fit_many(long, "power_law", by="curve", executor="serial", warn=False, **EXEC_KW)
    assert list(fits) == ["a", "b"]
    for k in fits:
        np.testing.assert_array_equal(posterior_array(fits[k]), posterior_array(serial_fits[k]))
    # df.groupby(column) hands fit_many (and fit_batch) the very same series
    keys, items = series_frames(long.groupby("curve"), "fit_many")
    by_keys, by_items = series_frames(long, "fit_many", by="curve")
    assert keys == by_keys == ["a", "b"]
    for a, b in zip(items, by_items, strict=True):
        pd.testing.assert_frame_equal(a, b)


@pytest.mark.slow
def test_fit_many_dask_equals_serial(serial_fits):
    import distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster:
        with distributed.Client(cluster) as client:
            fits = bs.fit_many(two_series(), "power_law", executor=client.get_executor(),
                               warn=False, **EXEC_KW)
    for k in fits:
        np.testing.assert_array_equal(posterior_array(fits[k]), posterior_array(serial_fits[k]))


def test_fit_many_rejects_non_frames():
    with pytest.raises(BayescaleError, match="takes one DataFrame per series: .*; series 'a' "
                       "is a list"):
        bs.fit_many({"a": [1, 2, 3]}, "power_law", executor="serial")
    long = pd.concat(two_series(), names=["curve"]).reset_index(level=0)
    for call in (bs.fit_many, bs.fit_batch):
        with pytest.raises(DataError, match=f"{call.__name__} takes one DataFrame per series"
                           ".*got one table without by="):
            call(long, "power_law")
    with pytest.raises(DataError, match=r"Column 'Curve' \(named in by=\) is missing. Did "
                       "you mean 'curve'?"):
        bs.fit_many(long, "power_law", by="Curve", executor="serial")
    with pytest.raises(DataError, match=r"missing labels at row #0 \(label 0\)"):
        bs.fit_many(long.assign(curve=[None] + list(long["curve"][1:])), "power_law",
                    by="curve", executor="serial")
    with pytest.raises(BayescaleError, match="executor must be"):
        bs.fit_many([two_series()["a"]], "power_law", x={"x": "C"}, executor="threads")


def test_fit_many_checks_every_series_before_sampling_any(monkeypatch):
    # one bad series among good ones: the error names it, and nothing was sampled first
    from bayescale import parallel

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampled before every series was checked")

    monkeypatch.setattr(parallel, "run_fits", no_sampling)
    frames = {**two_series(), "bad": two_series()["a"].assign(loss=-1.0)}
    with pytest.raises(DataError, match=r"^series 'bad': Response column 'loss' must be "
                       "positive"):
        bs.fit_many(frames, "power_law", x={"x": "C"}, executor="serial")
    # the series' model arguments are those of fit (here a mapping that does not exist)
    with pytest.raises(DataError, match=r"^series 'a': Column 'flops'"):
        bs.fit_many(two_series(), "power_law", x={"x": "flops"}, executor="serial",
                    likelihood="auto", draws=10)


def _runs(scale=(1.0, 1.3, 1.6), shift=0.0):
    rows = [{"model": m, "C": c * a, "loss": 1.5 + shift + 50 * (c * a) ** -0.1}
            for m, a in zip("abc", scale) for c in np.logspace(15, 20, 8)]
    return pd.DataFrame(rows)


POWER = {"E": 1.5, "A": 50.0, "alpha": 0.1, "sigma": 0.01, "nu": 5.0}


def test_lfo_says_when_every_held_out_run_has_training_rows(monkeypatch):
    """The note on runs seen below the cutoff is a warning (was: TypeError, the function's
    own ``warn`` flag called as if it were warnings.warn)."""
    from bayescale import parallel
    from bayescale.compare import leave_future_out

    f = fixed_fit(_runs(), "power_law", POWER, x={"x": "C"}, y="loss", run="model")

    def stop(*args, **kwargs):
        raise RuntimeError("refits would start here")

    monkeypatch.setattr(parallel, "run_fits", stop)
    with pytest.warns(UserWarning, match=r"every run with rows above the cutoff \('a', 'b', "
                      r"'c'\) also has rows below it"):
        with pytest.raises(RuntimeError, match="refits would start here"):
            leave_future_out({"a": f, "b": f}, quantile=0.8, by="C")


def test_fits_of_other_rows_or_likelihoods_are_not_compared_or_averaged():
    """Same row count, other data: compared and averaged silently before (row i of one
    set mixed with row i of the other); a count likelihood against a score density: the
    true model lost by about log n a row."""
    from bayescale.compare import check_comparable

    f1 = fixed_fit(_runs(), "power_law", POWER, x={"x": "C"}, y="loss")
    f2 = fixed_fit(_runs(shift=0.5), "power_law", POWER, x={"x": "C"}, y="loss")
    check_comparable({"a": f1, "b": f1}, "compared")  # the same rows: fine
    for call in (lambda: bs.compare({"a": f1, "b": f2}),
                 lambda: bs.average({"a": f1, "b": f2}, weights={"a": 0.5, "b": 0.5})):
        with pytest.raises(BayescaleError, match=r"Fits 'a' and 'b' were fitted to different "
                           "rows"):
            call()
    acc = pd.DataFrame({"C": np.logspace(20, 23, 8), "accuracy": np.linspace(0.3, 0.6, 8),
                        "n": 1000})
    sig = {"ceiling": 0.9, "k": 1.0, "x0": 22.0}
    counts = fixed_fit(acc, "sigmoid_compute", sig, x={"chance": 0.25})
    scores = fixed_fit(acc, "sigmoid_compute", {**sig, "phi": 100.0}, x={"chance": 0.25},
                       likelihood="beta")
    with pytest.raises(BayescaleError, match=r"mix counts .* with scores .* about log n a row"):
        check_comparable({"binomial": counts, "beta": scores}, "compared")


def test_log_density_with_the_drift_is_that_of_the_calibrated_forecast():
    """extrapolation=True scores the forecast predict's intervals come from: with a known
    drift tau * d (h = 1) and Normal noise on log y, the density is Normal with variance
    sigma^2 + (tau d)^2 (closed form), not the plain sigma^2 (the backtest's lpd scored the
    plain one beside intervals and CRPS of the calibrated one)."""
    from conftest import with_fixed_drift

    from bayescale.compare import log_predictive_density
    from bayescale.laws import power_law

    truth = dict(E=1.7, A=30.0, alpha=0.3)
    x = np.geomspace(1e7, 1e9, 20)
    train = pd.DataFrame({"N": x, "loss": power_law(x, **truth)})
    f = fixed_fit(train, "power_law", {**truth, "sigma": 0.01}, draws=20000,
                  x={"x": "N"}, likelihood="normal")
    f, tau = with_fixed_drift(f, 0.05)
    far = np.array([1e9, 1e10, 1e11])  # 0, 1 and 2 decades beyond the largest fitted N
    mu = power_law(far, **truth)
    y = mu * np.exp([0.0, 0.03, -0.08])
    test = pd.DataFrame({"N": far, "loss": y})
    sd = np.sqrt(0.01**2 + (tau * np.array([0.0, 1.0, 2.0])) ** 2)
    want = stats.norm.logpdf(np.log(y), np.log(mu), sd)
    got = log_predictive_density(f, test, extrapolation=True, random_seed=0)
    np.testing.assert_allclose(got, want, atol=0.03)
    plain = log_predictive_density(f, test)  # leave-future-out's: the law's own density
    np.testing.assert_allclose(plain, stats.norm.logpdf(np.log(y), np.log(mu), 0.01),
                               rtol=1e-9)
    assert got[2] > plain[2] + 5  # 8% off at two decades: far likelier with the drift


def test_average_refuses_what_it_would_ignore_or_misweigh():
    """lfo= with weights other than "lfo" was dropped (stacking weights, no word); weights
    must be finite and non-negative; the mixture's density normalises over its members."""
    from bayescale.compare import Averaged, log_predictive_density

    f = fixed_fit(_runs(), "power_law", POWER, x={"x": "C"}, y="loss")
    with pytest.raises(BayescaleError, match="lfo= sets the split of weights='lfo'"):
        bs.average({"a": f, "b": f}, lfo=dict(quantile=0.5))
    for call in (bs.average, bs.compare):  # a bad executor, even where it is not used
        with pytest.raises(BayescaleError, match="executor must be None"):
            call({"a": f, "b": f}, executor="threads")
    for w in ({"a": 1.0, "b": -0.5}, {"a": np.nan}, {"a": 0.0}):
        with pytest.raises(BayescaleError, match="finite, non-negative and not all zero"):
            bs.average({"a": f, "b": f}, weights=w)
    # its own seed given again gives the same draws as none given (members drew with
    # theirs when none was given)
    f2 = fixed_fit(_runs(), "power_law", POWER, x={"x": "C"}, y="loss", jitter=0.1, seed=9)
    avg = Averaged(fits={"a": f2, "b": f2}, weights={"a": 0.5, "b": 0.5}, random_seed=3)
    rows = _runs().iloc[:3]
    np.testing.assert_array_equal(avg.draws(rows, extrapolation=False).values,
                                  avg.draws(rows, random_seed=3, extrapolation=False).values)
    # one member, unnormalised weights: its own density (was log 2 too high with 2 : -1,
    # a negative weight now refused)
    rows = _runs().iloc[:5]
    odd = Averaged(fits={"a": f, "b": f}, weights={"a": 2.0, "b": 0.0}, random_seed=0)
    np.testing.assert_allclose(odd.log_predictive_density(rows),
                               log_predictive_density(f, rows), rtol=1e-12)


def test_lfo_split_by_compute_is_not_taken_from_a_law_of_N_alone(monkeypatch):
    """by="C" for a power law of N split by N, unsaid, so beside chinchilla the laws' held-out
    rows differed and bs.average(weights="lfo") failed or not by the order of the fits. The
    default split is now one every fit has, whatever their order; by="C" names the fix."""
    from conftest import simulate_chinchilla

    from bayescale import parallel
    from bayescale.compare import _by_frame, default_lfo, leave_future_out

    df = simulate_chinchilla(n=40, E=1.7, A=400.0, alpha=0.34, B=410.0, beta=0.28)
    fc = fixed_fit(df, "chinchilla", dict(E=1.7, A=400.0, alpha=0.34, B=410.0, beta=0.28,
                                          sigma=0.01, nu=30.0))
    fp = fixed_fit(df, "power_law", dict(E=1.7, A=60.0, alpha=0.1, sigma=0.01, nu=30.0),
                   x={"x": "N"})
    for fits in ({"c": fc, "p": fp}, {"p": fp, "c": fc}):
        assert default_lfo(fits) == {"by": "N", "quantile": 0.8}
    assert default_lfo({"c": fc, "c2": fc}) == {"by": "C", "quantile": 0.8}
    with pytest.raises(DataError, match="by='C'.*has no compute.*by='N'"):
        _by_frame(fp, fp.user_frame(), "C")

    def stop(*args, **kwargs):
        raise RuntimeError("refits would start here")

    monkeypatch.setattr(parallel, "run_fits", stop)
    with pytest.raises(RuntimeError, match="refits would start here"):  # same rows held out
        leave_future_out({"p": fp, "c": fc}, quantile=0.8, by="N", warn=False)


def test_refit_with_another_grouping_takes_its_own_levels_and_priors():
    """fit.refit(pooled=None) sent the fit's levels of the pooled column (a DataError about
    levels= the user never passed); refit(run=None) its sigma_run prior (an unknown prior)."""
    from bayescale.compare import refit_kwargs
    from bayescale.fit import prepare_spec

    model_args = ("y", "x", "priors", "pooled", "run", "likelihood", "group_scale",
                  "correlated", "levels")
    rows = _runs().assign(family=lambda d: d["model"].map({"a": "f", "b": "f", "c": "g"}))
    pooled = fixed_fit(rows, "power_law", {**POWER, "E_z_family": np.zeros(2),
                                           "sigma_E_family": 0.1}, x={"x": "C"}, y="loss",
                       pooled={"E": "family"}, run="model")
    run = fixed_fit(rows, "power_law", {**POWER, "sigma_run": 0.01}, x={"x": "C"},
                    y="loss", run="model")
    for f, overrides in ((pooled, dict(pooled=None)), (pooled, dict(run=None)),
                         (run, dict(run=None))):
        kw = refit_kwargs(f, **overrides)
        spec, _ = prepare_spec(f.user_frame(), f.law, **{k: kw[k] for k in model_args})
        assert spec.run == kw["run"] and ("sigma_run" in spec.priors) == bool(kw["run"])
    kept = refit_kwargs(pooled, pooled=None)  # the run keeps its declared levels
    assert list(kept["levels"]) == ["model"]


def test_plot_of_an_average_of_two_input_laws_marks_its_forecasts():
    """Laws of N and D: the forecast rows were merged into the grey error bars of the
    training rows, unmarked; now they are the red forecast points, drawn above the data."""
    import matplotlib
    from conftest import simulate_chinchilla

    from bayescale.compare import Averaged

    matplotlib.use("Agg")
    truth = dict(E=1.7, A=400.0, alpha=0.34, B=410.0, beta=0.28)
    df = simulate_chinchilla(n=30, **truth)
    a = fixed_fit(df, "chinchilla", {**truth, "sigma": 0.01, "nu": 30.0})
    b = fixed_fit(df, "chinchilla", {**truth, "E": 1.75, "sigma": 0.01, "nu": 30.0})
    avg = Averaged(fits={"a": a, "b": b}, weights={"a": 0.5, "b": 0.5}, random_seed=0)
    new = {"N": [7e10, 1e8], "D": [1.4e12, 2e9]}  # one far beyond, one inside the data
    ax = avg.plot(new=new, extrapolation=False)
    bars = next(c for c in ax.containers if c.get_label() == "forecast")
    pred = avg.predict(new, extrapolation=False)
    np.testing.assert_allclose(np.asarray(bars.lines[0].get_ydata(), dtype=float),
                               pred["median"].to_numpy(dtype=float), rtol=1e-9)
    assert bars.lines[0].get_zorder() > 3  # above the data points
    assert ax.get_xlabel() == "compute 6 N D (FLOPs)"


def _captured_refits(monkeypatch):
    """Make run_fits record its tasks and stop before sampling."""
    from bayescale import parallel

    seen = []

    def stop(tasks, **kwargs):
        seen.extend(tasks)
        raise RuntimeError("refits would start here")

    monkeypatch.setattr(parallel, "run_fits", stop)
    return seen


def test_lfo_by_a_falling_input_holds_out_the_lowest_losses(monkeypatch):
    """sigmoid_of_loss is a law of the loss L, which falls as models grow: the default
    split (by="L", quantile=0.8) held out the *highest* losses, the smallest models, so
    average(weights="lfo") rewarded forecasting backwards."""
    from bayescale.backtest import holdout_mask
    from bayescale.compare import default_lfo, leave_future_out

    L = np.linspace(2.0, 4.0, 16)
    acc = pd.DataFrame({"L": L, "accuracy": np.linspace(0.7, 0.3, 16), "n": 1000})
    f = fixed_fit(acc, "sigmoid_of_loss", {"ceiling": 0.9, "k": 3.0, "L0": 3.0},
                  x={"chance": 0.25})
    assert default_lfo(f) == {"by": "L", "quantile": 0.8}
    seen = _captured_refits(monkeypatch)
    with pytest.raises(RuntimeError, match="refits would start here"):
        leave_future_out({"a": f, "b": f}, quantile=0.8, by="L", warn=False)
    train = seen[0][0]
    assert train["L"].min() > 2.3 and train["L"].max() == 4.0  # the lowest fifth held out
    # the backtest's holdout dict, for the same reason
    mask = holdout_mask(acc, dict(by="L", quantile=0.8), falling=True)
    assert mask.sum() == 3 and acc.loc[mask, "L"].max() < 2.3


def test_lfo_mixing_a_law_of_C_and_one_of_N_and_D_splits_the_same_rows(monkeypatch):
    """C and 6 N D of one run can differ in the last bit: a cutoff at such a run's C put it
    on either side for the two laws, and the user was told the laws' rows differ."""
    from conftest import simulate_chinchilla

    from bayescale.compare import leave_future_out

    df = simulate_chinchilla(n=40, E=1.7, A=400.0, alpha=0.34, B=410.0, beta=0.28)
    df["C"] = 6.0 * df["N"] * df["D"]
    i = 30
    df.loc[i, "C"] = np.nextafter(df.loc[i, "C"], 0.0)  # one run's C a bit below its 6 N D
    fc = fixed_fit(df, "chinchilla", dict(E=1.7, A=400.0, alpha=0.34, B=410.0, beta=0.28,
                                          sigma=0.01, nu=30.0))
    fp = fixed_fit(df, "power_law", dict(E=1.7, A=60.0, alpha=0.1, sigma=0.01, nu=30.0),
                   x={"x": "C"})
    cut = float(df.loc[i, "C"])
    six = 6.0 * df["N"] * df["D"]
    assert ((df["C"] > cut) != (six > cut)).any()  # the two laws' own masks would differ
    seen = _captured_refits(monkeypatch)
    with pytest.raises(RuntimeError, match="refits would start here"):
        leave_future_out({"c": fc, "p": fp}, cutoff=cut, by="C", warn=False)
    assert len(seen[0][0]) == len(seen[1][0])


def test_compare_is_on_the_log_scale_and_uses_arviz_pareto_threshold(bnsl_fits):
    import arviz as az

    from bayescale.compare import _pareto_note

    with az.rc_context({"stats.ic_scale": "deviance"}):  # was -2 x elpd under it
        dev = bs.compare(bnsl_fits)
    log = bs.compare(bnsl_fits)
    pd.testing.assert_series_equal(dev["elpd_loo"], log["elpd_loo"])
    # 400 draws: ArviZ's threshold 1 - 1/log10(400) = 0.616; a k of 0.67 is not reliable
    n, note = _pareto_note(np.array([0.1, 0.674]), 1 - 1 / np.log10(400))
    assert n == 1 and "k > 0.62" in note
    assert _pareto_note(np.array([0.1, 0.674]))[0] == 0  # the 0.7 of many draws


def test_bad_lfo_options_and_draw_counts_are_named():
    f = fixed_fit(_runs(), "power_law", POWER, x={"x": "C"}, y="loss")
    for lfo in (0.8, ["C"]):
        with pytest.raises(BayescaleError, match="lfo= takes a dict of split options"):
            bs.compare({"a": f, "b": f}, lfo=lfo)
    from bayescale.compare import leave_future_out

    with pytest.raises(BayescaleError, match="cutoff must be a number"):
        leave_future_out({"a": f, "b": f}, cutoff="big", by="C")
    avg = bs.average({"a": f, "b": f}, weights={"a": 0.5, "b": 0.5})
    for n in (-5, 2.5):
        with pytest.raises(BayescaleError, match="n is the number of draws"):
            avg.draws(n=n)


def test_compare_checks_its_arguments_before_any_work(monkeypatch):
    """sort_by was checked after PSIS-LOO and every leave-future-out refit (a typo threw
    them away); a text or negative random_seed failed inside scipy/numpy."""
    import arviz as az

    def no_work(*args, **kwargs):
        raise AssertionError("the comparison started before its arguments were checked")

    monkeypatch.setattr(az, "compare", no_work)
    f = fixed_fit(_runs(), "power_law", POWER, x={"x": "C"}, y="loss")
    fits = {"a": f, "b": f}
    with pytest.raises(bs.BayescaleError, match="sort_by must be 'loo' or 'lfo', got 'lf0'"):
        bs.compare(fits, lfo=dict(quantile=0.8), sort_by="lf0")
    with pytest.raises(bs.BayescaleError, match=r"sort_by='lfo' needs lfo="):
        bs.compare(fits, sort_by="lfo")
    for seed in ("0", -1):
        with pytest.raises(bs.BayescaleError, match="random_seed must be"):
            bs.compare(fits, random_seed=seed)


def test_average_and_averaged_check_their_weights_and_seeds():
    """A single fit skipped the checks of weights= and lfo=; a seed of -1 or "x" failed
    at predict() with NumPy's message; an Averaged made by hand with all-zero weights
    failed with "min() arg is an empty sequence", and negative ones dropped a fit."""
    f = fixed_fit(_runs(), "power_law", POWER, x={"x": "C"}, y="loss")
    g = fixed_fit(_runs(), "power_law", {**POWER, "alpha": 0.11}, x={"x": "C"}, y="loss")
    with pytest.raises(BayescaleError, match="weights must be 'stacking'.*got 'bogus'"):
        bs.average([f], weights="bogus")
    with pytest.raises(BayescaleError, match="quantile"):
        bs.average([f], weights="lfo", lfo=dict(quantile=1.5))
    with pytest.raises(BayescaleError, match="random_seed must be None or a non-negative"):
        bs.average({"f": f, "g": g}, weights={"f": 1, "g": 1}, random_seed=-1)
    avg = bs.average({"f": f, "g": g}, weights={"f": 1, "g": 3})
    assert avg.weights == {"f": 0.25, "g": 0.75}
    with pytest.raises(BayescaleError, match="random_seed must be None or a non-negative"):
        avg.predict({"C": [1e21]}, random_seed="x")
    for bad in ({"f": 0, "g": 0}, {"f": -1, "g": 2}, {"h": 1}):
        with pytest.raises(BayescaleError, match="weights"):
            bs.Averaged(fits={"f": f, "g": g}, weights=bad)
    with pytest.raises(BayescaleError, match="non-empty dict"):
        bs.Averaged(fits={}, weights={})
    # made by hand, the weights are normalised as average()'s are
    assert bs.Averaged(fits={"f": f, "g": g}, weights={"f": 2.0}).weights == {"f": 1.0,
                                                                              "g": 0.0}
