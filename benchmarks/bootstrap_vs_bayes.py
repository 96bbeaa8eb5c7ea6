"""The point-fit + bootstrap recipe against bayescale on Epoch's Chinchilla points.

The recipe a user would otherwise run (Hoffmann et al. 2022 as replicated by Epoch AI,
Besiroglu et al. 2024): minimise the Huber loss (delta = 1e-3) of
``LSE(a - alpha log N, b - beta log D, e) - log L`` with L-BFGS-B from a grid of
initialisations, then refit 1000 bootstrap resamples (each started from the full-data
optimum) and take quantiles of the bootstrap predictions as the interval.

Both methods are fitted on the points below 3e20 FLOPs and scored on the points at or
above it: wall time and coverage of the 90% intervals.

    python benchmarks/bootstrap_vs_bayes.py   # -> benchmarks/results/bootstrap_vs_bayes.md
"""

from __future__ import annotations

import itertools
import os
import time
import warnings

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from _common import RESULTS, machine, md_table, shared_datasets  # noqa: E402
from scipy.optimize import minimize  # noqa: E402
from scipy.special import logsumexp, softmax  # noqa: E402

import bayescale as bs  # noqa: E402

DELTA = 1e-3


def objective(theta, ln, ld, ll):
    a, b, e, alpha, beta = theta
    z = np.stack([a - alpha * ln, b - beta * ld, np.full_like(ln, e)])
    pred = logsumexp(z, axis=0)
    r = pred - ll
    small = np.abs(r) <= DELTA
    loss = np.where(small, 0.5 * r**2, DELTA * (np.abs(r) - 0.5 * DELTA)).sum()
    g = np.where(small, r, DELTA * np.sign(r))
    w = softmax(z, axis=0)
    grad = np.array(
        [
            (g * w[0]).sum(),
            (g * w[1]).sum(),
            (g * w[2]).sum(),
            (-g * w[0] * ln).sum(),
            (-g * w[1] * ld).sum(),
        ]
    )
    return loss, grad


def point_fit(ln, ld, ll, inits):
    best = None
    for x0 in inits:
        res = minimize(objective, x0, args=(ln, ld, ll), jac=True, method="L-BFGS-B")
        if best is None or res.fun < best.fun:
            best = res
    return best.x


def predict(theta, ln, ld):
    a, b, e, alpha, beta = theta
    return np.exp(logsumexp(np.stack([a - alpha * ln, b - beta * ld, np.full_like(ln, e)]), axis=0))


def main():
    data = shared_datasets()
    raw = pd.read_csv(data / "epoch_chinchilla" / "chinchilla_fig4_points.csv")
    df = raw[~raw["epoch_excluded_outlier"]].rename(columns={"params": "N", "tokens": "D"})
    train, test = df[df.flops < 3e20], df[df.flops >= 3e20]
    ln, ld, ll = np.log(train.N.values), np.log(train.D.values), np.log(train.loss.values)
    tln, tld = np.log(test.N.values), np.log(test.D.values)
    truth = test.loss.values

    grid = list(
        itertools.product(
            [0, 5, 10, 15, 20, 25], [0, 5, 10, 15, 20, 25], [-1, -0.5, 0, 0.5, 1],
            [0, 0.5, 1.0, 1.5, 2.0], [0, 0.5, 1.0, 1.5, 2.0],
        )
    )
    rng = np.random.default_rng(0)
    t0 = time.time()
    theta = point_fit(ln, ld, ll, grid)
    t_grid = time.time() - t0
    t0 = time.time()
    boots = []
    for _ in range(1000):
        i = rng.integers(0, len(ll), len(ll))
        boots.append(point_fit(ln[i], ld[i], ll[i], [theta]))
    t_boot = time.time() - t0
    preds = np.array([predict(b, tln, tld) for b in boots])
    lo, hi = np.quantile(preds, [0.05, 0.95], axis=0)
    rows = [
        {
            "method": "L-BFGS grid + 1000 bootstrap (Epoch recipe)",
            "wall_s": t_grid + t_boot,
            "detail": f"grid {len(grid)} inits {t_grid:.1f} s, bootstrap {t_boot:.1f} s",
            "coverage90": np.mean((truth >= lo) & (truth <= hi)),
            "median_are": np.median(np.abs(predict(theta, tln, tld) - truth) / truth),
            "width90": np.median((hi - lo) / np.median(preds, axis=0)),
        }
    ]
    for sampler in ("numpyro", "nutpie"):
        t0 = time.time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = bs.fit(train, "chinchilla", random_seed=0, sampler=sampler, progressbar=False)
        t_fit = time.time() - t0
        for ext in (False, True):
            t1 = time.time()
            p = f.predict(test[["N", "D"]], prob=0.9, extrapolation=ext)
            t_pred = time.time() - t1
            rows.append(
                {
                    "method": f"bayescale NUTS ({sampler}, 4x1000)"
                    + (", calibrated" if ext else ", plain"),
                    "wall_s": t_fit + (t_pred if ext else 0.0),
                    "detail": f"fit {t_fit:.1f} s"
                    + (f", calibration {t_pred:.1f} s" if ext else ""),
                    "coverage90": np.mean((truth >= p.lower.values) & (truth <= p.upper.values)),
                    "median_are": np.median(np.abs(p["median"].values - truth) / truth),
                    "width90": np.median((p.upper - p.lower) / p["median"]),
                }
            )
    tab = pd.DataFrame(rows)
    md = [
        "# Point fit + bootstrap vs bayescale (Epoch's Chinchilla points)",
        "",
        f"Machine: {machine()}. Train: {len(train)} points with C < 3e20 FLOPs; "
        f"test: {len(test)} points with C >= 3e20.",
        "",
        md_table(tab),
        "",
        "Bootstrap intervals are quantiles of the refitted mean curve (no noise term), as in "
        "the recipe; bayescale's are posterior predictive intervals.",
    ]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bootstrap_vs_bayes.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
