"""How often do default fits of learning curves report sampling problems?

Fits ``power_law`` (default ``likelihood="auto"``, nutpie, 4 chains, seed 0) to every
6th image-classification curve of the Revisiting benchmark (12 curves, fit split) with
500, 1000 (the default) and 2000 tuning steps and draws, and records what each fit
reports: the likelihood auto chose, max r_hat, min bulk ESS, divergences, problems.

    BAYESCALE_DATA=... python benchmarks/sampling_flags.py

Writes benchmarks/results/sampling_flags_ic.md and .csv.

``--mass`` instead compares nutpie's mass matrices on the same 12 curves: ``ar1`` and
``studentt`` likelihoods, the low-rank-modified (the default) and the diagonal mass
matrix, seeds 0 and 1, 1000 draws; writes sampling_flags_mass.md and .csv.
"""

from __future__ import annotations

import sys
import time
import warnings

import pandas as pd
from _common import RESULTS, machine, md_table, shared_datasets

import bayescale as bs

DRAWS = (500, 1000, 2000)


def ic_curves() -> tuple[pd.DataFrame, list[str]]:
    """The Revisiting learning curves and every 6th image-classification curve id."""
    path = shared_datasets() / "revisiting_scaling_laws" / "revisiting_learning_curves.csv"
    df = pd.read_csv(path)
    return df, sorted(df[df.domain == "IC"].curve_id.unique())[::6]


def main() -> None:
    df, ids = ic_curves()
    rows = []
    for draws in DRAWS:
        for cid in ids:
            sub = df[(df.curve_id == cid) & (df.split == "fit")]
            t0 = time.time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = bs.fit(sub, "power_law", x={"x": "seen_examples"}, y="value", draws=draws,
                           tune=draws, chains=4, random_seed=0, warn=False)
            d = f.diagnostics
            problems = d.get("problems", ())
            rows.append(dict(
                curve=cid, draws=draws,
                likelihood=f.spec.likelihood,
                max_rhat=round(d["max_rhat"], 3), min_ess_bulk=round(d["min_ess_bulk"]),
                divergences=d["divergences"], flagged=bool(problems),
                modes=any("different modes" in p for p in problems),
                seconds=round(time.time() - t0, 1),
            ))
            print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    out.to_csv(RESULTS / "sampling_flags_ic.csv", index=False)
    agg = out.groupby("draws").agg(
        fits=("curve", "size"), flagged=("flagged", "sum"),
        rhat_over_1_1=("max_rhat", lambda r: int((r > 1.1).sum())),
        with_divergences=("divergences", lambda x: int((x > 0).sum())),
        separate_modes=("modes", "sum"), ar1=("likelihood", lambda x: int((x == "ar1").sum())),
    ).reset_index()
    text = f"""# Sampling problems of default fits on learning curves

{machine()}. `python benchmarks/sampling_flags.py`: `power_law`, `likelihood="auto"`,
nutpie, 4 chains, seed 0, tune = draws, on every 6th image-classification curve of the
Revisiting benchmark (fit split). A fit is flagged when it reports any problem
(divergences, r_hat > 1.01, bulk or tail ESS < 400); `separate_modes` counts fits whose
report says the chains sit in different modes.

{md_table(agg, floatfmt=".0f")}

Per fit:

{md_table(out.assign(curve=out.curve.str.replace('|', ' / ')), floatfmt=".3f")}
"""
    (RESULTS / "sampling_flags_ic.md").write_text(text)
    print(text)


def mass() -> None:
    df, ids = ic_curves()
    rows = []
    for lik in ("ar1", "studentt"):
        for low_rank in (True, False):
            for cid in ids:
                sub = df[(df.curve_id == cid) & (df.split == "fit")]
                for seed in (0, 1):
                    t0 = time.time()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        f = bs.fit(sub, "power_law", x={"x": "seen_examples"}, y="value",
                                   likelihood=lik, chains=4, random_seed=seed, warn=False,
                                   low_rank_modified_mass_matrix=low_rank)
                    d = f.diagnostics
                    rows.append(dict(
                        likelihood=lik, mass_matrix="low-rank" if low_rank else "diagonal",
                        curve=cid, seed=seed, max_rhat=round(d["max_rhat"], 3),
                        min_ess_bulk=round(d["min_ess_bulk"]), divergences=d["divergences"],
                        seconds=round(time.time() - t0, 1),
                    ))
                    print(rows[-1], flush=True)
    out = pd.DataFrame(rows)
    out.to_csv(RESULTS / "sampling_flags_mass.csv", index=False)
    agg = out.groupby(["likelihood", "mass_matrix"]).agg(
        fits=("curve", "size"),
        rhat_over_1_01=("max_rhat", lambda r: int((r > 1.01).sum())),
        rhat_over_1_1=("max_rhat", lambda r: int((r > 1.1).sum())),
        median_ess=("min_ess_bulk", "median"), lowest_ess=("min_ess_bulk", "min"),
        median_s=("seconds", "median"),
    ).reset_index()
    wide = out.pivot_table(index=["curve", "seed"], columns=["likelihood", "mass_matrix"],
                           values="min_ess_bulk").reset_index()
    wide.columns = [" ".join(c).strip() if isinstance(c, tuple) else c for c in wide.columns]
    text = f"""# nutpie's mass matrix on learning curves: low-rank-modified vs diagonal

{machine()}. `python benchmarks/sampling_flags.py --mass`: `power_law` with `ar1` and
`studentt` likelihoods, nutpie, 4 chains x 1000 draws (1000 tune), seeds 0 and 1, on every
6th image-classification curve of the Revisiting benchmark (fit split).

{md_table(agg, floatfmt=".3g")}

Min bulk ESS per fit:

{md_table(wide.assign(curve=wide.curve.str.replace('|', ' / ')), floatfmt=".0f")}
"""
    (RESULTS / "sampling_flags_mass.md").write_text(text)
    print(text)


if __name__ == "__main__":
    mass() if "--mass" in sys.argv[1:] else main()
