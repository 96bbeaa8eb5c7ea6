"""How precisely does the calibration benchmark measure coverage?

The targets of one split share its fit, its law's error and the calibrated drift
(``xi`` is shared by the rows of a forecast), so they are not independent checks: a
split's 90% intervals tend to cover all of its targets or none. This script reads a
per-target table written by ``benchmarks/calibration.py`` and reports, per dataset and
method, the pooled coverage with a 90% interval from a bootstrap over *splits* (whole
splits resampled with replacement, their targets pooled), the range of the per-split
coverages and the effective number of independent targets
(``p (1 - p) / Var_bootstrap``), next to the binomial interval that treats every target
as independent (Wilson), which is too narrow here. Nothing is refitted.

    python benchmarks/coverage_uncertainty.py [benchmarks/results/calibration_auto.csv]

Writes ``benchmarks/results/<input stem>_uncertainty.md`` (for the default input,
``calibration_auto_uncertainty.md``).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, md_table
from scipy import stats

LEVELS = (0.5, 0.9)
N_BOOT = 4000
#: Fewest splits for which the effective number of targets is reported.
MIN_SPLITS = 5


def split_bootstrap(g: pd.DataFrame, col: str, rng: np.random.Generator,
                    n_boot: int = N_BOOT) -> np.ndarray:
    """Pooled coverage of ``n_boot`` resamples of whole splits (targets pooled)."""
    per = g.groupby("split")[col].agg(["sum", "size"])
    hits, sizes = per["sum"].to_numpy(float), per["size"].to_numpy(float)
    idx = rng.integers(0, len(per), size=(n_boot, len(per)))
    return hits[idx].sum(axis=1) / sizes[idx].sum(axis=1)


def wilson(k: int, n: int, level: float = 0.9) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (targets taken as independent)."""
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return ci.low, ci.high


def rows_for(g: pd.DataFrame, dataset: str, method: str, rng: np.random.Generator) -> dict:
    row: dict = {"dataset": dataset, "method": method, "splits": g["split"].nunique(),
                 "targets": len(g)}
    for level in LEVELS:
        tag = f"cover{int(level * 100)}"
        gl = g.assign(**{tag: g[tag].astype(float)})
        p = gl[tag].mean()
        boot = split_bootstrap(gl, tag, rng)
        lo, hi = np.quantile(boot, [0.05, 0.95])
        per_split = gl.groupby("split")[tag].mean()
        wl, wh = wilson(int(gl[tag].sum()), len(gl))
        var = boot.var()
        row[tag] = p
        row[f"{tag}_split_boot90"] = f"{lo:.2f}-{hi:.2f}"
        row[f"{tag}_per_split_range"] = f"{per_split.min():.2f}-{per_split.max():.2f}"
        # too few splits for a variance (the bootstrap of 2-4 splits understates it)
        n_eff = p * (1 - p) / var if var > 0 and row["splits"] >= MIN_SPLITS else np.nan
        row[f"{tag}_n_eff"] = min(n_eff, len(g))
        row[f"{tag}_wilson90"] = f"{wl:.2f}-{wh:.2f}"
    return row


def table(points: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    points = points.copy()
    points["dataset"] = points["split"].str.split().str[0]
    out = [rows_for(g, ds, m, rng) for (ds, m), g in points.groupby(["dataset", "method"])]
    for m, g in points.groupby("method"):
        if g["dataset"].nunique() > 1:
            out.append(rows_for(g, "ALL", m, rng))
    return pd.DataFrame(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("csv", nargs="?", default=str(RESULTS / "calibration_auto.csv"))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    src = Path(args.csv)
    tab = table(pd.read_csv(src), seed=args.seed)
    out = RESULTS / f"{src.stem}_uncertainty.md"
    md = [
        "# How precisely the benchmark measures coverage",
        "",
        f"Input: `{src.name}` (per-target results of `benchmarks/calibration.py`); "
        f"{N_BOOT} bootstrap resamples of whole splits, seed {args.seed}.",
        f"Command: `{shlex.join(['python', 'benchmarks/coverage_uncertainty.py', *sys.argv[1:]])}`",
        "",
        "`coverXX_split_boot90`: 5-95% range of the pooled coverage over resampled splits; "
        "`_per_split_range`: lowest and highest coverage of one split; `_n_eff`: effective "
        "number of independent targets (from 5 splits up); `_wilson90`: the 90% binomial "
        "interval if every target were independent (too narrow when targets share a "
        "split). With 2-4 splits the bootstrap has few distinct outcomes and says little "
        "more than the range.",
        "",
        md_table(tab, floatfmt=".2f"),
        "",
    ]
    out.write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
