"""One fit of many rows: nutpie (CPU) against the JAX path (GPU where there is one).

Simulated power-law data with ``n`` rows (``NS``, default 2000,20000,100000), 4 chains x
(500 tune + 500 draws); for each size and sampler a first call (the JAX path compiles a
program per row bucket; nutpie compiles once for all sizes) and a refit. Writes one CSV
row per fit to the path given (default ``benchmarks/results/sampler_rows.csv``).

    NS=2000,20000 SAMPLERS=nutpie,jax python benchmarks/sampler_rows.py out.csv

Measured on an H100 host (``docs/throughput.md``, ``benchmarks/results/throughput_gpu.md``):
nutpie on the host's CPU was ahead at every size.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import bayescale as bs
from bayescale import compiled as C


def main() -> None:
    warnings.simplefilter("ignore")
    default = Path(__file__).resolve().parent / "results" / "sampler_rows.csv"
    out = sys.argv[1] if len(sys.argv) > 1 else str(default)
    print("auto picks", C.choose_sampler(), "for one fit and", C.choose_sampler(batch=True),
          "for a batch", flush=True)
    rows = []
    for n in [int(v) for v in os.environ.get("NS", "2000,20000,100000").split(",")]:
        rng = np.random.default_rng(n)
        x = np.exp(rng.uniform(np.log(1e3), np.log(1e7), n))
        loss = (1.5 + 30 * x**-0.3) * np.exp(0.01 * rng.standard_normal(n))
        df = pd.DataFrame({"x": x, "loss": loss})
        for s in os.environ.get("SAMPLERS", "nutpie,jax").split(","):
            for rep in (0, 1):
                t = time.perf_counter()
                f = bs.fit(df, "power_law", sampler=s, draws=500, tune=500, chains=4,
                           random_seed=rep, warn=False, progressbar=False)
                r = dict(
                    rows=n, sampler=s, call="first at this n" if rep == 0 else "refit",
                    wall_s=round(time.perf_counter() - t, 2),
                    sample_s=round(f.settings["timing"]["sample_s"], 2),
                    min_ess_bulk=round(float(f.summary()["ess_bulk"].min())),
                    E=round(float(f.idata.posterior["E"].mean()), 4),
                )
                print(r, flush=True)
                rows.append(r)
                pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
