"""What the calibration's inner fits cost on each sampler path (the command line's wait).

A forecast beyond the data runs six inner fits (three cutoffs in each of two orders of
the rows, :mod:`bayescale.calibration`). Data: the embedded ``synthetic_chinchilla`` (60
rows), law ``chinchilla``, 4 x (1000 + 1000), the likelihood of the full fit. Paths:

* ``jax refits``: ``Fit.refit`` six times on the JAX path (the command line's path);
* ``jax fit_batch``: the six subsets as one vectorised JAX program (``bs.fit_batch``);
* ``nutpie refits``: ``Fit.refit`` six times after a nutpie fit (compiled once).

Each is timed twice in one process (the first includes any compilation).

Run::

    python benchmarks/calibration_paths.py

Writes ``benchmarks/results/calibration_paths.md``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
from _common import machine, md_table

import bayescale as bs
from bayescale.calibration import inner_position

HERE = Path(__file__).resolve().parent


def subsets(fit) -> list[np.ndarray]:
    """The inner fits' training rows: cutoffs 0.5, 0.65, 0.8 in both orders."""
    out = []
    for order in ("scale", "inputs"):
        pos = inner_position(fit, fit.data, order)
        out += [pos <= np.quantile(pos, q) for q in (0.5, 0.65, 0.8)]
    return out


def main() -> None:
    df = bs.datasets.load("synthetic_chinchilla")
    rows = []

    def add(path: str, rep: int, t0: float, full: float = float("nan")) -> None:
        rows.append({"path": path, "pass": rep, "six inner fits s": time.perf_counter() - t0,
                     "full fit s": full})
        print(rows[-1], flush=True)

    for sampler in ("jax", "nutpie"):
        t0 = time.perf_counter()
        f = bs.fit(df, "chinchilla", random_seed=3, progressbar=False, sampler=sampler)
        full = time.perf_counter() - t0
        masks = subsets(f)
        for rep in (1, 2):
            t0 = time.perf_counter()
            for i, m in enumerate(masks):
                f.refit(m, draws=1000, random_seed=i)
            add(f"{sampler} refits", rep, t0, full if rep == 1 else float("nan"))
        if sampler == "jax":
            frames = [f.user_frame(m) for m in masks]
            for rep in (1, 2):
                t0 = time.perf_counter()
                bs.fit_batch(frames, "chinchilla", likelihood=f.spec.likelihood,
                             random_seed=list(range(6)))
                add("jax fit_batch", rep, t0)
    table = pd.DataFrame(rows).round(1)
    out = HERE / "results" / "calibration_paths.md"
    out.write_text("\n".join([
        "# The calibration's six inner fits on each sampler path",
        "",
        f"`python benchmarks/calibration_paths.py`; synthetic_chinchilla (60 rows), "
        f"chinchilla, 4 x (1000 + 1000); {machine()}. Pass 1 includes compilation; "
        "'full fit s' is the fit the inner fits refit (its first-fit cost on that path).",
        "",
        md_table(table, ""),
        "",
    ]))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
