"""Coverage per distinct target where a dataset's splits overlap.

Chinchilla's two splits (by size, by compute) cut the same points two ways, and Pythia's
two cuts of each Pile variant forecast the same larger models: the benchmark's pooled
coverage counts such a point once per split that forecasts it. This script regenerates
the splits (to know which rows each target is), and reports, per dataset and method, the
pooled coverage as the benchmark counts it next to the coverage of each distinct point
(its coverage averaged over the splits that forecast it, then averaged over points).
Nothing is refitted.

    python benchmarks/distinct_targets.py [benchmarks/results/calibration_auto.csv]

Writes ``benchmarks/results/<input stem>_distinct.md``.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from _common import RESULTS, md_table, shared_datasets
from calibration import chinchilla_splits, pythia_splits

LEVELS = (50, 90)


def keyed(points: pd.DataFrame, splits) -> pd.DataFrame:
    """The benchmark's rows of ``splits`` with ``key``, the target's row in the raw data."""
    parts = []
    for name, _, test, *_, y, _ in splits:
        g = points[points["split"] == name].sort_values(["method", "target"])
        for _, gm in g.groupby("method"):
            if len(gm) != len(test) or not np.allclose(gm["truth"], test[y]):
                raise SystemExit(f"{name}: the table's targets are not this split's rows")
            parts.append(gm.assign(key=test.index.to_numpy()))
    return pd.concat(parts, ignore_index=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("table", nargs="?", default=str(RESULTS / "calibration_auto.csv"))
    args = ap.parse_args()
    points = pd.read_csv(args.table)
    data = shared_datasets()
    rows = []
    for dataset, splits in (("chinchilla", list(chinchilla_splits(data))),
                            ("pythia", list(pythia_splits(data)))):
        g = keyed(points, splits)
        for method, gm in g.groupby("method"):
            row = {"dataset": dataset, "method": method, "splits": gm["split"].nunique(),
                   "targets": len(gm), "distinct": gm["key"].nunique()}
            for p in LEVELS:
                col = f"cover{p}"
                row[f"{col} (targets)"] = gm[col].mean()
                row[f"{col} (distinct)"] = gm.groupby("key")[col].mean().mean()
            rows.append(row)
    out = RESULTS / f"{Path(args.table).stem}_distinct.md"
    md = ["# Coverage per distinct target", "",
          f"Command: `{shlex.join(['python', 'benchmarks/distinct_targets.py', *sys.argv[1:]])}`",
          "", md_table(pd.DataFrame(rows)), ""]
    out.write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
