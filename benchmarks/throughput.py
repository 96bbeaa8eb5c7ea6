"""Throughput benchmark: compile once / refit many, backends, PyMC-to-JAX overhead, batching.

Usage (CPU, the whole thing, about 15-30 min on the shared 2-core box)::

    BAYESCALE_DATA=../shared/datasets PYTHONPATH=. python benchmarks/throughput.py

Sections (``--only a,b``): ``first`` (end-to-end first fit in this fresh process),
``lfo`` (not in the default: leave-future-out weights of two laws fitted in this
process, refits here or in a new process pool),
``processes`` (not in the default: the first JAX fit in ``--processes`` fresh processes,
with the programs stored by :mod:`bayescale.programs` and without),
``compile`` (not in the default: where nutpie's first compilation goes; run it twice),
``refit``, ``speed`` (issue 2: compile vs sampling, min bulk ESS, ESS/s for numpyro
and nutpie), ``overhead`` (PyMC JAX export vs the same model written in NumPyro),
``batch`` (fit_batch over K = 1, 10, 92 Revisiting curves). Results go to
``benchmarks/results/throughput.md`` (or ``--out``), one table row per timing, each
with the 1-minute load average and the process CPU seconds.

On a GPU (JAX with CUDA, PyMC installed)::

    BAYESCALE_DATA=/path/to/datasets python benchmarks/throughput.py --only batch,refit \\
        --samplers jax --out benchmarks/results/throughput_gpu.md
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

T_START = time.perf_counter()
C_START = time.process_time()

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

ROWS: list[dict] = []


def data_dir() -> Path:
    env = os.environ.get("BAYESCALE_DATA")
    for cand in ([Path(env)] if env else []) + [HERE.parent.parent / "shared" / "datasets"]:
        if cand.is_dir():
            return cand
    sys.exit("datasets not found: set BAYESCALE_DATA to the shared datasets folder")


def load() -> float:
    return os.getloadavg()[0]


class Timer:
    def __enter__(self):
        self.t, self.c, self.load0 = time.perf_counter(), time.process_time(), load()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.t
        self.cpu = time.process_time() - self.c
        self.load = max(self.load0, load())


def record(section: str, what: str, tm: Timer | None = None, **extra) -> None:
    row = {"section": section, "what": what}
    if tm is not None:
        row.update(wall_s=round(tm.wall, 2), cpu_s=round(tm.cpu, 2), load1=round(tm.load, 1))
    row.update(extra)
    ROWS.append(row)
    print(row, flush=True)


def chinchilla_points() -> pd.DataFrame:
    df = pd.read_csv(data_dir() / "epoch_chinchilla" / "chinchilla_fig4_points.csv")
    return df[~df["epoch_excluded_outlier"].astype(bool)].reset_index(drop=True)


CH = dict(x={"N": "params", "D": "tokens"}, y="loss")


def min_ess(fit) -> float:
    return float(fit.diagnostics["min_ess_bulk"])


def bench_compile(args):
    """Where nutpie's first compilation goes (run it in two fresh processes).

    PyTensor caches the numba code of a model's log density on disk
    (``~/.pytensor/numba``), but nutpie wraps it in numba ``cfunc``s that close over the
    data ("dynamic globals") and are compiled again in every process. Uses nutpie's
    private ``_make_functions`` (the step ``compile_pymc_model`` begins with).
    """
    import nutpie
    from nutpie.compile_pymc import _make_functions
    from pymc.initial_point import make_initial_point_fn

    from bayescale.fit import _prepare

    df = chinchilla_points()
    with Timer() as tm:
        spec, _, model = _prepare(df, "chinchilla", y=CH["y"], x=CH["x"], priors=None,
                                  pooled=None, run=None, likelihood="studentt",
                                  group_scale=None, correlated=False)
    record("compile", "build the PyMC model", tm)
    with Timer() as tm:
        ipf = make_initial_point_fn(model=model, return_transformed=True)
        n_dim, _, logp_fn, expand_fn, _, _ = _make_functions(
            model, mode="NUMBA", compute_grad=True, join_expanded=True,
            pymc_initial_point_fn=ipf, var_names=None)
    record("compile", "PyTensor rewrites + numba-mode functions (nutpie._make_functions)", tm)
    with Timer() as tm:
        logp_fn(np.zeros(n_dim))
        expand_fn(np.zeros(n_dim))
    record("compile", "first call of log density + expand (numba compile, or PyTensor's "
           "disk cache)", tm)
    with Timer() as tm:
        nutpie.compile_pymc_model(model, backend="numba")
    record("compile", "nutpie.compile_pymc_model (its own _make_functions + cfunc wrappers)",
           tm)


# ------------------------------------------------------------------------------------------
def bench_first_and_refit(args, samplers):
    import bayescale as bs
    from bayescale import compiled as C

    df = chinchilla_points()
    rng = np.random.default_rng(0)
    kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, warn=False, **CH)
    for smp in samplers:
        cache = ""
        if smp == "jax":  # JAX's persistent XLA cache (bayescale.compiled.compilation_cache_dir)
            path = C.compilation_cache_dir()
            n = len(list(Path(path).glob("*"))) if path and Path(path).is_dir() else 0
            cache = f", XLA disk cache {'warm' if n else 'cold'}"
        with Timer() as tm:
            f = bs.fit(df, "chinchilla", sampler=smp, random_seed=1, **kw)
        warm = ", libraries imported beforehand" if args.warm_imports else ""
        if smp == "jax":  # bayescale.programs: exported programs stored by an earlier process
            loaded = C.COMPILE_COUNTS["jax_load"]
            cache += f", {loaded} stored programs loaded" if loaded else ", programs built"
        record(
            "first",
            f"{smp}: first fit incl. compilation{cache}{warm} (process start to here: "
            f"{time.perf_counter() - T_START:.1f} s)",
            tm,
            min_ess_bulk=round(min_ess(f)),
            divergences=f.diagnostics["divergences"],
            steps_per_draw=round(float(f.idata.sample_stats["n_steps"].mean()), 1),
            # sample_s: from the call into the sampler path to the draws in hand (program
            # load or build included); what the wall time adds is validation, model
            # building, InferenceData and diagnostics
            sample_s=round(f.settings["timing"]["sample_s"], 2),
        )
        first = f
        if "refit" not in args.only:
            continue
        refits = [
            ("same data", df),
            ("bootstrap rows (same n)", df.sample(len(df), replace=True, random_state=1)),
            ("bootstrap rows (same n), 2", df.sample(len(df), replace=True, random_state=2)),
            ("200-row subset (new n)", df.sample(200, random_state=3)),
            ("same data again", df),
        ]
        for label, d in refits:
            before = sum(C.COMPILE_COUNTS.values())
            with Timer() as tm:
                f = bs.fit(d, "chinchilla", sampler=smp, random_seed=int(rng.integers(1e6)), **kw)
            record(
                "refit",
                f"{smp}: refit, {label}",
                tm,
                recompiled=sum(C.COMPILE_COUNTS.values()) > before,
                min_ess_bulk=round(min_ess(f)),
                ess_per_s=round(min_ess(f) / tm.wall, 1),
                sample_s=round(f.settings["timing"]["sample_s"], 2),
            )
        del first


# ------------------------------------------------------------------------------------------
def bench_lfo(args, samplers):
    """Leave-future-out weights of two laws fitted in this process: the refits run here
    (``executor=None``: the models are compiled already) or in a new 2-worker pool."""
    import bayescale as bs

    df = chinchilla_points()
    kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, warn=False, **CH)
    for smp in samplers:
        fits = {law: bs.fit(df, law, sampler=smp, random_seed=1, **kw)
                for law in ("chinchilla", "kaplan")}
        weights = {}
        for label, executor in (("default (executor=None)", None),
                                ("new process pool (executor='processes')", "processes")):
            with Timer() as tm:
                avg = bs.average(fits, weights="lfo", executor=executor)
            weights[label] = avg.weights
            record("lfo", f"{smp}: bs.average(weights='lfo'), 2 laws, {label}", tm,
                   kaplan_weight=round(float(avg.weights["kaplan"]), 4))
        a, b = weights.values()
        record("lfo", f"{smp}: same weights either way", None,
               same=bool(np.allclose([a[k] for k in a], [b[k] for k in a], atol=1e-12)))


# ------------------------------------------------------------------------------------------
def bench_processes(args):
    """First JAX fit in fresh processes: stored programs (bayescale.programs) against none.

    A new, empty cache folder; one process fills it (XLA cache and programs cold), then
    ``--processes`` processes alternate between loading the stored programs and building
    them (``BAYESCALE_JAX_PROGRAMS=0``; XLA cache warm for both). Each process imports
    PyMC, ArviZ, JAX and NumPyro before its timing starts (``--warm-imports``).
    """
    import ast
    import subprocess
    import tempfile

    cache = tempfile.mkdtemp(prefix="bayescale-bench-cache-")
    base = [sys.executable, __file__, "--only", "first", "--samplers", "jax", "--warm-imports",
            "--draws", str(args.draws), "--tune", str(args.tune), "--chains", str(args.chains)]

    def one(label: str, programs: str | None) -> None:
        env = dict(os.environ, BAYESCALE_JAX_CACHE=cache)
        if programs is not None:
            env["BAYESCALE_JAX_PROGRAMS"] = programs
        with tempfile.NamedTemporaryFile(suffix=".md") as out:
            res = subprocess.run([*base, "--out", out.name], env=env, capture_output=True,
                                 text=True, check=True)
        row = next(ast.literal_eval(line) for line in res.stdout.splitlines()
                   if line.startswith("{'section': 'first'"))
        row.update(section="processes", what=f"{label}: {row['what']}")
        ROWS.append(row)
        print(row, flush=True)

    one("cold", None)
    for k in range(args.processes):
        one(f"stored programs, process {k + 1}", None)
        one(f"no stored programs, process {k + 1}", "0")


# ------------------------------------------------------------------------------------------
def bench_speed(args):
    """Issue 2's table: pm.sample(numpyro) against the compiled paths, same 240 points."""
    import bayescale as bs

    df = chinchilla_points()
    kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, warn=False, **CH)
    for smp in ("numpyro", "nutpie", "jax"):
        walls = []
        for rep in range(2):
            with Timer() as tm:
                f = bs.fit(df, "chinchilla", sampler=smp, random_seed=10 + rep, **kw)
            walls.append(tm.wall)
            record(
                "speed",
                f"{smp}: call {rep + 1}",
                tm,
                min_ess_bulk=round(min_ess(f)),
                ess_per_s=round(min_ess(f) / tm.wall, 1),
                divergences=f.diagnostics["divergences"],
                steps_per_draw=round(float(f.idata.sample_stats["n_steps"].mean()), 1),
            )
        record(
            "speed",
            f"{smp}: fixed cost (call 1 - call 2) / sampling (call 2)",
            None,
            compile_s=round(walls[0] - walls[1], 2),
            sampling_s=round(walls[1], 2),
        )


