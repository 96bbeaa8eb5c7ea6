"""Helpers shared by the benchmark scripts (not part of the package)."""

from __future__ import annotations

import os
import platform
import shlex
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def shared_datasets() -> Path:
    env = os.environ.get("BAYESCALE_DATA")
    for cand in ([Path(env)] if env else []) + [REPO.parent / "shared" / "datasets"]:
        if cand.is_dir():
            return cand
    raise SystemExit("shared datasets not found: set BAYESCALE_DATA")


def machine() -> str:
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average {load:.1f}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
    )


def md_table(df, floatfmt: str = ".3f") -> str:
    """A GitHub markdown table without the optional tabulate dependency."""
    cols = list(df.columns)

    def fmt(v):
        if isinstance(v, float):
            return format(v, floatfmt)
        return str(v).replace("|", "\\|")  # a literal pipe would split the cell

    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(fmt(row[c]) for c in cols) + " |")
    return "\n".join(lines)


def run_header(title: str, script: str, t0: float, settings) -> list[str]:
    """The first lines of a result file: title, machine, wall time since ``t0``, command."""
    return [
        f"# {title}",
        "",
        f"Machine: {machine()}; wall time {time.time() - t0:.0f} s; settings {settings}.",
        f"Command: `{shlex.join(['python', f'benchmarks/{script}', *sys.argv[1:]])}`",
        "",
    ]
