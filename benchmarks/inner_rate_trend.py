"""Does the inner forecasts' drift rate shrink as the inner fit sees more of the data?

The calibrated drift (``bayescale.calibration``) learns its rate ``tau`` from inner fits on
the rows below the 50%, 65% and 80% quantiles of scale and applies it, unchanged, to the
full fit's forecast. On Porian's IsoFLOP ladders that forecast errs less than the inner
ones (docs/calibration.md, "a directional drift"), so its intervals are wider than needed.
If the inner rate fell steadily as the cutoff rose (more rows, a longer fitted range), a
rate that trends with the share of rows fitted could be extrapolated to the full fit
(``var = tau^2 d^(2h) f^(-2g)``, ``f`` the share). Before building that, this script
measures, for each split of ``benchmarks/calibration.py`` (the default fit and calibration,
the benchmark's sampler settings):

* the maximum-likelihood rate of each cutoff's inner forecasts on their own, at the
  calibration's posterior-mean growth ``h`` (``bayescale.calibration.log_likelihood`` on a
  grid, the errors and variances the calibration recorded);
* the same rate for the real forecast's errors (held-out targets, their predictive
  variance without drift, their distance beyond the full fit), the rate the calibration
  should have found.

    python benchmarks/inner_rate_trend.py [--only chinchilla,gadre,porian]

Writes ``benchmarks/results/inner_rate_trend.md`` and ``.csv``.
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
from bayescale.calibration import (
    groups_of,
    log_likelihood,
    ratio_pairs,
    robust_variance,
    scale_decades,
    to_scale,
)

GRID = np.linspace(0.0, 0.6, 6001)


def ml_tau(r: np.ndarray, var: np.ndarray, d: np.ndarray, h: float) -> float:
    """Maximum-likelihood ``tau`` of ``r ~ Normal(0, var + tau^2 d^(2h))`` on ``GRID``."""
    ok = np.isfinite(r) & np.isfinite(var) & (var > 0) & (d > 0)
    if not ok.any():
        return float("nan")
    ll = log_likelihood([(r[ok], var[ok], d[ok])], GRID, [h])[0]
    return float(GRID[np.argmax(ll)])


def one_split(name, train, test, law, x, y, settings, seed=0) -> dict:
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bs.fit(train, law, x=x, y=y, random_seed=seed, **settings)
        cal = f.calibration
        new = f._frame(test[list((x or {}).values()) or list(f.law.inputs)])
        draws = f.draws(new, extrapolation=False, random_seed=seed).values
    summary = cal.summary()
    h = summary["h_mean"]
    z = to_scale(draws, cal.scale, clip=True)
    zt = to_scale(test[y].to_numpy(dtype=float), cal.scale, clip=True)
    part = "growth" if ratio_pairs(f.law) else "all"
    d = scale_decades(f, new, part)
    rec = {"split": name, "rows": len(train), "cut_by": cal.cut_by, "h": h,
           "tau_calibrated": summary["tau_median"]}
    inner = groups_of(cal)
    quantiles = sorted(cal.residuals["cutoff_quantile"].unique())
    for q, (r, var, dist) in zip(quantiles, inner):
        rec[f"tau_inner_{q:.2f}"] = ml_tau(r, var, dist, h)
        rec[f"n_{q:.2f}"] = len(r)
    rec["tau_real"] = ml_tau(zt - np.median(z, axis=0), robust_variance(z), d, h)
    rec["real_decades"] = float(np.median(d))
    print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in rec.items()
                                  if k.startswith("tau")) + f"; {time.time() - t0:.0f} s",
          flush=True)
    return rec


def trend(row: pd.Series) -> str:
    taus = [row[c] for c in row.index if c.startswith("tau_inner_") and np.isfinite(row[c])]
    if len(taus) < 2:
        return "n/a"
    lo, hi = taus[0], taus[-1]
    if abs(hi - lo) <= 0.2 * max(lo, hi, 1e-3):
        return "flat"
    return "falls" if hi < lo else "rises"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="chinchilla,gadre,porian")
    ap.add_argument("--out", default="inner_rate_trend")
    args = ap.parse_args()
    data = shared_datasets()
    t0 = time.time()
    rows = []
    for name, train, test, law, x, y, kw in ladder_splits(args.only, data):
        rows.append(one_split(name, train, test, law, x, y, dict(SETTINGS, **(kw or {}))))
    tab = pd.DataFrame(rows)
    tab["inner_trend"] = tab.apply(trend, axis=1)
    tab.to_csv(RESULTS / f"{args.out}.csv", index=False)
    counts = tab["inner_trend"].value_counts().to_dict()
    over = int((tab["tau_calibrated"] > 2 * tab["tau_real"] + 0.005).sum())
    lines = [
        *run_header("Inner forecasts' drift rate by cutoff, against the real forecast's",
                    "inner_rate_trend.py", t0, SETTINGS),
        "`tau_inner_q`: maximum-likelihood rate (per decade^h, log scale) of the inner "
        "forecasts of the fit on the rows below quantile q; `tau_real`: of the real "
        "forecast's errors; `tau_calibrated`: the calibration's posterior median. "
        "`inner_trend`: the last cutoff's rate against the first (within 20%: flat).",
        "",
        md_table(tab.round(4)),
        "",
        f"Inner rate from the first to the last cutoff: {counts}. The calibrated rate is "
        f"more than twice the real forecast's (+0.005) in {over} of {len(tab)} splits.",
    ]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))


if __name__ == "__main__":
    main()