# ------------------------------------------------------------------------------------------
def numpyro_chinchilla(spec):
    """The same model (same priors, same shear parameterisation) written in NumPyro."""
    import jax.numpy as jnp
    import numpyro
    import numpyro.distributions as dist

    cN, cD = spec.log_centres["N"], spec.log_centres["D"]
    sN = cN - spec.log_refs["N"]
    sD = cD - spec.log_refs["D"]
    bound = spec.bounds["E"]["*"]
    pa, pb = spec.priors["alpha"].params, spec.priors["beta"].params
    pA, pB = spec.priors["A"].params, spec.priors["B"].params
    pE = spec.priors["E"].params

    def model(lN, lD, y=None):
        E_logit = numpyro.sample("E_logit", dist.Normal(pE.get("mu", 1.0), pE.get("sigma", 1.5)))
        alpha = numpyro.sample("alpha", dist.Beta(pa["alpha"], pa["beta"]))
        beta = numpyro.sample("beta", dist.Beta(pb["alpha"], pb["beta"]))
        A_c = numpyro.sample("A_c", dist.Normal(pA["mu"] - alpha * sN, pA["sigma"]))
        B_c = numpyro.sample("B_c", dist.Normal(pB["mu"] - beta * sD, pB["sigma"]))
        sigma = numpyro.sample("sigma", dist.HalfNormal(0.05))
        nu = numpyro.sample("nu", dist.Gamma(2.0, 0.1))
        E = bound * jax_sigmoid(E_logit)
        mu = E + jnp.exp(A_c - alpha * (lN - cN)) + jnp.exp(B_c - beta * (lD - cD))
        numpyro.sample("y", dist.StudentT(nu, jnp.log(mu), sigma), obs=y)

    def jax_sigmoid(x):
        import jax

        return jax.nn.sigmoid(x)

    return model


