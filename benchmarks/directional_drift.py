"""Do the inner forecasts foresee the *direction* of the real forecast's error?

The calibrated drift (``bayescale.calibration``) is symmetric: it widens a forecast
beyond the data around the law's own median. On the real splits the targets of one split
err mostly to one side (the law's bias at that distance), which a symmetric drift can only
cover by widening. Before building a directional drift (a learned mean error that grows
with distance, ``mu * d``), this script measures whether the evidence is there: for each
split of ``benchmarks/calibration.py`` (Chinchilla, Gadre, Porian, Revisiting; the default fit and
calibration, the benchmark's sampler settings) it compares

* the inner forecasts' bias: the least-squares slope ``mu`` of the inner forecast errors
  ``r_j`` (log scale) on their distance ``d_j`` (decades), weighted by their predictive
  variance, and the share of positive errors;
* the real forecast's bias: the mean log error of the held-out targets, ``log(truth /
  median)``, and its sign;
* what a bias correction ``median * exp(mu * d)`` would do to the median's absolute
  relative error.

    python benchmarks/directional_drift.py [--only chinchilla,gadre,porian,revisiting]

Writes ``benchmarks/results/directional_drift.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _common import RESULTS, md_table, run_header, shared_datasets
from calibration import SETTINGS, ladder_splits

import bayescale as bs
from bayescale.calibration import scale_decades


def one_split(name, train, test, law, x, y, settings, seed=0) -> dict:
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bs.fit(train, law, x=x, y=y, random_seed=seed, **settings)
        new = test[list((x or {}).values()) or list(f.law.inputs)]
        d = f.draws(new, extrapolation=False, random_seed=seed).values
        res = f.calibration.residuals
    if len(res) == 0:  # too few rows below every cutoff: no inner forecast to learn from
        print(f"{name}: no inner forecasts, skipped", flush=True)
        return {"split": name, "inner_n": 0}
    r = res["residual"].to_numpy()
    dist = res["decades"].to_numpy()
    w = 1.0 / res["predictive_sd"].to_numpy() ** 2
    mu = float(np.sum(w * r * dist) / np.sum(w * dist**2))  # weighted LS through 0
    med = np.median(d, axis=0)
    truth = test[y].to_numpy(dtype=float)
    lr = np.log(truth / med)
    d_out = scale_decades(f, f._frame(new))
    fixed = med * np.exp(mu * d_out)
    print(f"{name}: mu {mu:+.4f}/decade, outer mean log error {lr.mean():+.4f}, "
          f"{time.time() - t0:.0f} s", flush=True)
    return {
        "split": name,
        "inner_n": len(r),
        "inner_pos": float((r > 0).mean()),
        "inner_mu": mu,
        "outer_n": len(truth),
        "outer_decades": float(np.median(d_out)),
        "outer_mean_log_err": float(lr.mean()),
        "outer_pos": float((lr > 0).mean()),
        "same_sign": bool(np.sign(mu) == np.sign(lr.mean())),
        "are": float(np.median(np.abs(med - truth) / truth)),
        "are_corrected": float(np.median(np.abs(fixed - truth) / truth)),
        "tau_median": f.calibration.summary()["tau_median"],
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="chinchilla,gadre,porian")
    ap.add_argument("--out", default="directional_drift")
    args = ap.parse_args()
    data = shared_datasets()
    t0 = time.time()
    rows = []
    for name, train, test, law, x, y, _kw in ladder_splits(args.only, data):
        rows.append(one_split(name, train, test, law, x, y, SETTINGS))
    tab = pd.DataFrame(rows)
    tab.to_csv(RESULTS / f"{args.out}.csv", index=False)
    skipped = int((tab["inner_n"] == 0).sum())
    tab = tab[tab["inner_n"] > 0]
    agree = int(tab["same_sign"].sum())
    lines = [
        *run_header("Inner forecasts' bias against the real forecast's bias",
                    "directional_drift.py", t0, SETTINGS),
        md_table(tab.round(4)),
        "",
        f"The inner bias has the real forecast's sign in {agree} of {len(tab)} splits; "
        f"median absolute relative error {tab['are'].median():.4f} plain, "
        f"{tab['are_corrected'].median():.4f} with the inner bias carried forward"
        + (f" ({skipped} splits without inner forecasts left out)." if skipped else "."),
    ]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))


if __name__ == "__main__":
    main()
