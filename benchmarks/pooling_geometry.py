"""What each pooled parameter costs NUTS with few groups: Gadre et al., C4 validation loss.

Data: ``gadre_overtraining/gadre_losses_long.csv`` (shared datasets folder), the 104
models' ``c4_val`` loss, three training datasets (C4, RedPajama, RefinedWeb) as groups.
Law ``chinchilla`` (N = params, D = tokens), all rows, default priors and group scales.

Variants: unpooled; one term pooled over ``dataset`` (E; A and alpha; B and beta); all
five parameters pooled (``pooled="dataset"``, the CLI's ``--pooled dataset``). Each on
the JAX path (NumPyro NUTS) and, for the all-pooled fit, on nutpie too. The measure is
the mean number of leapfrog steps per draw (the work NUTS does per draw, independent of
the machine's speed), with sampling seconds, divergences, r-hat and bulk ESS.

Run::

    BAYESCALE_DATA=/path/to/datasets python benchmarks/pooling_geometry.py \
        [--draws 1000 --tune 1000 --chains 4]

Writes ``benchmarks/results/pooling_geometry.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import arviz as az
import pandas as pd
from _common import machine, md_table, shared_datasets

import bayescale as bs

HERE = Path(__file__).resolve().parent
X = {"N": "params", "D": "tokens"}
VARIANTS = {
    "unpooled": None,
    "E": {"E": "dataset"},
    "A, alpha": {"A": "dataset", "alpha": "dataset"},
    "B, beta": {"B": "dataset", "beta": "dataset"},
    "all five": "dataset",
}


def load() -> pd.DataFrame:
    df = pd.read_csv(shared_datasets() / "gadre_overtraining" / "gadre_losses_long.csv")
    return df[df.val_set == "c4_val"].reset_index(drop=True)


def one(df: pd.DataFrame, pooled, sampler: str, args) -> dict:
    t0 = time.perf_counter()
    f = bs.fit(df, "chinchilla", x=X, pooled=pooled, sampler=sampler, draws=args.draws,
               tune=args.tune, chains=args.chains, random_seed=args.seed, progressbar=False,
               warn=False)
    wall = time.perf_counter() - t0
    ss = f.idata.sample_stats
    ess = az.ess(f.posterior, method="bulk")
    return {
        "steps_per_draw": float(ss["n_steps"].mean()),
        "sample_s": float(f.settings.get("timing", {}).get("sample_s", float("nan"))),
        "wall_s": wall,
        "divergences": int(ss["diverging"].sum()),
        "max_rhat": float(f.diagnostics["max_rhat"]),
        "min_bulk_ess": float(min(float(ess[v].min()) for v in ess.data_vars)),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="pooling_geometry.md")
    args = ap.parse_args()
    df = load()
    rows = []
    runs = [(name, "jax") for name in VARIANTS] + [("all five", "nutpie")]
    for name, sampler in runs:
        r = one(df, VARIANTS[name], sampler, args)
        rows.append({"pooled over dataset": name, "sampler": sampler, **r})
        print(rows[-1], flush=True)
    render(rows, args, len(df))


def render(rows: list[dict], args, n_rows: int) -> None:
    """Write the results table (steps and seconds to 1 decimal, r-hat to 3, ESS whole)."""
    table = pd.DataFrame(rows).round({"steps_per_draw": 1, "sample_s": 1, "wall_s": 1,
                                      "max_rhat": 3})
    table["min_bulk_ess"] = table["min_bulk_ess"].round().astype(int)
    text = [
        "# What each pooled parameter costs NUTS (Gadre c4_val, 3 datasets)",
        "",
        f"`python benchmarks/pooling_geometry.py --draws {args.draws} --tune {args.tune} "
        f"--chains {args.chains} --seed {args.seed}`; {n_rows} rows; {machine()}.",
        "Wall and sampling seconds depend on the machine's load; steps per draw do not.",
        "",
        md_table(table, ""),
        "",
    ]
    out = HERE / "results" / args.out
    out.write_text("\n".join(text))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
