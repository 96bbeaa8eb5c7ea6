"""How the cost of a pooled fit grows with the number of groups and points.

Simulates ``G`` families of a saturating power law (``power_law``, every parameter
pooled over ``family``: 3 G offsets + 3 population values + 3 scales + 2 noise
parameters) with ``n`` points each, and fits it with bayescale's model. Each
configuration runs in a fresh subprocess so peak memory (max RSS) is its own.

Reported per configuration: compile time, sampling time, total wall time,
divergences, max r_hat, min bulk ESS over *all* sampled quantities (population,
scales and every group offset) and min bulk ESS per second of sampling, peak RSS.

Run (CPU, defaults G = 10, 100 with 20 points, plus G = 10 with 10/40 points)::

    python benchmarks/hierarchy_scaling.py
    python benchmarks/hierarchy_scaling.py --configs 1000x20 --draws 500 --tune 500

On a GPU (NumPyro, chains vectorised on the one device; needs ``jax[cuda12]``)::

    pip install -e ".[gpu]"
    python benchmarks/hierarchy_scaling.py --sampler numpyro --configs 100x20,1000x20 \
        --chains 4 --out hierarchy_scaling_gpu.md

bayescale's ``sample`` picks ``chain_method="vectorized"`` when JAX's default
backend is a GPU. Keep float64 (the default; float32 failed to converge in the
STACK.md measurements). Writes ``benchmarks/results/<out>``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent


def simulate(G: int, n: int, seed: int = 0) -> pd.DataFrame:
    from scipy.special import expit, logit

    rng = np.random.default_rng(seed)
    E = 1.7 * np.exp(0.08 * rng.standard_normal(G))
    alpha = expit(logit(0.3) + 0.25 * rng.standard_normal(G))
    A = np.exp(np.log(0.6) + 0.3 * rng.standard_normal(G) + alpha * np.log(1e9))
    fam = np.repeat(np.arange(G), n)
    x = np.exp(rng.uniform(np.log(1e7), np.log(1e10), G * n))
    y = (E[fam] + A[fam] * x ** -alpha[fam]) * np.exp(0.01 * rng.standard_normal(G * n))
    return pd.DataFrame({"family": [f"f{g:04d}" for g in fam], "N": x, "loss": y})


def one(G: int, n: int, sampler: str, draws: int, tune: int, chains: int) -> dict:
    import arviz as az

    import bayescale as bs
    from bayescale import data as _data
    from bayescale.model import build_model, make_spec, normalise_pooled
    from bayescale.sampling import sample

    law = bs.get_law("power_law")
    df = simulate(G, n)
    frame = _data.validate(df, law, y="loss", x={"x": "N"}, groups=["family"])
    spec = make_spec(frame, law, priors=None, pooled=normalise_pooled("family", law),
                     likelihood=None, x={"x": "N"}, y="loss")
    model = build_model(spec, frame)
    c0 = time.process_time()
    t0 = time.perf_counter()
    if sampler == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model)
        t1 = time.perf_counter()
        idata = nutpie.sample(compiled, draws=draws, tune=tune, chains=chains, seed=1,
                              progress_bar=False)
        t2 = time.perf_counter()
        compile_s, sample_s = t1 - t0, t2 - t1
    else:
        idata = sample(model, sampler=sampler, draws=draws, tune=tune, chains=chains,
                       random_seed=1, progressbar=False)
        t2 = time.perf_counter()
        # numpyro through PyMC reports sampling time including JIT; split it when available
        sample_s = float(idata.posterior.attrs.get("sampling_time", t2 - t0))
        compile_s = (t2 - t0) - sample_s
    total_s = t2 - t0
    cpu_s = time.process_time() - c0
    post = idata.posterior
    names = [v for v in post.data_vars if not v.startswith(("alpha_family", "chol"))]
    ess = az.ess(post, var_names=names, method="bulk")
    rhat = az.rhat(post, var_names=names)
    min_ess = float(min(float(np.nanmin(ess[v].values)) for v in ess.data_vars))
    max_rhat = float(max(float(np.nanmax(rhat[v].values)) for v in rhat.data_vars))
    ss = idata.sample_stats
    steps = ss["n_steps"] if "n_steps" in ss else None
    return {
        "G": G, "n": n, "rows": G * n, "params": int(sum(post[v][0, 0].size for v in names)),
        "sampler": sampler, "chains": chains, "draws": draws, "tune": tune,
        "compile_s": compile_s, "sample_s": sample_s, "total_s": total_s, "cpu_s": cpu_s,
        "divergences": int(ss["diverging"].sum()), "max_rhat": max_rhat,
        "min_ess_bulk": min_ess, "min_ess_per_s": min_ess / sample_s,
        "mean_steps": float(steps.mean()) if steps is not None else float("nan"),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "load_avg": os.getloadavg()[0],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="10x20,100x20,10x10,10x40",
                    help="comma-separated GxN (groups x points per group)")
    ap.add_argument("--sampler", default="nutpie")
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--tune", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=1800, help="seconds per configuration")
    ap.add_argument("--out", default="hierarchy_scaling.md")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        G, n = map(int, args.one.split("x"))
        print("RESULT " + json.dumps(one(G, n, args.sampler, args.draws, args.tune,
                                         args.chains)))
        return
    rows = []
    for cfg in args.configs.split(","):
        cmd = [sys.executable, __file__, "--one", cfg, "--sampler", args.sampler,
               "--draws", str(args.draws), "--tune", str(args.tune), "--chains",
               str(args.chains)]
        t0 = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout)
            line = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
            if not line:
                print(p.stderr[-3000:])
                rows.append({"G": cfg, "status": f"failed (rc {p.returncode})"})
                continue
            r = json.loads(line[-1][7:])
            r["status"] = "ok"
        except subprocess.TimeoutExpired:
            r = {"G": cfg, "status": f"timeout after {time.perf_counter() - t0:.0f}s"}
        print(r, flush=True)
        rows.append(r)
    res = pd.DataFrame(rows)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    res.to_csv(out / args.out.replace(".md", ".csv"), index=False)
    lines = ["| G x n | rows | posterior scalars | compile s | sampling s | total s | CPU s "
             "| divergences | max r_hat | min bulk ESS | min bulk ESS/s | leapfrog steps/iter "
             "| peak RSS MB | load avg | status |", "|" + "---|" * 15]
    for r in rows:
        if r.get("status") != "ok":
            lines.append(f"| {r['G']} |" + " |" * 13 + f" {r['status']} |")
            continue
        lines.append(
            f"| {r['G']} x {r['n']} | {r['rows']} | {r['params']} | {r['compile_s']:.1f} | "
            f"{r['sample_s']:.1f} | {r['total_s']:.1f} | {r.get('cpu_s', float('nan')):.0f} | "
            f"{r['divergences']} | "
            f"{r['max_rhat']:.3f} | {r['min_ess_bulk']:.0f} | {r['min_ess_per_s']:.1f} | "
            f"{r['mean_steps']:.0f} | {r['peak_rss_mb']:.0f} | {r['load_avg']:.1f} | ok |"
        )
    head = (
        f"# Hierarchical scaling: cost against the number of groups\n\n"
        f"Generated by `benchmarks/hierarchy_scaling.py` "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}): `power_law` with every "
        f"parameter pooled over `family`, {args.sampler}, {args.chains} chains x "
        f"({args.tune} tune + {args.draws} draws). Machine: {platform.machine()}, "
        f"{os.cpu_count()} CPUs shared with other jobs (load average in the table).\n\n"
    )
    (out / args.out).write_text(head + "\n".join(lines) + "\n")
    print(head + "\n".join(lines))


if __name__ == "__main__":
    main()
