"""Backtest on the 92 learning curves of Alabdulmohsin et al. (2022), "Revisiting Neural
Scaling Laws in Language and Vision": fit on each curve's `fit` split, forecast its
`extrapolate` split, compare with the paper's M1-M4 estimators.

Per curve: power_law (E + A x^-alpha) and broken_power_law (BNSL, one break) with
x = seen_examples, y = value, NUTS via nutpie, and their stacking average (ArviZ
stacking on the training fits' PSIS-LOO). Metric (the paper's): per-curve RMSE of
log predictions (posterior predictive median) on the extrapolation points, averaged
over the curves of a domain; plus the coverage of the 90% central predictive interval.

Usage::

    PYTHONPATH=. python benchmarks/revisiting_backtest.py [--curves default|all]
        [--max-minutes 40] [--draws 500] [--workers 2]

Results are appended per curve to benchmarks/results/revisiting_curves.csv (reruns
resume), then benchmarks/results/revisiting.md is written.

Other laws, one domain, separate files (``--tag m4_ic`` writes
``revisiting_m4_ic_curves.csv`` and ``revisiting_m4_ic.md``; a single law is scored
without an average, next to the main run's per-curve results on the same curves)::

    PYTHONPATH=. python benchmarks/revisiting_backtest.py --curves all --domain IC \
        --laws m4 --tag m4_ic --workers 1 --max-minutes 30
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from _common import shared_datasets  # noqa: E402

import bayescale as bs  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
CURVES_CSV = RESULTS / "revisiting_curves.csv"
LAWS = ("power_law", "broken_power_law")

# Reference: Google's M1-M4 estimators with default settings on the same split
# (mean per-curve RMSE of log predictions on the extrapolation points), from issue 4.
REFERENCE = {
    "IC": (72, "image classification error", (0.1046, 0.0475, 0.0615, 0.0381)),
    "NMT": (5, "translation log-perplexity", (0.2217, 0.0304, 0.0471, 0.0235)),
    "LM": (5, "language-model loss", (0.0140, 0.0020, 0.0022, 0.0023)),
    "BB": (10, "BIG-bench metrics", (0.0148, 0.0091, 0.0087, 0.0094)),
}


def load() -> pd.DataFrame:
    path = shared_datasets() / "revisiting_scaling_laws" / "revisiting_learning_curves.csv"
    return pd.read_csv(path)


def curve_order(df: pd.DataFrame, which: str) -> list[str]:
    """Round-robin over the domains (so any prefix covers all four), IC curves spread
    evenly over the sorted list; "default" = all non-IC curves + 10 IC curves."""
    ids = df.drop_duplicates("curve_id")[["curve_id", "domain"]]
    per = {d: sorted(ids.loc[ids.domain == d, "curve_id"]) for d in ("IC", "BB", "LM", "NMT")}
    ic = []
    step = 7
    for start in range(step):
        ic += per["IC"][start::step]
    per["IC"] = ic[:10] if which == "default" else ic
    order = []
    while any(per.values()):
        for d in ("IC", "BB", "LM", "NMT"):
            if per[d]:
                order.append(per[d].pop(0))
    return order


def run_curve(df_curve: pd.DataFrame, executor, draws: int, seed: int,
              laws: tuple[str, ...] = LAWS, average: str = "stacking",
              likelihood: str | None = None, chains: int = 2) -> pd.DataFrame:
    frame = pd.DataFrame({
        "seen_examples": df_curve["seen_examples"].to_numpy(),
        "value": df_curve["value"].to_numpy(),
        "held": (df_curve["split"] == "extrapolate").to_numpy(),
    })
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # "law:likelihood" labels fit that law with that likelihood (e.g. power_law:ar1)
        spec = {lab: (lab.split(":")[0], {"likelihood": lab.split(":")[1]}) if ":" in lab
                else lab for lab in laws}
        bt = bs.backtest(
            frame, spec, holdout="held", y="value", x={"x": "seen_examples"},
            average=average if len(laws) > 1 else None,
            prob=(0.5, 0.8, 0.9, 0.95), executor=executor, random_seed=seed,
            sampler="nutpie", draws=draws, tune=draws, chains=chains, warn=False,
            **({"likelihood": likelihood} if likelihood else {}),
        )
    t = bt.table.reset_index()
    # pooled coverage counts per curve for the domain-level pooled figure
    t["n_fit"] = int((~frame["held"]).sum())
    return t


def cov90(s: pd.DataFrame) -> str:
    """Mean per-curve 90% coverage, and pooled over extrapolation points in brackets."""
    pooled = (s.cov_90 * s.n).sum() / s.n.sum()
    return f"{s.cov_90.mean():.2f} ({pooled:.2f})"


def write_report(curves: pd.DataFrame, meta: dict) -> str:
    rows = []
    for dom in ("IC", "NMT", "LM", "BB"):
        sub = curves[curves.domain == dom]
        n_total, label, ref = REFERENCE[dom]
        n_run = sub.curve_id.nunique()
        row = {"domain": f"{label} ({n_run} of {n_total})"}
        for k, v in zip(("M1", "M2", "M3", "M4"), ref):
            row[k] = f"{v:.4f}"
        for law in ("power_law", "broken_power_law", "average"):
            s = sub[sub.law == law]
            if len(s) == 0:
                row[f"{law} RMSE"] = "-"
                row[f"{law} cov90"] = "-"
                continue
            row[f"{law} RMSE"] = f"{s.rmse_log.mean():.4f}"
            row[f"{law} cov90"] = cov90(s)
        rows.append(row)
    table = pd.DataFrame(rows)
    header = "| " + " | ".join(table.columns) + " |"
    sep = "|" + "---|" * len(table.columns)
    body = "\n".join("| " + " | ".join(map(str, r)) + " |" for r in table.to_numpy())
    ran = curves.groupby("domain").curve_id.nunique().to_dict()
    ran_text = ", ".join(f"{k} {v}" for k, v in sorted(ran.items()))
    failed = meta.get("failed", [])
    text = f"""# Revisiting-scaling-laws backtest (Alabdulmohsin et al. 2022 benchmark)

