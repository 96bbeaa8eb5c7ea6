"""Compile once, refit many (nutpie and JAX paths) and batched JAX fits.

Budget: about 40-60 CPU-seconds in all (two nutpie compilations, two JAX
program compilations, one batched program). Everything runs on the 3-parameter
power law with 2 chains x 200 draws.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale import compiled as C
from bayescale.errors import BayescaleError
from bayescale.model import make_spec

TRUE = {"E": 1.5, "A": 30.0, "alpha": 0.3}
SETTINGS = dict(draws=200, tune=200, chains=2, warn=False)


def simulate_power(n: int, seed: int, E=1.5, A=30.0, alpha=0.3, noise=0.01) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = np.exp(rng.uniform(np.log(1e3), np.log(1e7), n))
    loss = (E + A * x ** (-alpha)) * np.exp(noise * rng.standard_normal(n))
    return pd.DataFrame({"x": x, "loss": loss})


# three series with different truths and row counts (all pad to the 32-row bucket)
SERIES = [
    (simulate_power(18, 1), dict(E=1.5, A=30.0, alpha=0.3)),
    (simulate_power(25, 2, alpha=0.4), dict(E=1.5, A=30.0, alpha=0.4)),
    (simulate_power(31, 3, E=2.0), dict(E=2.0, A=30.0, alpha=0.3)),
]
SERIES = [(df, {**TRUE, **t}) for df, t in SERIES]


def _spec(df, law="power_law", priors=None):
    return make_spec(
        df.rename(columns={"loss": "y"}),
        bs.get_law(law),
        priors=priors,
        pooled={},
        likelihood=None,
        x={},
        y="loss",
    )


def test_structure_key_ignores_data_but_not_structure():
    a, b = SERIES[0][0], SERIES[2][0]
    assert C.structure_key(_spec(a)) == C.structure_key(_spec(b))
    assert C.structure_key(_spec(a)) != C.structure_key(_spec(a, priors={"alpha": 0.3}))
    assert C.structure_key(_spec(a)) != C.structure_key(
        make_spec(
            a.rename(columns={"loss": "y"}),
            bs.get_law("power_law"),
            priors=None,
            pooled={},
            likelihood="normal",
            x={},
            y="loss",
        )
    )


def test_bucket_padding():
    assert [C.bucket(n) for n in (1, 16, 17, 240, 256, 257)] == [16, 16, 32, 256, 256, 512]
    arrays = {"x": np.arange(3.0), "y": np.ones(3), "x_log_centre": np.array(2.0)}
    out = C._pad(arrays, ("x", "y"), 3, 16)
    assert out["x"].shape == (16,) and out["x"][-1] == 2.0
    assert out["x_log_centre"].shape == ()
    assert out["__mask__"].sum() == 3


def test_unknown_sampler_is_rejected():
    with pytest.raises(BayescaleError, match="sampler must be one of"):
        bs.fit(SERIES[0][0], "power_law", sampler="fast")


def test_auto_sampler_choice_follows_the_measurements(monkeypatch):
    import bayescale.sampling as S

    monkeypatch.setattr(S, "jax_platform", lambda: "cpu")
    assert C.choose_sampler() == "nutpie"
    assert C.choose_sampler(batch=True) == "nutpie"
    # one job per process (the command line): the JAX path, whose programs are stored
    assert C.choose_sampler(one_shot=True) == "jax"
    monkeypatch.setattr(S, "jax_platform", lambda: "gpu")
    # one fit is latency-bound on a GPU: the host's CPU sampler
    assert C.choose_sampler() == "nutpie"
    assert C.choose_sampler(one_shot=True) == "nutpie"
    # many series vectorised in one program: the GPU
    assert C.choose_sampler(batch=True) == "jax"
    monkeypatch.setattr(C, "_nutpie_installed", lambda: False)
    assert C.choose_sampler() == "jax"
    monkeypatch.setattr(S, "jax_platform", lambda: "cpu")
    assert C.choose_sampler() == "jax"


@pytest.mark.slow
def test_nutpie_refit_swaps_data_without_recompiling_and_matches_fresh_fit(monkeypatch):
    C.clear_cache()
    (a, _), (b, truth_b) = SERIES[0], SERIES[2]
    f_a = bs.fit(a, "power_law", sampler="nutpie", random_seed=11, **SETTINGS)
    assert C.COMPILE_COUNTS["nutpie"] == 1
    f_b = bs.fit(b, "power_law", sampler="nutpie", random_seed=11, **SETTINGS)
    assert C.COMPILE_COUNTS["nutpie"] == 1, "a data swap (new n) must not recompile"
    assert f_b.settings["timing"]["compiled"] is False
    assert len(f_b.data) != len(f_a.data)
    # the first fit's model still holds its own data (the cache swaps into a copy)
    np.testing.assert_array_equal(C.model_arrays(f_a.model)["y"], np.log(a["loss"].to_numpy()))
    # same layout as pm.sample output
    for g in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert g in f_b.idata.groups()
    assert "diverging" in f_b.idata.sample_stats
    assert f_b.idata.log_likelihood["y_obs"].shape == (2, 200, len(b))
    assert set(f_b.posterior.data_vars) >= {"E", "A", "alpha", "sigma", "nu"}
    # recovery: the swapped data really were used
    assert abs(float(f_b.posterior["E"].mean()) - truth_b["E"]) < 0.1
    # a fresh compile on b gives the very same draws for the same seed
    C.clear_cache()
    fresh = bs.fit(b, "power_law", sampler="nutpie", random_seed=11, **SETTINGS)
    assert C.COMPILE_COUNTS["nutpie"] == 1
    for v in ("E", "A", "alpha", "sigma", "nu"):
        np.testing.assert_array_equal(fresh.posterior[v].values, f_b.posterior[v].values)
    np.testing.assert_array_equal(
        fresh.idata.log_likelihood["y_obs"].values, f_b.idata.log_likelihood["y_obs"].values
    )
    # refits of a model compiled here run here, not in new workers that compile it again
    from bayescale.compare import refit_kwargs
    from bayescale.parallel import compiled_here, run_fits

    task = (a, "power_law", refit_kwargs(fresh))
    assert compiled_here([task, (b, "power_law", refit_kwargs(fresh, random_seed=3))])
    other = refit_kwargs(fresh, priors={"alpha": bs.Prior("Beta", alpha=2.0, beta=5.0)})
    assert not compiled_here([task, (a, "power_law", other)])  # another structure
    assert not compiled_here([(a, "power_law", refit_kwargs(fresh, sampler="pymc"))])
    before = os.environ.get("BAYESCALE_NO_PROGRESS")
    refits = run_fits([task, task], warn=False)  # executor=None: the default pool, or here
    assert os.environ.get("BAYESCALE_NO_PROGRESS") == before  # the caller's setting kept
    assert C.COMPILE_COUNTS["nutpie"] == 1
    assert [f.settings["timing"]["compiled"] for f in refits] == [False, False]
    np.testing.assert_array_equal(refits[0].posterior["E"].values,
                                  refits[1].posterior["E"].values)
    # an option nutpie does not have is named, not an AttributeError from its settings
    with pytest.raises(bs.BayescaleError, match="sampler='nutpie' has no option 'max_depth'"):
        fresh.refit(max_depth=8)
    # fit_batch's nutpie path passes max_tree_depth on (it once dropped it), as a data swap
    (shallow,) = bs.fit_batch([a], "power_law", sampler="nutpie", max_tree_depth=2,
                              likelihood=fresh.spec.likelihood,
                              random_seed=1, draws=50, tune=50, chains=1, warn=False)
    assert int(shallow.idata.sample_stats["depth"].max()) <= 2
    # bs.fit names it max_tree_depth on every sampler (nutpie's own maxdepth: it was dropped
    # without a word), and refits (calibration, leave-future-out) keep it
    assert int(shallow.refit(random_seed=2, warn=False).idata.sample_stats["depth"].max()) <= 2
    assert C.COMPILE_COUNTS["nutpie"] == 1
    with pytest.raises(BayescaleError, match="chain_method= and max_tree_depth= are options"):
        bs.fit(a, "power_law", sampler="nutpie", chain_method="vectorized",
               likelihood=fresh.spec.likelihood, **SETTINGS)
    # progressbar=True reaches nutpie (the compiled path always turned it off)
    import nutpie

    asked = []
    real = nutpie.sample

    def spy(*args, **kwargs):
        asked.append(kwargs.get("progress_bar"))
        return real(*args, **kwargs)

    monkeypatch.setattr(nutpie, "sample", spy)
    for shown in (True, False):
        bs.fit(a, "power_law", sampler="nutpie", progressbar=shown, random_seed=1, draws=20,
               tune=20, chains=1, warn=False, likelihood=fresh.spec.likelihood)
    assert asked == [True, False]


def test_refits_that_drop_a_run_or_rename_trials_keep_the_compiled_structure(monkeypatch):
    """A refit keeps the fit's levels (``levels=``) and may name its trials column ``n``:
    neither changes the graph, so neither may send the refits to new worker processes
    that compile again."""
    from types import SimpleNamespace

    from bayescale.fit import prepare_spec
    from bayescale.parallel import compiled_here

    x = np.geomspace(1e3, 1e7, 30)
    df = pd.DataFrame({"x": x, "loss": 1.5 + 30 * x ** -0.3,
                       "run": np.repeat(["r0", "r1", "r2"], 10)})
    kw = dict(run="run", likelihood="studentt", sampler="nutpie")
    spec, _ = prepare_spec(df, "power_law", y=None, x=None, priors=None, **{
        k: kw[k] for k in ("run", "likelihood")})
    monkeypatch.setitem(C._CACHE, C.structure_key(spec),
                        SimpleNamespace(_nutpie=object(), _jax=None, _programs={}))
    below = df[df["run"] != "r2"]  # a whole run held out
    assert compiled_here([(below, "power_law", dict(kw, levels=dict(spec.levels)))])
    assert not compiled_here([(below, "power_law", kw)])  # two levels: another structure
    # the trials column's name only labels it
    acc = pd.DataFrame({"C": np.geomspace(1e19, 1e23, 8), "chance": 0.25, "questions": 500,
                        "accuracy": np.linspace(0.3, 0.8, 8)})
    keys = [C.structure_key(prepare_spec(acc.rename(columns={"questions": t}),
                                         "sigmoid_compute", y=None, x=None, priors=None,
                                         trials=t)[0]) for t in ("questions", "n")]
    assert keys[0] == keys[1]


@pytest.mark.slow
def test_jax_refit_reuses_program_matches_fresh_fit_and_batch_matches_separate(monkeypatch):
    # programs in memory only: "fresh" below means built again, not loaded from disk
    # (loading: tests/test_programs.py)
    monkeypatch.setenv("BAYESCALE_JAX_PROGRAMS", "0")
    C.clear_cache()
    (a, _), (b, truth_b) = SERIES[0], SERIES[1]
    f_a = bs.fit(a, "power_law", sampler="jax", random_seed=3, **SETTINGS)
    counts = dict(C.COMPILE_COUNTS)
    assert counts == {"jax_export": 1, "jax_trace": 1}
    f_b = bs.fit(b, "power_law", sampler="jax", random_seed=3, **SETTINGS)
    assert dict(C.COMPILE_COUNTS) == counts, "a data swap (new n, same bucket) must not re-trace"
    assert f_b.settings["timing"]["compiled"] is False
    assert len(f_b.data) != len(f_a.data)
    for g in ("posterior", "sample_stats", "log_likelihood", "observed_data"):
        assert g in f_b.idata.groups()
    assert f_b.idata.sample_stats["diverging"].dtype == bool
    assert abs(float(f_b.posterior["alpha"].mean()) - truth_b["alpha"]) < 0.05

    # numpy log-likelihood == the PyMC graph's (JAX export), padded rows excluded
    entry = C.get_structure(f_b.spec, f_b.model)
    arrays = C.model_arrays(f_b.model)
    data = C._pad(arrays, entry.obs_data, len(b), C.bucket(len(b)))
    post = f_b.posterior
    flat = {
        "E_logit": np.log(post["E"].values / (arrays["E_bound_all"] - post["E"].values)).ravel(),
        "alpha_logodds__": np.log(post["alpha"].values / (1 - post["alpha"].values)).ravel(),
        "A_c": post["A_c"].values.ravel(),
        "sigma_log__": np.log(post["sigma"].values).ravel(),
        "nu_log__": np.log(post["nu"].values).ravel(),
    }
    ll_jax = np.asarray(C._post_fns(entry)[1](flat, data))[:, : len(b)]
    np.testing.assert_allclose(
        f_b.idata.log_likelihood["y_obs"].values.reshape(ll_jax.shape), ll_jax, rtol=1e-6, atol=1e-8
    )

    # fresh compile on b: identical draws
    C.clear_cache()
    fresh = bs.fit(b, "power_law", sampler="jax", random_seed=3, **SETTINGS)
    for v in ("E", "A", "alpha", "sigma", "nu"):
        np.testing.assert_array_equal(fresh.posterior[v].values, f_b.posterior[v].values)
    # another target acceptance rate (the retries of target_accept="auto") runs the same
    # program: the rate is an argument, not a constant, and it is used
    traced = C.COMPILE_COUNTS["jax_trace"]
    careful = bs.fit(b, "power_law", sampler="jax", random_seed=3, target_accept=0.99,
                     **SETTINGS)
    assert C.COMPILE_COUNTS["jax_trace"] == traced
    stats = {k: f.idata.sample_stats for k, f in (("0.9", fresh), ("0.99", careful))}
    assert float(stats["0.99"]["step_size"].mean()) < 0.8 * float(stats["0.9"]["step_size"].mean())
    assert float(stats["0.99"]["acceptance_rate"].mean()) > 0.95

    # batched: K=3 series in one program, per-series agreement with separate fits
    frames = [df for df, _ in SERIES]
    keyed = bs.fit_batch(  # a dict of frames (as fit_many takes) gives a dict of fits
        {f"s{k}": df for k, df in enumerate(frames)}, "power_law", sampler="jax",
        random_seed=20, draws=200, tune=200, chains=2
    )
    assert list(keyed) == ["s0", "s1", "s2"]
    fits = list(keyed.values())
    assert C.COMPILE_COUNTS["jax_trace"] == 2  # fit program + batch program
    assert [len(f.data) for f in fits] == [len(df) for df in frames]
    for k, (fb, (df, truth)) in enumerate(zip(fits, SERIES)):
        fs = bs.fit(df, "power_law", sampler="jax", random_seed=20 + k, **SETTINGS)
        assert fb.idata.log_likelihood["y_obs"].shape == (2, 200, len(df))
        sb, ss = fb.summary(), fs.summary()
        for p in ("E", "A", "alpha", "sigma"):
            diff = abs(sb.loc[p, "mean"] - ss.loc[p, "mean"])
            mcse = np.hypot(sb.loc[p, "mcse_mean"], ss.loc[p, "mcse_mean"])
            # summary rounds to 3 decimals: allow that rounding too
            assert diff <= 4 * mcse + 2e-3, (k, p, diff, mcse)
        assert abs(sb.loc["alpha", "mean"] - truth["alpha"]) < 0.05
        assert abs(sb.loc["E", "mean"] - truth["E"]) < 0.1
    assert C.COMPILE_COUNTS["jax_trace"] == 2  # separate fits reused the fit program
    assert all(f.settings["target_accept_used"] == 0.9 for f in fits)  # none diverged
    # a batched fit is refitted alone on the JAX path (calibration of forecasts beyond
    # the data, leave-future-out): its recorded sampler "jax-batch" used to be refused
    inner = fits[0].refit(fits[0].data.index[:12], random_seed=1, warn=False)
    assert inner.settings["sampler"] == "jax" and len(inner.data) == 12

    # max_tree_depth is checked here (0 failed deep inside JAX) and refits keep it (they
    # dropped every sampler option but six)
    with pytest.raises(BayescaleError, match="max_tree_depth must be an integer >= 1"):
        bs.fit(b, "power_law", sampler="jax", max_tree_depth=0, **SETTINGS)
    with pytest.raises(BayescaleError, match="chain_method='parallel'"):
        bs.fit(b, "power_law", sampler="jax", chain_method="sequential", **SETTINGS)
    short = dict(SETTINGS, draws=50, tune=50)
    shallow = bs.fit(b, "power_law", sampler="jax", random_seed=3, max_tree_depth=2, **short)
    assert int(shallow.idata.sample_stats["n_steps"].max()) <= 3  # 2**2 - 1 leapfrog steps
    again = shallow.refit(random_seed=4, warn=False)
    assert int(again.idata.sample_stats["n_steps"].max()) <= 3


def test_batch_samples_again_only_the_divergent_series_with_their_seeds(monkeypatch):
    # fit_batch(target_accept="auto"), the default: like bs.fit, a series whose fit has
    # divergent transitions is sampled again at the next rate with its own seed; the
    # series without divergences are not sampled again
    import arviz as az

    from bayescale import batch

    divergent = {(0.9, 10): 0, (0.9, 11): 4, (0.9, 12): 2, (0.95, 11): 1, (0.95, 12): 0,
                 (0.99, 11): 0}
    calls = []

    def fake_sample_batch(specs, models, frames, *, random_seeds, target_accept, **nuts):
        calls.append((target_accept, list(random_seeds)))
        out = []
        for seed in random_seeds:
            div = np.zeros((2, 50), dtype=bool)
            div[0, : divergent[(target_accept, seed)]] = True
            rng = np.random.default_rng(seed)
            out.append(az.from_dict(
                posterior={p: rng.normal(size=(2, 50)) for p in ("E", "A", "alpha", "sigma",
                                                                  "nu")},
                sample_stats={"diverging": div, "accept": np.full((2, 50), target_accept)}))
        return out, {"sample_s": 1.0, "postprocess_s": 0.5}

    monkeypatch.setattr(batch, "sample_batch", fake_sample_batch)
    frames = [df for df, _ in SERIES]
    fits = bs.fit_batch(frames, "power_law", likelihood="studentt", sampler="jax",
                        random_seed=10, draws=50, tune=50, chains=2)
    assert calls == [(0.9, [10, 11, 12]), (0.95, [11, 12]), (0.99, [11])]
    assert [f.settings["target_accept_used"] for f in fits] == [0.9, 0.99, 0.95]
    assert "target_accept_steps" not in fits[0].settings
    assert fits[1].settings["target_accept_steps"] == (
        "0.9 (4 divergent) -> 0.95 (1 divergent) -> 0.99 (0 divergent)")
    assert fits[2].settings["target_accept_steps"] == "0.9 (2 divergent) -> 0.95 (0 divergent)"
    # each series keeps the draws of its last try
    assert all(np.all(f.idata.sample_stats["accept"].values == f.settings["target_accept_used"])
               for f in fits)
    assert all(f.diagnostics["divergences"] == 0 for f in fits)
    assert fits[0].settings["timing"] == {"sample_s": 3.0, "postprocess_s": 1.5}
    # a number is used as given: one batch, divergences reported, not retried
    calls.clear()
    fixed = bs.fit_batch(frames, "power_law", likelihood="studentt", sampler="jax",
                         random_seed=10, draws=50, tune=50, chains=2, target_accept=0.9)
    assert calls == [(0.9, [10, 11, 12])]
    assert [f.diagnostics["divergences"] for f in fixed] == [0, 4, 2]


_DRAWS_SCRIPT = """
import hashlib, sys
import numpy as np, pandas as pd
import bayescale as bs
rng = np.random.default_rng(1)
x = np.exp(rng.uniform(np.log(1e3), np.log(1e7), 30))
loss = (1.5 + 30.0 * x ** -0.3) * np.exp(0.01 * rng.standard_normal(30))
df = pd.DataFrame({"x": x, "loss": loss})
f = bs.fit(df, "power_law", sampler="nutpie", likelihood="ar1", random_seed=5, draws=100,
           tune=100, chains=2, warn=False, progressbar=False)
