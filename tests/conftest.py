"""Shared fixtures: the shared datasets folder and small sampler settings."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("BAYESCALE_NO_PROGRESS", "1")
# PyTensor's numba disk cache for nutpie's compiles: off by default in bayescale (a warm
# cache changes the draws of a seed), on for the suite, whose many cold compiles otherwise
# cost about 5 of its minutes on 2 cores. The tests compare statistics, not bits, except
# test_nutpie_draws_do_not_depend_on_pytensors_numba_cache, which runs the default.
os.environ.setdefault("BAYESCALE_NUMBA_CACHE", "1")
# the JAX path's exported programs (bayescale.programs): a fresh folder per test process, so
# that a test never loads a program an earlier run stored, while tests still go through the
# disk cache users get by default
if "BAYESCALE_JAX_PROGRAMS" not in os.environ:
    _PROGRAMS = tempfile.mkdtemp(prefix="bayescale-programs-")
    os.environ["BAYESCALE_JAX_PROGRAMS"] = _PROGRAMS
    atexit.register(shutil.rmtree, _PROGRAMS, ignore_errors=True)

REPO = Path(__file__).resolve().parents[1]


def shared_datasets() -> Path | None:
    """``BAYESCALE_DATA`` or ``../shared/datasets`` beside the repo, if present."""
    env = os.environ.get("BAYESCALE_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "datasets"]:
        if cand.is_dir():
            return cand
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_datasets()
    if path is None:
        pytest.fail("shared datasets not found: set BAYESCALE_DATA to ../shared/datasets")
    return path


#: Small but honest NUTS budget for tests.
FAST = dict(draws=500, tune=500, chains=4, progressbar=False)

#: Divergent transitions a healthy fit may show in these tests. A few per thousand come and
#: go with floating-point details: numba and XLA compile for the host CPU, so one seed gives
#: other draws on another machine (a test fit with no divergence on one machine had 1 in
#: 1600 on another). A posterior NUTS cannot explore gives many more, with a high r_hat.
MAX_DIVERGENT_SHARE = 0.005


def few_divergences(diagnostics: dict) -> bool:
    """At most ``MAX_DIVERGENT_SHARE`` of all post-warm-up transitions diverged."""
    total = diagnostics["chains"] * diagnostics["draws"]
    return diagnostics["divergences"] <= MAX_DIVERGENT_SHARE * total


def simulate_chinchilla(n=60, seed=1, noise=0.01, **true):
    from bayescale.laws import chinchilla

    rng = np.random.default_rng(seed)
    N = np.exp(rng.uniform(np.log(5e7), np.log(1e10), n))
    D = N * np.exp(rng.uniform(np.log(5), np.log(100), n))
    L = chinchilla(N, D, **true) * np.exp(noise * rng.standard_normal(n))
    return pd.DataFrame({"N": N, "D": D, "loss": L})


def with_fixed_drift(fit, tau: float, scale: str = "log"):
    """``fit`` with a known calibrated drift instead of a learned one (no inner fits).

    All weight on the grid's ``tau`` nearest the one asked for (per unit of distance on
    the drift ``scale``), linear growth (``h = 1``). Returns the fit and that ``tau``.
    """
    from bayescale.calibration import PRIOR_SCALES, TAU_GRIDS, Calibration

    grid = TAU_GRIDS[scale]
    i = int(np.argmin(np.abs(grid - tau)))
    w = np.zeros((1, len(grid)))
    w[0, i] = 1.0
    cal = Calibration(tau=grid, weights=w, prior_scale=PRIOR_SCALES[scale],
                      h=np.array([1.0]), scale=scale)
    return fit.with_calibration(cal), float(grid[i])


def fixed_fit(df, law, params, *, draws=400, jitter=0.0, seed=0, **kw):
    """A Fit of ``df`` whose posterior holds ``params``, no sampling (fast tests of what
    a fit does with its draws). Arrays are per level (a pooled ``*_z_*``); ``jitter``
    multiplies scalars by ``exp(jitter * normal)`` per draw. ``kw`` go to ``prepare_spec``.
    """
    from types import SimpleNamespace

    import xarray as xr

    from bayescale.fit import Fit, prepare_spec

    rng = np.random.default_rng(seed)
    spec, frame = prepare_spec(df, law, **{"y": None, "x": None, "priors": None, **kw})
    post = {}
    for k, v in params.items():
        v = np.asarray(v, dtype=float)
        if v.ndim == 0 and jitter:
            v = v * np.exp(jitter * rng.standard_normal(draws))
            post[k] = (("chain", "draw"), v[None, :])
            continue
        dims = ("chain", "draw", *(f"{k}_dim_{i}" for i in range(v.ndim)))
        post[k] = (dims, np.broadcast_to(v, (1, draws, *v.shape)))
    return Fit(spec, frame, SimpleNamespace(posterior=xr.Dataset(post)), {"random_seed": seed},
               {"problems": []})
