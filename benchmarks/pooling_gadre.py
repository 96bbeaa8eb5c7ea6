"""Pooled vs unpooled Chinchilla fits on the Gadre et al. over-training testbed.

Data: ``gadre_overtraining/gadre_losses_long.csv`` (104 models x 8 validation sets)
from the shared datasets folder (``BAYESCALE_DATA`` or ``../shared/datasets``).
Groups: the three training datasets (C4, RedPajama, RefinedWeb); tasks: the
validation sets. Fit ``chinchilla`` (N = params, D = tokens) on the four small
architectures (10.6M-412M parameters) and predict the held-out open_lm_1b (1.4B)
and open_lm_7b (6.9B) runs: up to ~10x the largest fitted compute for 1B and
~100x for 7B.

Strategies (same NUTS settings):

* ``unpooled``: one fit per (dataset, validation set) cell.
* ``pooled E,A,B (crossed)``: one fit over all cells, E, A, B pooled over ``dataset``
  and ``val_set`` (crossed, additive on the unconstrained scale); exponents shared.
* ``pooled E,A,B (cell)``: one fit, E, A, B pooled over the (dataset, val_set) cell.

Both pooled fits use wider group scales than the defaults (``GROUP_SCALE``), since
validation sets differ by up to a factor 2 in loss.

Scenario ``sparse``: the RefinedWeb family keeps only 8 training runs (token
multipliers 1 and 4 of each small architecture); the other two datasets keep all
of theirs. Reported on RefinedWeb's held-out runs only.

Metrics: absolute relative error of the posterior median (``|pred - loss| / loss``)
and coverage of the central 90% posterior predictive interval, per held-out row.

Run::

    BAYESCALE_DATA=/path/to/datasets python benchmarks/pooling_gadre.py \
        [--val-sets c4_val,paloma_ptb] [--draws 500 --tune 500 --chains 2]

Writes ``benchmarks/results/pooling_gadre.md`` and ``pooling_gadre.csv``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

import bayescale as bs

HERE = Path(__file__).resolve().parent
DEFAULT_VAL_SETS = ["c4_val"]
X = {"N": "params", "D": "tokens"}


def datasets_dir() -> Path:
    env = os.environ.get("BAYESCALE_DATA")
    for cand in ([Path(env)] if env else []) + [HERE.parent.parent / "shared" / "datasets"]:
        if cand.is_dir():
            return cand
    raise SystemExit("shared datasets not found: set BAYESCALE_DATA")


def load(val_sets: list[str]) -> pd.DataFrame:
    df = pd.read_csv(datasets_dir() / "gadre_overtraining" / "gadre_losses_long.csv")
    df = df[df.val_set.isin(val_sets)].copy()
    df["held_out"] = df.params > 1e9
    df["cell"] = df.dataset + "|" + df.val_set
    return df[["model", "dataset", "arch", "params", "tokens", "flops_6ND", "val_set", "cell",
               "loss", "held_out"]]


def sparse(df: pd.DataFrame, family: str = "RefinedWeb") -> pd.DataFrame:
    mult = df.tokens / (20 * df.params)
    keep = (df.dataset != family) | df.held_out | np.isclose(mult, 1) | np.isclose(mult, 4)
    return df[keep]


def score(pred: pd.DataFrame, test: pd.DataFrame, strategy: str, scenario: str, secs: float,
          fit=None):
    out = test[["model", "dataset", "val_set", "params", "tokens", "loss"]].copy()
    out["median"] = pred["median"].to_numpy()
    out["lower"] = pred["lower"].to_numpy()
    out["upper"] = pred["upper"].to_numpy()
    out["are"] = (out["median"] - out["loss"]).abs() / out["loss"]
    out["covered"] = (out.lower <= out.loss) & (out.loss <= out.upper)
    out["strategy"], out["scenario"], out["fit_seconds"] = strategy, scenario, secs
    d = fit.diagnostics
    out["divergences"], out["max_rhat"] = d["divergences"], d["max_rhat"]
    out["min_ess_bulk"] = d["min_ess_bulk"]
    return out


GROUP_SCALE = {"E": 0.5, "A": 1.0, "B": 1.0}
#: Pooled parameters: levels (E, A, B) per group, exponents shared. Pooling all five
#: over three datasets did not converge at this budget (r_hat up to 2.05).
POOLED = ("E", "A", "B")


def run(df: pd.DataFrame, scenario: str, settings: dict, cells=None) -> pd.DataFrame:
    train, test = df[~df.held_out], df[df.held_out]
    rows = []
    # partial pooling, two ways: crossed (dataset + val_set offsets add) and one group
    # per (dataset, val_set) cell (allows any interaction, e.g. code in RedPajama)
    variants = {"pooled E,A,B (cell)": {p: "cell" for p in POOLED}}
    if train.val_set.nunique() > 1:
        variants["pooled E,A,B (crossed)"] = {p: ["dataset", "val_set"] for p in POOLED}
    for name, pooled in variants.items():
        t0 = time.perf_counter()
        fit = bs.fit(train, "chinchilla", x=X, pooled=pooled, group_scale=GROUP_SCALE,
                     **settings)
        secs = time.perf_counter() - t0
        print(f"[{scenario}] {name} fit {secs:.0f}s {fit}", flush=True)
        rows.append(score(fit.predict(test, prob=0.9), test, name, scenario, secs, fit))
    # no pooling: one fit per (dataset, validation set) cell
    for (ds, vs), tr in train.groupby(["dataset", "val_set"]):
        if cells is not None and ds not in cells:
            continue
        te = test[(test.dataset == ds) & (test.val_set == vs)]
        t0 = time.perf_counter()
        f = bs.fit(tr, "chinchilla", x=X, **settings)
        secs = time.perf_counter() - t0
        print(f"[{scenario}] unpooled {ds}/{vs} ({len(tr)} rows) {secs:.0f}s {f}", flush=True)
        rows.append(score(f.predict(te, prob=0.9), te, "unpooled", scenario, secs, f))
    out = pd.concat(rows, ignore_index=True)
    if cells is not None:
        out = out[out.dataset.isin(cells)]
    return out


def table(res: pd.DataFrame) -> str:
    res = res.assign(target=np.where(res.params > 5e9, "7B", "1B"),
                     rel_width=(res.upper - res.lower) / res.loss)
    t = res.groupby(["scenario", "strategy", "target"]).agg(
        rows=("are", "size"), median_are=("are", "median"), mean_are=("are", "mean"),
        coverage=("covered", "mean"), width=("rel_width", "mean"),
        rhat=("max_rhat", "max"), ess=("min_ess_bulk", "min"),
        div=("divergences", lambda s: int(s.unique().sum()))).reset_index()
    lines = ["| scenario | strategy | target | rows | median ARE | mean ARE | 90% coverage "
             "| mean interval width / loss | max r_hat | min bulk ESS | divergences |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in t.itertuples():
        lines.append(
            f"| {r.scenario} | {r.strategy} | {r.target} | {r.rows} | {100 * r.median_are:.2f}% "
            f"| {100 * r.mean_are:.2f}% | {100 * r.coverage:.0f}% | {100 * r.width:.1f}% "
            f"| {r.rhat:.3f} | {r.ess:.0f} | {r.div} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--val-sets", default=",".join(DEFAULT_VAL_SETS),
                    help="comma-separated validation sets, or 'all'")
    ap.add_argument("--draws", type=int, default=400)
    ap.add_argument("--tune", type=int, default=400)
    ap.add_argument("--chains", type=int, default=2)
    ap.add_argument("--sampler", default="nutpie")
    ap.add_argument("--scenarios", default="full,sparse")
    args = ap.parse_args()
    raw = pd.read_csv(datasets_dir() / "gadre_overtraining" / "gadre_losses_long.csv")
    vs = sorted(raw.val_set.unique()) if args.val_sets == "all" else args.val_sets.split(",")
    df = load(vs)
    settings = dict(draws=args.draws, tune=args.tune, chains=args.chains, sampler=args.sampler,
                    random_seed=0, progressbar=False, warn=False)
    t0 = time.perf_counter()
    parts = []
    if "full" in args.scenarios:
        parts.append(run(df, "full", settings))
    if "sparse" in args.scenarios:
        parts.append(run(sparse(df), "sparse", settings, cells=["RefinedWeb"]))
    res = pd.concat(parts, ignore_index=True)
    total = time.perf_counter() - t0
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    res.to_csv(out / "pooling_gadre.csv", index=False)
    fit_s = res.groupby(["scenario", "strategy"]).fit_seconds.apply(lambda s: s.unique().sum())
    times = ", ".join(f"{k[0]}/{k[1]}: {v:.0f}" for k, v in fit_s.items())
    text = f"""# Pooling on the Gadre et al. over-training testbed