def bench_overhead(args):
    import jax
    from numpyro.infer import MCMC, NUTS

    import bayescale as bs
    from bayescale import compiled as C

    df = chinchilla_points()
    kw = dict(draws=args.draws, tune=args.tune, chains=args.chains, warn=False, **CH)
    f0 = bs.fit(df, "chinchilla", sampler="jax", random_seed=1, **kw)  # compile
    with Timer() as tm:
        f = bs.fit(df, "chinchilla", sampler="jax", random_seed=2, **kw)
    steps = int(f.idata.sample_stats["n_steps"].sum())
    # count the warmup gradients too: assume the same mean steps in warmup
    grads = steps * (args.draws + args.tune) / args.draws
    pymc_us = f.settings["timing"]["sample_s"] / grads * 1e6
    record(
        "overhead",
        "PyMC JAX export + NumPyro NUTS (bayescale 'jax'), refit",
        tm,
        sample_s=round(f.settings["timing"]["sample_s"], 2),
        steps_per_draw=round(steps / (args.draws * args.chains), 1),
        us_per_gradient=round(pymc_us, 1),
    )
    del f0
    spec = f.spec
    frame = f.data
    lN = np.log(frame["N"].to_numpy())
    lD = np.log(frame["D"].to_numpy())
    y = np.log(frame["y"].to_numpy())
    model = numpyro_chinchilla(spec)
    nuts = NUTS(model, target_accept_prob=0.9)
    method = "parallel" if jax.local_device_count() >= args.chains else "vectorized"
    mcmc = MCMC(
        nuts,
        num_warmup=args.tune,
        num_samples=args.draws,
        num_chains=args.chains,
        chain_method=method,
        progress_bar=False,
        jit_model_args=True,
    )
    times = []
    for rep in range(2):
        with Timer() as tm:
            mcmc.run(jax.random.PRNGKey(rep), lN, lD, y, extra_fields=("num_steps",))
            jax.block_until_ready(mcmc.get_samples())
        n_steps = int(np.asarray(mcmc.get_extra_fields()["num_steps"]).sum())
        grads = n_steps * (args.draws + args.tune) / args.draws
        times.append((tm.wall, tm.wall / grads * 1e6))
        record(
            "overhead",
            f"hand-written NumPyro model, MCMC.run call {rep + 1} ({method})",
            tm,
            steps_per_draw=round(n_steps / (args.draws * args.chains), 1),
            us_per_gradient=round(tm.wall / grads * 1e6, 1),
        )
    # per-gradient micro-benchmark: jitted value_and_grad of both log densities
    from numpyro.infer.util import initialize_model

    entry = C.get_structure(f.spec, f.model)
    arrays = C.model_arrays(f.model)
    data = C._pad(arrays, entry.obs_data, len(frame), len(frame))
    logp = entry.jax_functions()["logp"]
    z0 = {k: v[0] for k, v in C._initial_values(entry, data, 1, np.random.default_rng(0)).items()}
    vg_pymc = jax.value_and_grad(lambda z, d: -logp(z, d))
    info, pot_np, _, _ = initialize_model(jax.random.PRNGKey(0), model, model_args=(lN, lD, y))
    vg_np = jax.value_and_grad(pot_np)
    zn = info.z
    reps = 2000

    def looped(vg):
        # reps gradient evaluations inside one XLA call (no Python dispatch per call)
        def run(z, *a):
            def body(i, acc):
                zi = jax.tree.map(lambda x: x + 1e-9 * i, z)
                v, g = vg(zi, *a)
                return acc + v + sum(jax.tree.leaves(jax.tree.map(lambda t: t.sum(), g)))

            return jax.lax.fori_loop(0, reps, body, 0.0)

        return jax.jit(run)

    res = {}
    cases = (("pymc", looped(vg_pymc), (z0, data)), ("numpyro", looped(vg_np), (zn,)))
    for label, fn, arg in cases:
        jax.block_until_ready(fn(*arg))
        with Timer() as tm:
            for _ in range(3):
                out = fn(*arg)
            jax.block_until_ready(out)
        res[label] = tm.wall / (3 * reps) * 1e6
        record("overhead", f"value_and_grad of the log density, {label}, {3 * reps} in a loop",
               tm, us_per_gradient=round(res[label], 2))
    record(
        "overhead",
        "ratio PyMC-export / hand-written NumPyro (micro-benchmark, per gradient call)",
        None,
        ratio=round(res["pymc"] / res["numpyro"], 2),
    )
    record(
        "overhead",
        "ratio PyMC-export / hand-written NumPyro (MCMC runs, second call)",
        None,
        sampling_time_ratio=round(f.settings["timing"]["sample_s"] / times[1][0], 2),
        per_gradient_ratio=round(pymc_us / times[1][1], 2),
    )
    del C