Fit split -> extrapolate split for each learning curve (x = seen_examples, y = value).
bayescale: `power_law` (E + A x^-alpha, E below the smallest observed value),
`broken_power_law` (BNSL with one break) and their stacking average (ArviZ stacking
weights from PSIS-LOO of the training fits). NUTS with nutpie, {meta['chains']} chains x
({meta['draws']} tune + {meta['draws']} draws), random_seed={meta['seed']}, executor: local spawn
process pool with {meta['workers']} workers on a shared 2-vCPU machine.

**What was run:** {sum(ran.values())} of 92 curves: {ran_text}
(curves taken round-robin over the domains, IC curves evenly from the sorted curve
list, until the time budget ran out; see `curve_order` in the script).
Wall time {meta['minutes']:.1f} min.
{('Curves that failed: ' + ', '.join(failed)) if failed else ''}

RMSE = mean over curves of the per-curve RMSE of log(posterior predictive median) -
log(value) on the extrapolation points (the paper's metric; M1-M4 columns are the
reference figures from Google's estimators on all curves of a domain, issue 4).
cov90 = mean over curves of the fraction of extrapolation points inside the 90%
central predictive interval (in brackets: pooled over all points of the domain).

{header}
{sep}
{body}

Per-curve numbers: `benchmarks/results/revisiting_curves.csv` (also abs_rel_err,
cov_50/80/95, width_90, lpd, crps, stacking weight, sampling problems).
"""
    return text


def write_tagged_report(curves: pd.DataFrame, meta: dict, laws: tuple[str, ...],
                        tag: str) -> str:
    """Per-domain RMSE / 90% coverage of ``laws`` next to the main run's laws on the same
    curves (from ``revisiting_curves.csv``, same seed and sampler settings)."""
    main = pd.read_csv(CURVES_CSV) if CURVES_CSV.exists() else pd.DataFrame(columns=curves.columns)
    ids = set(curves.curve_id)
    both = pd.concat([curves, main[main.curve_id.isin(ids) & ~main.law.isin(set(curves.law))]])
    shown = list(laws) + [w for w in ("power_law", "broken_power_law", "average")
                          if w not in laws and w in set(both.law)]
    lines = []
    for dom in ("IC", "NMT", "LM", "BB"):
        sub = both[both.domain == dom]
        if len(sub) == 0:
            continue
        n_total, label, ref = REFERENCE[dom]
        # only curves every shown law has (the main run may lack some)
        have = sub.groupby("curve_id").law.nunique()
        keep = set(have[have == have.max()].index)
        sub = sub[sub.curve_id.isin(keep)]
        row = [f"{label} ({len(keep)} of {n_total})", f"{ref[1]:.4f}", f"{ref[3]:.4f}"]
        for law in shown:
            s = sub[sub.law == law]
            if len(s) == 0:
                row += ["-", "-"]
                continue
            row += [f"{s.rmse_log.mean():.4f}", cov90(s)]
        lines.append("| " + " | ".join(row) + " |")
    alone = []
    for dom in ("IC", "NMT", "LM", "BB"):
        sub = curves[curves.domain == dom]
        if len(sub) == 0:
            continue
        n_total, label, ref = REFERENCE[dom]
        for law in laws:
            s = sub[sub.law == law]
            alone.append(f"| {label} | {law} | {s.curve_id.nunique()} of {n_total} | "
                         f"{ref[3]:.4f} | {s.rmse_log.mean():.4f} | {s.rmse_log.median():.4f} | "
                         f"{cov90(s)} |")
    cols = ["domain", "M2 (all curves)", "M4 (all curves)"]
    for law in shown:
        cols += [f"{law} RMSE", f"{law} cov90"]
    header = "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)
    failed = meta.get("failed", [])
    return f"""# Revisiting-scaling-laws backtest: {", ".join(laws)} ({tag})

Same protocol as `revisiting.md` (fit split -> extrapolate split, x = seen_examples,
NUTS with nutpie, {meta['chains']} chains x ({meta['draws']} tune + {meta['draws']} draws),
random_seed={meta['seed']}, {meta['workers']} worker(s) on a 2-vCPU machine), likelihood
{meta.get('likelihood', 'studentt')}, for {", ".join(laws)} and their average
(weights: {meta.get('average', 'stacking')}); intervals are bayescale's default (calibrated)
forecasts. Columns of laws not run here come from the earlier run's per-curve results
(`revisiting_curves.csv`) on the same curves. Curves in `curve_order(..., "all")` order
until done or out of time. Sampling time
{meta['minutes']:.1f} min.
{('Curves that failed: ' + ', '.join(failed)) if failed else ''}

RMSE = mean over curves of the per-curve RMSE of log(posterior predictive median) -
log(value) on the extrapolation points; M2/M4 = Google's estimators on all curves of
the domain (issue 4). cov90 = mean over curves of the fraction of extrapolation points
inside the 90% central predictive interval (pooled over points in brackets).

Per domain (curves every column has):

{header}
{chr(10).join(lines)}

On every curve of this run:

| domain | law | curves | M4 (Google, all curves) | RMSE | median RMSE | cov90 |
|---|---|---|---|---|---|---|
{chr(10).join(alone)}

Per-curve numbers: `benchmarks/results/revisiting_{tag}_curves.csv`.
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--curves", default="default", choices=["default", "all"])
    ap.add_argument("--max-minutes", type=float, default=40.0)
    ap.add_argument("--draws", type=int, default=500)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--laws", default=",".join(LAWS),
                    help="comma-separated law names; law:likelihood for another likelihood "
                         "(power_law:ar1)")
    ap.add_argument("--domain", default=None, choices=["IC", "NMT", "LM", "BB"])
    ap.add_argument("--tag", default=None, help="write revisiting_<tag>_curves.csv/.md")
    ap.add_argument("--average", default="stacking", choices=["stacking", "lfo"],
                    help="weights of the model average: LOO stacking or leave-future-out "
                         "stacking on the last 20%% of each curve's fit split")
    ap.add_argument("--likelihood", default=None,
                    help="likelihood of every law's fit, e.g. ar1 (default: the law's)")
    args = ap.parse_args()
    laws = tuple(args.laws.split(","))
    if args.tag is None and laws != LAWS:
        raise SystemExit("other laws than the default need --tag (separate result files)")
    curves_csv = RESULTS / f"revisiting_{args.tag}_curves.csv" if args.tag else CURVES_CSV
    RESULTS.mkdir(parents=True, exist_ok=True)
    df = load()
    order = curve_order(df, args.curves)
    if args.domain:
        dom = df.drop_duplicates("curve_id").set_index("curve_id").domain
        order = [c for c in order if dom[c] == args.domain]
    done = pd.read_csv(curves_csv) if curves_csv.exists() else pd.DataFrame()
    done_ids = set(done.curve_id) if len(done) else set()
    t0 = time.time()
    failed = []
    if not args.report_only:
        ctx = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=args.workers, mp_context=ctx) as ex:
            for i, cid in enumerate(order):
                if cid in done_ids:
                    continue
                if (time.time() - t0) / 60 > args.max_minutes:
                    print("time budget reached", flush=True)
                    break
                sub = df[df.curve_id == cid].sort_values("seen_examples")
                t1 = time.time()
                try:
                    t = run_curve(sub, ex, args.draws, args.seed, laws, args.average,
                                  args.likelihood, args.chains)
                except Exception as exc:  # record and go on
                    print(f"[{i}] {cid}: FAILED {exc}", flush=True)
                    failed.append(cid)
                    continue
                t.insert(0, "domain", sub.domain.iloc[0])
                t.insert(0, "curve_id", cid)
                t["seconds"] = time.time() - t1
                t.to_csv(curves_csv, mode="a", header=not curves_csv.exists(), index=False)
                r = t.set_index("law")
                scores = " ".join(f"{law}={r.loc[law, 'rmse_log']:.4f}/{r.loc[law, 'cov_90']:.2f}"
                                  for law in r.index)
                print(f"[{i}] {cid}: rmse/cov90 {scores} ({time.time()-t1:.0f}s)", flush=True)
    curves = pd.read_csv(curves_csv)
    minutes = curves.drop_duplicates("curve_id").seconds.sum() / 60
    meta = dict(draws=args.draws, chains=args.chains, seed=args.seed, workers=args.workers,
                likelihood=args.likelihood or "the law's (studentt)",
                minutes=minutes, failed=failed,
                average="LOO stacking" if args.average == "stacking"
                else "leave-future-out stacking")
    if args.tag:
        text = write_tagged_report(curves, meta, laws, args.tag)
        (RESULTS / f"revisiting_{args.tag}.md").write_text(text)
    else:
        text = write_report(curves, meta)
        (RESULTS / "revisiting.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