Generated by `benchmarks/pooling_gadre.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).

* Data: `gadre_overtraining/gadre_losses_long.csv`; validation sets (tasks): {", ".join(vs)};
  groups: training dataset (C4, RedPajama, RefinedWeb).
* Fit on the four small architectures (10.6M-412M parameters, token multipliers
  0.25-32); predict the held-out open_lm_1b (1.4B; 2 runs per dataset) and open_lm_7b
  (6.9B; 1 run per dataset) for every validation set.
* `pooled E,A,B (cell)`: one `chinchilla` fit with E, A and B pooled over the
  (dataset, validation set) cell and the exponents alpha, beta shared;
  `pooled E,A,B (crossed)` (several validation sets only): the same three pooled over
  `["dataset", "val_set"]` (crossed additive offsets); both with
  `group_scale={GROUP_SCALE}`. `unpooled`: one fit per (dataset, validation set).
* Scenario `sparse`: RefinedWeb keeps only 8 training runs (multipliers 1 and 4 of each
  small architecture); rows scored are RefinedWeb's held-out runs.
* NUTS: {args.sampler}, {args.chains} chains x ({args.tune} tune + {args.draws} draws),
  seed 0. ARE = |posterior median - loss| / loss; coverage of the central 90% posterior
  predictive interval. Machine: {platform.machine()}, {os.cpu_count()} CPUs (shared with
  other jobs, so times are inflated); total {total / 60:.1f} min.

{table(res)}

Wall time per strategy (s, summed over its fits, compile included): {times}.
"""
    (out / "pooling_gadre.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