# ------------------------------------------------------------------------------------------
def revisiting_frames() -> list[pd.DataFrame]:
    r = pd.read_csv(data_dir() / "revisiting_scaling_laws" / "revisiting_learning_curves.csv")
    r = r[r["split"] == "fit"]
    return [g[["seen_examples", "value"]].reset_index(drop=True) for _, g in r.groupby("curve_id")]


def bench_batch(args, samplers):
    import bayescale as bs

    frames = revisiting_frames()
    kw = dict(draws=args.draws, tune=args.tune, chains=args.chains)
    # --likelihood studentt (default here): one likelihood for every series, as measured
    # before likelihood="auto" became bs.fit's default; auto adds an ar1 refit (nutpie) or
    # a batch of ar1 refits (JAX) for the curves whose residuals are autocorrelated
    common = dict(x={"x": "seen_examples"}, y="value", likelihood=args.likelihood)
    for K in args.ks if "jax" in samplers else []:
        sub = frames[:K]
        for rep in range(2):
            with Timer() as tm:
                fits = bs.fit_batch(
                    sub, "power_law", sampler="jax", random_seed=100 * rep, **kw, **common
                )
            ess = [min_ess(f) for f in fits]
            div = sum(f.diagnostics["divergences"] for f in fits)
            rhat = max(f.diagnostics["max_rhat"] for f in fits)
            record(
                "batch",
                f"fit_batch K={K} ({'incl. compile' if rep == 0 else 'compiled'})",
                tm,
                per_series_s=round(tm.wall / K, 3),
                median_min_ess=round(float(np.median(ess))),
                max_rhat=round(rhat, 3),
                divergences=div,
                rows_padded_to=int(2 ** np.ceil(np.log2(max(16, max(len(d) for d in sub))))),
            )
    if "nutpie" in samplers:
        # the CPU alternative: one compile, then K sequential refits (with_data)
        K = args.nutpie_k or max(args.ks)
        with Timer() as tm:
            for k, d in enumerate(frames[:K]):
                bs.fit(d, "power_law", sampler="nutpie", random_seed=k, warn=False, **kw, **common)
        what = f"nutpie: {K} sequential fits (1 compile + {K - 1} refits)"
        if args.likelihood != "studentt":
            what += f", likelihood={args.likelihood}"
        record("batch", what, tm, per_series_s=round(tm.wall / K, 3))


