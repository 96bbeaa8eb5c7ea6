"""Are the errors of a forecast beyond the data shaped like the training noise?

The default likelihood of a loss law is a Student-t on the log scale; on ladders with a few
outlying runs its fitted ``nu`` is small (about 3), so the forecast's predictive has a
narrow core and long tails. If the held-out larger runs scatter around the law like a
Normal of larger spread instead, a predictive that covers them at 90% covers too few at 50%
(a closed form: a Student-t(3) predictive whose 90% interval covers 85% of Normal errors
covers 36% of them at 50%; a Normal predictive, 45%). For each loss split of
``benchmarks/calibration.py`` (the default fit, the benchmark's sampler settings) this
script compares the training residuals (log scale, from the plain posterior median) with
the held-out targets' errors: spread (sd and 1.4826 x MAD), excess kurtosis, and the
fitted ``nu`` and ``sigma``.

    python benchmarks/tails.py [--only chinchilla,gadre,porian]

Writes ``benchmarks/results/tails.md`` and ``.csv``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from _common import RESULTS, md_table, run_header, shared_datasets
from calibration import SETTINGS, ladder_splits
from scipy import stats

import bayescale as bs


def spread(r: np.ndarray) -> tuple[float, float, float]:
    """sd, robust sd (1.4826 x MAD) and excess kurtosis of ``r`` about its mean."""
    c = r - r.mean()
    mad = 1.4826 * np.median(np.abs(r - np.median(r)))
    kurt = float(stats.kurtosis(c)) if len(r) > 3 else float("nan")
    return float(c.std()), float(mad), kurt


def one_split(name, train, test, law, x, y, settings, seed=0) -> dict:
    t0 = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = bs.fit(train, law, x=x, y=y, random_seed=seed, **settings)
        cols = list((x or {}).values()) or list(f.law.inputs)
        fitted = f.predict(train[cols], extrapolation=False, random_seed=seed)["median"]
        held = f.predict(test[cols], random_seed=seed)
    r_train = np.log(train[y].to_numpy(dtype=float) / fitted.to_numpy())
    r_held = np.log(test[y].to_numpy(dtype=float) / held["median"].to_numpy())
    post = f.idata.posterior
    nu = float(np.median(post["nu"].values)) if "nu" in post else float("nan")
    sd_t, mad_t, k_t = spread(r_train)
    sd_h, mad_h, k_h = spread(r_held)
    print(f"{name}: nu {nu:.1f}, train sd {sd_t:.4f} kurt {k_t:.1f}, held-out sd {sd_h:.4f} "
          f"kurt {k_h:.1f}, {time.time() - t0:.0f} s", flush=True)
    return {
        "split": name,
        "likelihood": f.spec.likelihood,
        "nu": nu,
        "sigma": float(np.median(post["sigma"].values)),
        "train_n": len(r_train),
        "train_sd": sd_t,
        "train_robust_sd": mad_t,
        "train_excess_kurtosis": k_t,
        "heldout_n": len(r_held),
        "heldout_mean": float(r_held.mean()),
        "heldout_sd": sd_h,
        "heldout_robust_sd": mad_h,
        "heldout_excess_kurtosis": k_h,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="chinchilla,gadre,porian")
    ap.add_argument("--out", default="tails")
    args = ap.parse_args()
    data = shared_datasets()
    t0 = time.time()
    rows = [one_split(name, train, test, law, x, y, SETTINGS)
            for name, train, test, law, x, y, _kw in ladder_splits(args.only, data)]
    tab = pd.DataFrame(rows)
    tab.to_csv(RESULTS / f"{args.out}.csv", index=False)
    z = stats.norm.ppf(0.925)  # Normal errors covered at 85% by the 90% interval
    t3 = 2 * stats.norm.cdf(z * stats.t.ppf(0.75, 3) / stats.t.ppf(0.95, 3)) - 1
    normal = 2 * stats.norm.cdf(z * stats.norm.ppf(0.75) / stats.norm.ppf(0.95)) - 1
    lines = [
        *run_header("Training residuals against held-out errors (log scale)",
                    "tails.py", t0, SETTINGS),
        "Residuals of the training rows from the plain posterior median; errors of the "
        "held-out rows from the default (calibrated) median; sd, robust sd (1.4826 x MAD) and "
        "excess kurtosis (0 for a Normal) about the mean.",
        "",
        md_table(tab.round(4)),
        "",
        f"Closed form: when a predictive's 90% interval covers 85% of Normal errors, its 50% "
        f"interval covers {t3:.2f} of them if it is shaped as a Student-t with nu = 3, "
        f"{normal:.2f} if it is Normal.",
    ]
    (RESULTS / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[-1:]))


if __name__ == "__main__":
    main()
