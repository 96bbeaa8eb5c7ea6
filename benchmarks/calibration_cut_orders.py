"""Which order of the training rows should the calibration's inner cutoffs follow?

For every loss-ladder split of ``calibration.py`` (Chinchilla, Gadre, Porian and the
simulated ladders with known truths; Revisiting's and Pythia's laws have one input, where
the orders agree), fit once and forecast the held-out targets with

* ``plain``: no discrepancy;
* ``scale``: inner cutoffs by log scale (compute);
* ``inputs``: inner cutoffs by each row's largest percentile rank over inputs and scale;
* ``union``: one discrepancy learned from both orders' inner forecasts together;
* ``worst``: the calibration (``scale`` or ``inputs``) that learned the larger
  discrepancy, i.e. ``calibrate(cut_by="worst")``, the package's default.

    python benchmarks/calibration_cut_orders.py [--only chinchilla,gadre,porian,simulated]

Writes benchmarks/results/calibration_cut_orders.csv (per split and method) and .md.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
import warnings
from dataclasses import replace

import pandas as pd
from _common import RESULTS, machine, md_table, shared_datasets
from calibration import chinchilla_splits, gadre_splits, porian_splits, score, simulated_splits

import bayescale as bs
from bayescale.calibration import H_GRID, groups_of, keep_wider, posterior_tau

SETTINGS = dict(draws=500, tune=500, chains=4, sampler="nutpie", progressbar=False,
                likelihood="auto")


def methods(f):
    """The fit under each way of calibrating it (``None``: the plain predictive)."""
    fs = f.calibrate(cut_by="scale")
    fi = f.calibrate(cut_by="inputs")
    cs, ci = fs.calibration, fi.calibration
    union = posterior_tau(groups_of(cs) + groups_of(ci), cs.prior_scale, h_grid=H_GRID)
    worst = f.with_calibration(keep_wider({"scale": cs, "inputs": ci}))
    return {"plain": None, "scale": fs, "inputs": fi,
            "union": f.with_calibration(replace(cs, weights=union)), "worst": worst}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="chinchilla,gadre,porian,simulated")
    args = ap.parse_args()
    data = shared_datasets()
    gens = {"chinchilla": lambda: chinchilla_splits(data), "gadre": lambda: gadre_splits(data),
            "porian": lambda: porian_splits(data, False), "simulated": simulated_splits}
    rows = []
    t0 = time.time()
    for key in args.only.split(","):
        for name, train, test, law, x, y, fit_kw in gens[key]():
            if "run=size" in name:  # the run column makes the orders' difference moot
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = bs.fit(train, law, x=x, y=y, random_seed=0, **SETTINGS, **fit_kw)
                new = test[list((x or {}).values()) or list(bs.get_law(law).inputs)]
                truth = test[y].to_numpy(dtype=float)
                for method, g in methods(f).items():
                    d = (f.draws(new, extrapolation=False, random_seed=0) if g is None
                         else g.draws(new, random_seed=0)).values
                    t = score(name, method, d, truth, f if g is None else g, new)
                    rows.append({"dataset": key if key != "simulated" else name.split()[0],
                                 "split": name, "method": method, "targets": len(truth),
                                 "are": float(t["are"].median()),
                                 "cover50": float(t["cover50"].mean()),
                                 "width50": float(t["width50"].median()),
                                 "cover90": float(t["cover90"].mean()),
                                 "width90": float(t["width90"].median())})
            print(name, f"{time.time() - t0:.0f} s", flush=True)
    per = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    per.to_csv(RESULTS / "calibration_cut_orders.csv", index=False)
    w = per.assign(c50=per.cover50 * per.targets, c90=per.cover90 * per.targets)
    table = w.groupby(["dataset", "method"], sort=False).agg(
        splits=("split", "nunique"), targets=("targets", "sum"), c50=("c50", "sum"),
        c90=("c90", "sum"), median_are=("are", "median"), width90=("width90", "median"))
    table["cover50"] = table.pop("c50") / table["targets"]
    table["cover90"] = table.pop("c90") / table["targets"]
    table = table.reset_index()[["dataset", "method", "splits", "targets", "cover50",
                                 "cover90", "median_are", "width90"]]
    cmd = "python benchmarks/calibration_cut_orders.py " + shlex.join(sys.argv[1:])
    text = (
        "# Order of the rows for the calibration's inner cutoffs\n\n"
        f"Machine: {machine()}; wall time {time.time() - t0:.0f} s; settings {SETTINGS}.\n"
        f"Command: `{cmd.strip()}`\n\n"
        "Coverage of central intervals pooled over held-out targets; median over splits of "
        "the median absolute relative error and of the median relative 90% width. `worst` "
        "is `calibrate(cut_by=\"worst\")`, the default.\n\n" + md_table(table) + "\n"
    )
    (RESULTS / "calibration_cut_orders.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