# ------------------------------------------------------------------------------------------
def md_table(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        rows.append("| " + " | ".join("" if pd.isna(v) else str(v) for v in r.tolist()) + " |")
    return "\n".join(rows)


def write(out: Path, args) -> None:
    import jax

    out.parent.mkdir(parents=True, exist_ok=True)
    dev = jax.devices()[0]
    lines = [
        "# Throughput benchmark (`benchmarks/throughput.py`)",
        "",
        f"- date (UTC): {time.strftime('%Y-%m-%d %H:%M', time.gmtime())}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU cores, JAX device "
        f"`{dev.platform}:{getattr(dev, 'device_kind', '')}`",
        f"- settings: {args.chains} chains x ({args.tune} tune + {args.draws} draws); "
        f"sections {','.join(args.only)}",
        "- `load1` is the 1-minute load average (max of start and end of the timing); the "
        "machine is shared, so compare `cpu_s` (process CPU seconds) where load1 > cores.",
        "",
    ]
    df = pd.DataFrame(ROWS)
    for sec, g in df.groupby("section", sort=False):
        g = g.drop(columns="section").dropna(axis=1, how="all")
        lines += [f"## {sec}", "", md_table(g), ""]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--only", default="first,refit,speed,overhead,batch")
    p.add_argument("--samplers", default="nutpie,jax")
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--ks", default="1,10,92")
    p.add_argument("--out", default=str(HERE / "results" / "throughput.md"))
    p.add_argument("--nutpie-k", type=int, default=0, help="series for the nutpie loop")
    p.add_argument("--likelihood", default="studentt",
                   help="likelihood of the batch section's fits (auto: bs.fit's default)")
    p.add_argument("--from-log", help="rebuild the markdown from a log of an earlier run")
    p.add_argument("--processes", type=int, default=5,
                   help="fresh processes per variant in the 'processes' section")
    p.add_argument("--warm-imports", action="store_true",
                   help="import PyMC, ArviZ, JAX and NumPyro before timing (a notebook "
                        "session that has them loaded already)")
    args = p.parse_args()
    if args.warm_imports:
        t = time.perf_counter()
        import arviz  # noqa: F401
        import numpyro  # noqa: F401
        import pymc  # noqa: F401
        import pymc.sampling.jax  # noqa: F401

        print(f"imports before timing: {time.perf_counter() - t:.1f} s", flush=True)
    args.only = args.only.split(",")
    args.ks = [int(k) for k in args.ks.split(",")]
    samplers = args.samplers.split(",")
    os.environ.setdefault("BAYESCALE_NO_PROGRESS", "1")
    if args.from_log:
        import ast

        for line in Path(args.from_log).read_text().splitlines():
            if line.startswith("{'section'"):
                ROWS.append(ast.literal_eval(line))
        write(Path(args.out), args)
        return
    try:
        if "compile" in args.only:
            bench_compile(args)
        if "first" in args.only or "refit" in args.only:
            bench_first_and_refit(args, samplers)
        if "processes" in args.only:
            bench_processes(args)
        if "lfo" in args.only:
            bench_lfo(args, samplers)
        if "speed" in args.only:
            bench_speed(args)
        if "overhead" in args.only:
            bench_overhead(args)
        if "batch" in args.only:
            bench_batch(args, samplers)
    finally:
        write(Path(args.out), args)


if __name__ == "__main__":
    main()
