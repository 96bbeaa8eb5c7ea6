"""Do the rows of one model size share an offset that carries over to its other runs?

``python benchmarks/calibration.py --run-by N`` fits every split without a run column with
``run=`` a copy of ``N`` (each model size its own run offset). On Gadre's over-training
split (the same sizes trained on 4-8x more tokens) that raised 90% coverage from 0.64 to
0.88. This script looks inside that gain, per split, before anything is advised:

* ``run``: the default fit and one with ``run=`` a copy of ``N`` (same seed and settings),
  each target's log error of the posterior median (no calibration: the drift is symmetric
  and moves no median), the fitted ``sigma_run`` and the largest fitted size offset;
* ``residual``: a per-size offset estimated from the default fit's training residuals (the
  mean residual of each size fitted at least twice, shrunk by the method-of-moments ratio of
  between-size to total variance) added to the forecasts of fitted sizes, and its effect on
  the median absolute relative error.

    python benchmarks/size_offsets.py [--only gadre,porian,unseen]

Writes ``benchmarks/results/size_offsets.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings

import numpy as np
import pandas as pd
from _common import RESULTS, md_table, run_header, shared_datasets
from calibration import SETTINGS as BENCHMARK_SETTINGS
from calibration import ladder_splits

import bayescale as bs

SETTINGS = dict(BENCHMARK_SETTINGS, random_seed=0)


def residual_offsets(fit, train: pd.DataFrame, y: str) -> pd.Series:
    """Shrunk mean training residual (log scale) per size fitted at least twice."""
    med = fit.predict(train[["N", "D"]], extrapolation=False)["median"].to_numpy()
    res = pd.Series(np.log(train[y].to_numpy()) - np.log(med), index=train.N.to_numpy())
    g = res.groupby(level=0)
    mean, n = g.mean(), g.size()
    within = float(np.var(res.to_numpy() - mean.reindex(res.index).to_numpy(), ddof=1))
    between = max(float(np.var(mean.to_numpy(), ddof=1)) - within * float(np.mean(1 / n)), 0.0)
    shrink = between / (between + within / n)
    return (mean * shrink)[n >= 2]


def run_split(name, train, test, law, y):
    cols = ["N", "D", y]
    tr, te = train.assign(size=train.N), test.assign(size=test.N)
    base = bs.fit(tr[cols], law, y=y, **SETTINGS)
    runs = bs.fit(tr[cols + ["size"]], law, y=y, run="size", **SETTINGS)
    truth = np.log(te[y].to_numpy())
    e_base = truth - np.log(base.predict(te[["N", "D"]], extrapolation=False)["median"]
                            .to_numpy())
    e_run = truth - np.log(runs.predict(te[["N", "D", "size"]], extrapolation=False)["median"]
                           .to_numpy())
    post = runs.idata.posterior
    offsets = post["sigma_run"] * post["run_z"]
    off = residual_offsets(base, tr, y)
    shift = te.N.map(off).fillna(0.0).to_numpy()
    seen = te.N.isin(off.index).to_numpy()

    def are(e):
        return float(np.median(np.abs(np.expm1(e))))

    return {
        "split": name, "targets": len(te), "targets_at_fitted_sizes": int(seen.sum()),
        "are_default": are(e_base), "are_run": are(e_run),
        "largest_error_change": float(np.max(np.abs(np.abs(e_run) - np.abs(e_base)))),
        "sigma_run_median": float(post["sigma_run"].median()),
        "largest_offset": float(np.abs(offsets.median(("chain", "draw"))).max()),
        "residual_offset_sizes": int((off != 0).sum()),
        "are_residual_offset": are(e_base - shift),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="gadre,porian,unseen")
    args = ap.parse_args()
    warnings.simplefilter("ignore")
    logging.getLogger("bayescale").setLevel(logging.WARNING)
    data = shared_datasets()
    t0, rows = time.time(), []
    for name, train, test, law, _x, y, fit_kw in ladder_splits(args.only, data):
        if fit_kw or law != "chinchilla":
            continue
        rows.append(run_split(name, train, test, law, y))
        print({k: (round(v, 4) if isinstance(v, float) else v) for k, v in rows[-1].items()},
              flush=True)
    out = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.to_csv(RESULTS / "size_offsets.csv", index=False)
    md = [
        *run_header("Size offsets: run= a copy of N, and residual offsets per fitted size",
                    "size_offsets.py", t0, SETTINGS),
        "Median absolute relative error of the posterior median (no calibration), default fit",
        "and `run=` a copy of `N`; the largest change of one target's absolute log error;",
        "`sigma_run` and the largest fitted size offset (log scale); the error with the",
        "default's shrunk residual offset per fitted size added.",
        "",
        md_table(out),
        "",
    ]
    (RESULTS / "size_offsets.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
