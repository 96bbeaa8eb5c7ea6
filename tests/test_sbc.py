"""Simulation-based calibration through the compile-once nutpie path.

Budget: one nutpie compilation of the power law (about 20 CPU s) and about 55 small
refits (2 chains x (200 + 200) draws, 12 rows), 40-60 s in all on 2 cores.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import bayescale as bs
from bayescale import compiled as C
from bayescale.errors import BayescaleError
from bayescale.parallel import SerialExecutor
from bayescale.sbc import SBCResult

DESIGN = pd.DataFrame({"x": np.geomspace(1e3, 1e7, 12), "loss": 2.0})
SETTINGS = dict(draws=200, tune=200, chains=2, sampler="nutpie")
PARAMS = ["E", "A", "alpha", "sigma", "nu"]


@pytest.fixture(scope="module")
def calibrated() -> SBCResult:
    C.clear_cache()
    return bs.sbc("power_law", DESIGN, n_sims=25, random_seed=2024, **SETTINGS)


@pytest.fixture(scope="module")
def misspecified(calibrated) -> SBCResult:
    # data simulated with 10x the noise the fitted prior allows (HalfNormal(0.05))
    return bs.sbc(
        "power_law",
        DESIGN,
        n_sims=20,
        random_seed=7,
        simulate_priors={"sigma": bs.Prior("HalfNormal", sigma=0.5)},
        **SETTINGS,
    )


@pytest.mark.slow
def test_calibrated_ranks_are_uniform(calibrated):
    res = calibrated
    assert res.n_ranks == 100  # 2 chains x 200 draws thinned by 4
    assert res.params == PARAMS
    assert len(res.ranks) == 25 * len(PARAMS)
    assert res.ranks["rank"].between(0, res.n_ranks).all()
    for p in PARAMS:
        assert res.draws[p].shape == (25, 100)
    # truths come from the prior: E below the fixed bound (the design's loss), alpha in (0, 1)
    truth = res.ranks.pivot(index="sim", columns="param", values="truth")
    assert (truth["E"] < 2.0).all() and (truth["E"] > 0).all()
    assert truth["alpha"].between(0, 1).all() and truth["alpha"].std() > 0.05
    assert res.settings["bounds"] == {"E": 2.0}
    # ranks really are counts of retained draws below the truth
    k = 3
    assert res.ranks.query("sim == @k and param == 'alpha'")["rank"].item() == int(
        np.sum(res.draws["alpha"][k] < truth["alpha"][k])
    )
    # and they are not detectably non-uniform (5 tests at level 0.001)
    u = res.uniformity()
    assert list(u.index) == PARAMS
    assert (u["n_bins"] == 5).all() and (u["dof"] == 4).all()
    assert (u["p_value"] > 1e-3).all(), u
    # the posterior learns from the simulated data: it is narrower than the prior of alpha
    # (Beta(3, 7): sd 0.14)
    post_sd = res.ranks.query("param == 'alpha'")["post_sd"]
    assert post_sd.median() < 0.07


@pytest.mark.slow
def test_misspecified_prior_is_detected_without_recompiling(calibrated, misspecified):
    u = misspecified.uniformity()
    # the fitted noise prior pulls sigma below the truth: ranks pile up at the top
    assert u.loc["sigma", "p_value"] < 1e-4, u
    sig = misspecified.ranks.query("param == 'sigma'")["rank"]
    assert sig.mean() > 0.8 * misspecified.n_ranks
    # one structure for both SBCs (only the simulation priors differ): one compilation
    assert C.COMPILE_COUNTS["nutpie"] == 1
    assert calibrated.settings["fits_compiled"] == 1
    assert calibrated.settings["compile_counts"] == {"nutpie": 1}
    assert misspecified.settings["fits_compiled"] == 0
    assert misspecified.settings["compile_counts"] == {}
    assert misspecified.settings["simulate_priors"] == {"sigma": "HalfNormal(sigma=0.5)"}


@pytest.mark.slow
def test_bound_without_response_column_and_reproducible(calibrated):
    no_y = DESIGN[["x"]]
    with pytest.raises(BayescaleError, match="Pass bound="):
        bs.sbc("power_law", no_y, n_sims=3, random_seed=1, **SETTINGS)
    small = dict(SETTINGS, draws=50, tune=50)
    a = bs.sbc("power_law", no_y, bound=2.0, n_sims=3, random_seed=1, thin=5, **small)
    b = bs.sbc("power_law", DESIGN, n_sims=3, random_seed=1, thin=5, **small)
    assert a.n_ranks == 2 * 10
    pd.testing.assert_frame_equal(a.ranks, b.ranks)
    # the executor path (one chunk per worker, each rebuilding the model) gives the same ranks
    c = bs.sbc("power_law", DESIGN, n_sims=3, random_seed=1, thin=5, executor=SerialExecutor(),
               **small)
    pd.testing.assert_frame_equal(c.ranks, b.ranks)
    assert C.COMPILE_COUNTS["nutpie"] == 1  # draws/tune are not part of the structure


@pytest.mark.slow
def test_plots(calibrated):
    fig = calibrated.plot()
    assert sum(ax.get_visible() for ax in fig.axes) == len(PARAMS)
    fig = calibrated.plot("ecdf", params=["alpha", "sigma"])
    assert sum(ax.get_visible() for ax in fig.axes) == 2
    with pytest.raises(BayescaleError, match="not ranked"):
        calibrated.plot(params=["beta"])
    # one name is one parameter (it was split into letters), and none is refused
    fig = calibrated.plot(params="alpha")
    assert sum(ax.get_visible() for ax in fig.axes) == 1
    with pytest.raises(BayescaleError, match="names none of the ranked"):
        calibrated.plot(params=[])


def _result(ranks: dict[str, np.ndarray], n_ranks: int) -> SBCResult:
    rows = [
        {"sim": k, "param": p, "truth": 0.0, "rank": int(r), "ess_bulk": 100.0}
        for p, rs in ranks.items()
        for k, r in enumerate(rs)
    ]
    return SBCResult(ranks=pd.DataFrame(rows), draws={}, n_ranks=n_ranks)


def test_uniformity_test_on_known_ranks():
    rng = np.random.default_rng(0)
    res = _result(
        {
            "flat": np.arange(100),  # ranks 0..99 of 0..99 (n_ranks=99): exactly uniform
            "top": np.full(100, 99),  # a posterior that sits below every truth
            "u": np.array(sorted(rng.integers(0, 100, 100))),
        },
        n_ranks=99,
    )
    u = res.uniformity()
    assert u.loc["flat", "chi2"] == 0.0 and u.loc["flat", "p_value"] == 1.0
    assert u.loc["top", "p_value"] < 1e-30
    assert u.loc["u", "n_bins"] == 20
    # uneven bins: 0..10 (11 values) in 3 bins of 4, 4, 3 values; expected counts follow
    r = _result({"x": np.arange(11)}, n_ranks=10)
    assert r.uniformity(3).loc["x", "chi2"] == pytest.approx(0.0)
    with pytest.raises(BayescaleError, match="n_bins"):
        r.uniformity(12)
    # the default bins: no more than possible ranks (60 sims of 8 retained draws asked
    # for 12 bins of 9 ranks: uniformity() and even repr() raised)
    few = _result({"x": np.arange(60) % 9}, n_ranks=8)
    assert few.uniformity().loc["x", "n_bins"] == 9 and "SBC" in repr(few)


def test_bad_arguments_are_rejected():
    with pytest.raises(BayescaleError, match="sampler"):
        bs.sbc("power_law", DESIGN, sampler="pymc")
    with pytest.raises(BayescaleError, match="n_sims"):
        bs.sbc("power_law", DESIGN, n_sims=1)
    with pytest.raises(BayescaleError, match="tune must be an integer >= 0"):
        bs.sbc("power_law", DESIGN, tune=-1)
    with pytest.raises(BayescaleError, match="thin"):
        bs.sbc("power_law", DESIGN, draws=10, thin=20, sampler="nutpie")
    with pytest.raises(BayescaleError, match="bound="):
        bs.sbc("power_law", DESIGN, bound=-1.0, sampler="nutpie")
    with pytest.raises(BayescaleError, match="vmapped"):
        bs.sbc("power_law", DESIGN, sampler="jax", executor="processes")


def test_a_beta_model_is_refitted_to_each_simulated_response():
    """The Beta likelihood observes a squeezed copy of the response ("y_unit"); SBC swapped
    "y" alone, so every simulation fitted the placeholder it was built on (log density the
    same for any response, posteriors blind to the truth)."""
    from bayescale.likelihoods import squeeze_unit
    from bayescale.sbc import _setup, response_arrays

    design = pd.DataFrame({"C": np.logspace(18, 24, 12), "chance": 0.25, "accuracy": 0.5})
    kw = dict(x=None, y="accuracy", priors=None, pooled=None, run=None, likelihood="beta",
              group_scale=None)
    spec, frame, model = _setup("sigmoid_compute", design, kw, {})
    logp, point = model.compile_logp(), model.initial_point()
    values = []
    for y in (np.linspace(0.3, 0.9, 12), np.linspace(0.26, 1.0, 12)):
        for name, value in response_arrays(model, frame, y).items():
            model.set_data(name, value)
        np.testing.assert_array_equal(model["y_unit"].get_value(), squeeze_unit(y))
        values.append(float(logp(point)))
    assert values[0] != pytest.approx(values[1])


def test_sbc_without_a_seed_chooses_one_and_simulates_with_it(monkeypatch):
    """A seedless sbc recorded None and could not be repeated; a seed is chosen as bs.fit
    chooses one (recorded in settings) and seeds the simulations."""
    import sys

    import bayescale.sampling as sampling

    sbc_module = sys.modules["bayescale.sbc"]  # bayescale.sbc is the function

    seen = {}
    monkeypatch.setattr(sampling, "random_seed_for_run", lambda: 4242)

    def stop(model, names, n_sims, seed):
        seen["seed"] = seed
        raise RuntimeError("stop before simulating")

    monkeypatch.setattr(sbc_module, "_simulate", stop)
    with pytest.raises(RuntimeError, match="stop before"):
        bs.sbc("power_law", DESIGN, n_sims=3, **SETTINGS)
    assert seen["seed"] == int(np.random.default_rng(4242).integers(2**31 - 1))


def test_an_above_max_prior_is_refused_with_advice_that_works(monkeypatch):
    """The advice was priors={'e_0': 'LogNormal(0, 1)'}, a form as_prior refuses."""
    import re

    import bayescale.parallel as par

    def stop(*args, **kwargs):
        raise RuntimeError("simulations would start here")

    monkeypatch.setattr(par, "run_fits", stop)
    design = pd.DataFrame({"x": np.geomspace(1e3, 1e7, 10), "loss": 2.0})
    with pytest.raises(bs.BayescaleError, match="does not simulate 'AboveMax'") as err:
        bs.sbc("m4", design, n_sims=2, draws=30, tune=30, chains=1, sampler="nutpie")
    advice = re.search(r"proper prior such as priors=(\{.*\})\.$", str(err.value)).group(1)
    priors = eval(advice, {"bs": bs})  # what the message tells the user to pass
    assert bs.get_law("m4").with_priors(**priors).priors["e_0"].dist == "LogNormal"