print("DRAWS", hashlib.sha256(np.ascontiguousarray(f.posterior["E"].values)).hexdigest())
"""


@pytest.mark.slow
def test_nutpie_draws_do_not_depend_on_pytensors_numba_cache(tmp_path):
    """The same seed gives the same draws in a process whose PyTensor numba cache is cold
    and in one where an earlier process filled it. With the cache on, a warm cache changed
    the floating-point results of nutpie's log density of this `ar1` model, and so the draws
    (this test failed); the plain Student-t power law happened to agree."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTENSOR_FLAGS": f"base_compiledir={tmp_path}",
           "BAYESCALE_NO_PROGRESS": "1"}
    env.pop("BAYESCALE_NUMBA_CACHE", None)  # bayescale's default (conftest opts in)
    out = []
    for _ in range(2):  # first process: cold cache; second: whatever the first left
        r = subprocess.run([sys.executable, "-c", _DRAWS_SCRIPT], env=env, capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        out.append([ln for ln in r.stdout.splitlines() if ln.startswith("DRAWS")][0])
    assert out[0] == out[1]


def test_numba_cache_is_off_for_nutpie_unless_asked(monkeypatch):
    import pytensor

    before = pytensor.config.numba__cache
    monkeypatch.delenv("BAYESCALE_NUMBA_CACHE", raising=False)
    with C.numba_compile_context():
        assert pytensor.config.numba__cache is False
    monkeypatch.setenv("BAYESCALE_NUMBA_CACHE", "1")
    with C.numba_compile_context():
        assert pytensor.config.numba__cache == before
    assert pytensor.config.numba__cache == before


def test_auto_likelihood_of_many_series_keeps_a_corr_length_prior_for_the_ar1_refits(
        monkeypatch):
    """``likelihood="auto"`` with a prior on ar1's ``corr_length``: bs.fit applies it to the
    ar1 refit only; fit_many and fit_batch (both paths) refused it as an unknown prior of
    the law's own likelihood."""
    from types import SimpleNamespace

    import bayescale.autocorr as autocorr
    import bayescale.batch as batch
    from bayescale.fit import check_series

    wide = {"alpha": 0.3, "corr_length": bs.Prior("LogNormal", mu=-2.3, sigma=1.5)}
    frames = [SERIES[0][0], SERIES[1][0]]
    check_series(frames, "power_law", ["a", "b"], priors=wide)  # fit_many's check
    check_series(frames, "power_law", ["a", "b"], priors=wide, likelihood="auto")
    with pytest.raises(bs.LawError, match="corr_length"):  # a likelihood without it
        check_series(frames, "power_law", ["a", "b"], priors=wide, likelihood="studentt")
    calls: list = []
    made: list = []

    def fake_batch(frames, law, *, likelihood, random_seed, priors, **kw):
        calls.append((likelihood, dict(priors)))
        made.append([SimpleNamespace(spec=SimpleNamespace(likelihood=likelihood or "studentt"),
                                     settings={}) for _ in frames])
        return made[-1]

    monkeypatch.setattr(batch, "fit_batch", fake_batch)
    monkeypatch.setattr(autocorr, "auto_choice", lambda f: (
        ("ar1", "lag-1 r 0.9") if f is made[0][0] else ("studentt", "lag-1 r 0.1")))
    fits = batch._batch_auto(frames, "power_law", [1, 2], dict(priors=wide, sampler="jax"))
    assert calls[0] == (None, {"alpha": 0.3})  # the law's own likelihood: no corr_length
    assert calls[1] == ("ar1", wide)  # the refit of series 0
    assert fits[0].spec.likelihood == "ar1"
    assert "unused" in fits[1].settings["likelihood_choice"]


def test_auto_likelihood_of_a_batch_warns_once_per_series_under_its_own_index(monkeypatch):
    """fit_batch(likelihood="auto", warn=True) warned about the Student-t fits it then
    replaced by ar1 refits, and named a refit by its place in the refit batch ("batched
    fit 0" for series 1); a seed list holding None raised a bare TypeError."""
    import warnings
    from types import SimpleNamespace

    import bayescale.autocorr as autocorr
    import bayescale.batch as batch

    calls: list = []
    made: list = []

    def fake_batch(frames, law, *, likelihood, random_seed, priors, warn, _index=None, **kw):
        calls.append((likelihood, warn, _index))
        made.append([SimpleNamespace(
            spec=SimpleNamespace(likelihood=likelihood or "studentt"), settings={},
            law=SimpleNamespace(name="power_law"),
            diagnostics={"problems": [f"{likelihood or 'studentt'} problem"]})
            for _ in frames])
        return made[-1]

    monkeypatch.setattr(batch, "fit_batch", fake_batch)
    monkeypatch.setattr(autocorr, "auto_choice", lambda f: (
        ("ar1", "lag-1 r 0.9") if f is made[0][1] else ("studentt", "lag-1 r 0.1")))
    frames = [SERIES[0][0], SERIES[1][0], SERIES[0][0]]
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        fits = batch._batch_auto(frames, "power_law", [1, 2, 3],
                                 dict(priors=None, sampler="jax", warn=True))
    assert calls == [(None, False, None), ("ar1", False, [1])]
    assert [f.spec.likelihood for f in fits] == ["studentt", "ar1", "studentt"]
    said = [str(w.message) for w in got if issubclass(w.category, bs.SamplingWarning)]
    assert [m.split(":")[0] for m in said] == [
        f"batched fit {k} of law 'power_law'" for k in range(3)]
    assert ["ar1 problem" in m for m in said] == [False, True, False]
    with pytest.raises(bs.BayescaleError, match="random_seed lists one int per frame"):
        bs.fit_batch(frames[:2], "power_law", random_seed=[None, 1])


def test_a_batch_of_series_whose_default_prior_moved_names_that_prior():
    """Compute in PF-days: each series' onset prior moves to its own data, so the series
    have two structures; the error said "priors" although the user gave none."""
    from bayescale.fit import prepare_spec

    frames = [pd.DataFrame({"C": np.geomspace(lo, hi, 8), "chance": 0.25, "n": 500,
                            "accuracy": np.linspace(0.3, 0.8, 8)})
              for lo, hi in ((1e-1, 1e2), (1e0, 1e4))]
    with pytest.warns(bs.PriorWarning):
        specs = [prepare_spec(df, "sigmoid_compute", y=None, x=None, priors=None)[0]
                 for df in frames]
    with pytest.raises(BayescaleError, match=r"differ in the priors of \['x0'\] \(x0: Normal"):
        C.sample_batch(specs, [None, None], [None, None], draws=10, tune=10, chains=1,
                       random_seeds=[0, 1])


def test_tasks_overlapping_on_threads_leave_the_callers_settings(monkeypatch):
    """fit_many/backtest/compare take any Executor: two fit tasks overlapping on threads
    left BAYESCALE_NO_PROGRESS=1 and every warning ignored in the caller's process."""
    import sys
    import threading
    import warnings
    from concurrent.futures import ThreadPoolExecutor

    from bayescale import parallel

    monkeypatch.delenv("BAYESCALE_NO_PROGRESS", raising=False)
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def fake_fit(data, law, **kw):  # only the interleaving matters: A enters, B enters,
        if data == "A":             # A leaves, B leaves
            a_in.set()
            assert b_in.wait(10)
        else:
            assert a_in.wait(10)
            b_in.set()
            assert a_out.wait(10)
        assert os.environ.get("BAYESCALE_NO_PROGRESS") == "1"
        return data

    def task(d):
        out = parallel.fit_task(d, "power_law", {})
        if d == "A":
            a_out.set()
        return out

    monkeypatch.setattr(sys.modules["bayescale.fit"], "fit", fake_fit)
    filters = list(warnings.filters)
    with ThreadPoolExecutor(2) as ex:
        assert [f.result() for f in [ex.submit(task, "A"), ex.submit(task, "B")]] == ["A", "B"]
    assert os.environ.get("BAYESCALE_NO_PROGRESS") is None
    assert warnings.filters == filters


def test_fit_many_says_each_series_data_and_prior_warnings(monkeypatch):
    """fit_many silenced every warning of its fits (a worker's are lost; the serial path
    ignored them): duplicated rows, priors moved to other units' centre went unsaid. They
    are said in the caller's process, after the series' label; sampling problems as
    before, and only once each."""
    import sys
    import warnings
    from types import SimpleNamespace

    from bayescale.errors import warn

    def fake_fit(data, law, **kw):  # bs.fit's warnings (warn=False: not its own
        assert kw["warn"] is False  # repeated-rows check), no sampling
        warn("priors move to the data's centre", bs.PriorWarning)
        warn("priors move to the data's centre", bs.PriorWarning)  # twice: relayed once
        return SimpleNamespace(law=bs.get_law(law), diagnostics={"problems": []})

    monkeypatch.setattr(sys.modules["bayescale.fit"], "fit", fake_fit)
    x = np.geomspace(10, 1e4, 10)
    df = pd.DataFrame({"x": x, "loss": 2 + 3 * x**-0.3})
    df = pd.concat([df, df.iloc[:3]], ignore_index=True)  # 3 rows copied
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        bs.fit_many({"a": df, "b": df.iloc[:10]}, "power_law", executor="serial")
    said = [(w.category, str(w.message)[:40]) for w in got]
    assert said == [(bs.DataWarning, "series 'a': 3 of the 13 rows repeat an e"),
                    (bs.PriorWarning, "series 'a': priors move to the data's ce"),
                    (bs.PriorWarning, "series 'b': priors move to the data's ce")]
    assert all(w.filename == __file__ for w in got)  # attributed to the caller's line
    with warnings.catch_warnings(record=True) as got:  # warn=False: quiet, as bs.fit's
        warnings.simplefilter("always")
        bs.fit_many({"a": df}, "power_law", executor="serial", warn=False)
    assert not got


def test_fit_many_on_threads_says_each_warning_after_its_series_label(monkeypatch):
    """On a ThreadPoolExecutor fit_many said its fits' prior warnings as the fit said them,
    without the series' label (warnings.catch_warnings is one per process, so tasks on
    threads could not keep theirs apart). Two tasks overlap here: each warning is said
    once, after its own series' label."""
    import sys
    import threading
    import warnings
    from concurrent.futures import ThreadPoolExecutor
    from types import SimpleNamespace

    from bayescale.errors import warn

    both_in = threading.Barrier(2, timeout=10)

    def fake_fit(data, law, **kw):  # both fits warn while the other is running
        both_in.wait()
        warn(f"priors move for {len(data)} rows", bs.PriorWarning)
        both_in.wait()
        return SimpleNamespace(law=bs.get_law(law), diagnostics={"problems": []})

    monkeypatch.setattr(sys.modules["bayescale.fit"], "fit", fake_fit)
    x = np.geomspace(10, 1e4, 10)
    df = pd.DataFrame({"x": x, "loss": 2 + 3 * x**-0.3})
    with warnings.catch_warnings(record=True) as got, ThreadPoolExecutor(2) as ex:
        warnings.simplefilter("always")
        bs.fit_many({"a": df, "b": df.iloc[:7]}, "power_law", executor=ex)
    said = sorted(str(w.message) for w in got)
    assert said == ["series 'a': priors move for 10 rows",
                    "series 'b': priors move for 7 rows"]


def test_a_structure_compiles_once_for_fits_on_threads(monkeypatch):
    """fit_many on a ThreadPoolExecutor compiled one structure once per task (nothing held
    the check-then-compile): 4 nutpie compiles, and once a crash inside PyTensor."""
    import sys
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    class SlowNutpie:  # a compile that takes a while, counted
        calls = 0

        @classmethod
        def compile_pymc_model(cls, model, backend):
            cls.calls += 1
            time.sleep(0.2)
            return object()

    from collections import Counter

    monkeypatch.setitem(sys.modules, "nutpie", SlowNutpie)
    monkeypatch.setattr(C, "COMPILE_COUNTS", Counter())  # the real counts stay true
    entry = C.CompiledStructure(key=("t",), template=None, obs_data=(), data_names=(),
                                value_names=())
    start = threading.Barrier(4)

    def get(_):
        start.wait()
        return entry.nutpie_model()

    with ThreadPoolExecutor(4) as ex:
        got = list(ex.map(get, range(4)))
    assert SlowNutpie.calls == 1 and all(g is got[0] for g in got)


@pytest.mark.parametrize("likelihood", ["binomial", "betabinomial", "beta", "studentt"])
def test_compiled_paths_store_what_the_model_observed(likelihood):
    """observed_data["y_obs"] of the compiled paths held the data array "y" (an accuracy
    fraction) where the model observes counts (k_obs: binomial likelihoods) or squeezed
    scores (y_unit: beta); the pm.sample path stores what y_obs observes."""
    from pymc.backends.arviz import find_observations

    from bayescale.fit import prepare_spec
    from bayescale.model import build_model

    acc = pd.DataFrame({"C": np.geomspace(1e19, 1e23, 10), "chance": 0.25, "n": 500,
                        "accuracy": np.r_[0.0, np.linspace(0.3, 0.8, 9)]})
    spec, frame = prepare_spec(acc, "sigmoid_compute", y=None, x=None, priors=None,
                               likelihood=likelihood)
    model = build_model(spec, frame)
    entry = C.CompiledStructure(key=("obs", likelihood), template=model, obs_data=(),
                                data_names=tuple(v.name for v in model.data_vars),
                                value_names=())
    got = C.observed_values(entry, C.model_arrays(model))
    want = find_observations(model)["y_obs"]  # what pm.sample's InferenceData holds
    np.testing.assert_array_equal(got, want)
    assert got.dtype == want.dtype
    if likelihood in ("binomial", "betabinomial"):
        assert got[1] == 150  # 0.3 of 500 questions


def test_fit_batch_names_a_bad_series_by_its_key():
    """fit_batch said "series 1" for the series keyed 'B' (fit_many said 'B'): the fits
    know their series by position; the keys' data are now checked first, by key."""
    x = np.geomspace(10, 1e4, 10)
    good = pd.DataFrame({"x": x, "loss": 2 + 3 * x**-0.3})
    bad = good.rename(columns={"loss": "val"})
    for sampler in ("jax", "nutpie"):
        with pytest.raises(bs.DataError, match=r"^series 'B': Response column 'loss'"):
            bs.fit_batch({"A": good, "B": bad}, "power_law", likelihood="studentt",
                         sampler=sampler)
    both = pd.concat([good.assign(curve="y"), good.assign(curve="z", loss=-1.0)])
    with pytest.raises(bs.DataError, match=r"^series 'z': "):
        bs.fit_batch(both, "power_law", by="curve", likelihood="auto")
    with pytest.raises(bs.DataError, match=r"^series 1: "):  # a list: its position
        bs.fit_batch([good, bad], "power_law", likelihood="studentt")


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_worker_count_is_a_clear_error(monkeypatch, value):
    """BAYESCALE_WORKERS=0 or =two gave Python's bare ValueError from the pool."""
    from bayescale.parallel import env_workers, executor_context

    monkeypatch.setenv("BAYESCALE_WORKERS", value)
    with pytest.raises(BayescaleError, match=rf"BAYESCALE_WORKERS .* got '{value}'"):
        with executor_context(None):
            pass
    monkeypatch.setenv("BAYESCALE_WORKERS", "3")
    assert env_workers() == 3
