"""Downstream accuracy of the largest Gadre et al. models from the smaller ones.

Data: the Gadre et al. (2024) over-training testbed (104 models, 3 pretraining
sets, 46 downstream tasks). Fit on the four small architectures (up to 0.41B
parameters); predict the held-out open_lm_1b and open_lm_7b models (1.4B and
6.9B parameters, up to 60x the largest fitted compute).

Targets
* the average accuracy over the 24 tasks whose best model beats chance by more
  than 10 points (Gadre et al.'s selection rule, LAWS.md D2);
* four single tasks: hellaswag, arc_easy, piqa (multiple choice), lambada_openai
  (exact match), with counts from the task metadata (#datapoints).

Methods
* two-stage: stage 1 Chinchilla law of C4 validation loss in (N, D), with the
  irreducible loss E pooled over the pretraining set; stage 2 accuracy as a function of that loss
  (``exp_error_of_loss`` for the average, ``sigmoid_of_loss`` pooled over tasks);
  chained with :func:`bayescale.chain` (stage-1 predictive draws -> stage 2).
* direct: ``sigmoid_compute`` of accuracy against 6ND compute with the chance
  level known, midpoint pooled over the pretraining set (and task).

Reports absolute error of the posterior median in accuracy points and the
coverage of the 90% posterior predictive interval. Run:
``PYTHONPATH=. python benchmarks/downstream_gadre.py`` (about 5-10 minutes on 2 cores).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import bayescale as bs  # noqa: E402

# not tests.conftest: importing it turns on the numba cache of the test suite, and
# the draws of a seed then depend on what that cache held
from benchmarks._common import shared_datasets  # noqa: E402

DRAWS = int(os.environ.get("BAYESCALE_BENCH_DRAWS", 400))
SAMPLE = dict(sampler="nutpie", draws=DRAWS, tune=DRAWS, chains=2, progressbar=False,
              random_seed=0, warn=False, target_accept=0.95)
BIG = {"open_lm_1b", "open_lm_7b"}
TASKS = ["hellaswag", "arc_easy", "piqa", "lambada_openai"]
PROB = 0.9
#: The calibrated extrapolation discrepancy (bayescale.calibration) of every fit: stage 1
#: (log loss), stage 2 and the direct laws (logit accuracy). 0: the plain posteriors
#: (downstream_gadre.md); 1: calibrated (downstream_gadre_calibrated.md).
EXTRAP = os.environ.get("BAYESCALE_BENCH_EXTRAPOLATION", "0") == "1"


def load():
    root = shared_datasets()  # exits with a message when they are not found
    g = root / "gadre_overtraining"
    down = pd.read_csv(g / "gadre_downstream_long.csv")
    loss = pd.read_csv(g / "gadre_losses_long.csv")
    meta = pd.read_csv(g / "raw" / "eval_metadata.csv")
    c4 = loss[loss["val_set"] == "c4_val"][["model", "loss"]]
    down["chance"] = down["random_baseline_pct"] / 100.0
    best = down.groupby("task").agg(best=("accuracy", "max"), chance=("chance", "first"))
    keep = best.index[best["best"] - best["chance"] > 0.10]
    avg = (
        down[down["task"].isin(keep)]
        .groupby(["model", "dataset", "arch", "params", "tokens", "flops_6ND"], as_index=False)
        .agg(accuracy=("accuracy", "mean"), chance=("chance", "mean"))
        .merge(c4, on="model")
    )
    n_items = dict(zip(meta["Eval Task"], meta["#datapoints"]))
    tasks = down[down["task"].isin(TASKS)].merge(c4, on="model").copy()
    tasks["n"] = tasks["task"].map(n_items).astype(int)
    tasks["correct"] = np.rint(tasks["accuracy"] * tasks["n"]).astype(int)
    models = avg[["model", "dataset", "arch", "params", "tokens", "flops_6ND", "loss"]]
    return models, avg, tasks, len(keep)


def md(df: pd.DataFrame, index: bool = False) -> str:
    """Markdown table without the optional ``tabulate`` dependency."""
    if index:
        df = df.reset_index()

    def fmt(v):
        if isinstance(v, (float, np.floating)):
            return f"{v:.3g}"
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "---|" * len(df.columns)
    body = ["| " + " | ".join(fmt(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, sep, *body])


def score(obs, pred):
    err = 100 * np.abs(pred["median"].to_numpy() - obs)
    inside = (pred["lower"].to_numpy() <= obs) & (obs <= pred["upper"].to_numpy())
    return err, inside


CACHE = os.environ.get("BAYESCALE_BENCH_CACHE")
#: Names of the fits loaded from the cache (the run's time then excludes their sampling).
LOADED: list[str] = []


def cached_fit(name, *args, **kwargs):
    """``bs.fit`` with an optional on-disk cache (env ``BAYESCALE_BENCH_CACHE``)."""
    if CACHE:
        path = Path(CACHE) / f"downstream_gadre_{name}.nc"
        if path.exists():
            LOADED.append(name)
            return bs.load_fit(path)
    fit = bs.fit(*args, **kwargs)
    if CACHE:
        Path(CACHE).mkdir(parents=True, exist_ok=True)
        fit.save(path)
    return fit


def main() -> None:
    t0 = time.time()
    models, avg, tasks, n_tasks = load()
    train_m = models[~models["arch"].isin(BIG)]
    test_m = models[models["arch"].isin(BIG)]
    fits = {}
    print("stage 1: chinchilla on C4 loss", flush=True)
    fits["loss"] = cached_fit(
        "loss", train_m, "chinchilla", x={"N": "params", "D": "tokens"}, y="loss",
        pooled={"E": "dataset"}, **SAMPLE,
    )
    tr_avg, te_avg = avg[~avg["arch"].isin(BIG)], avg[avg["arch"].isin(BIG)]
    print("stage 2: exp_error_of_loss on the average", flush=True)
    fits["avg_stage2"] = cached_fit(
        "avg_stage2", tr_avg, "exp_error_of_loss", x={"L": "loss"}, **SAMPLE
    )
    chance_avg = float(avg["chance"].mean())
    print("direct: sigmoid_compute on the average", flush=True)
    fits["avg_direct"] = cached_fit(
        "avg_direct", tr_avg, "sigmoid_compute", x={"C": "flops_6ND", "chance": chance_avg},
        likelihood="beta", pooled={"x0": "dataset"}, **SAMPLE,
    )
    tr_t, te_t = tasks[~tasks["arch"].isin(BIG)], tasks[tasks["arch"].isin(BIG)]
    print("stage 2: sigmoid_of_loss pooled over tasks", flush=True)
    fits["task_stage2"] = cached_fit(
        "task_stage2", tr_t, "sigmoid_of_loss", x={"L": "loss"}, likelihood="betabinomial",
        pooled={"ceiling": "task", "k": "task", "L0": "task"}, **SAMPLE,
    )
    print("direct: sigmoid_compute pooled over tasks", flush=True)
    fits["task_direct"] = cached_fit(
        "task_direct", tr_t, "sigmoid_compute", x={"C": "flops_6ND"}, likelihood="betabinomial",
        pooled={"ceiling": "task", "k": "task", "x0": ["task", "dataset"]}, **SAMPLE,
    )
    rows = []
    detail = []
    # ---- average
    new = te_avg[["params", "tokens", "dataset", "flops_6ND", "model"]].reset_index(drop=True)
    obs = te_avg["accuracy"].to_numpy()
    ch_avg = bs.chain(fits["loss"], fits["avg_stage2"])
    p_two = ch_avg.predict(new, prob=PROB, extrapolation=EXTRAP)
    p_dir = fits["avg_direct"].predict(new, prob=PROB, extrapolation=EXTRAP)
    p_s2 = fits["avg_stage2"].predict(te_avg[["loss"]].reset_index(drop=True), prob=PROB,
                                      extrapolation=EXTRAP)
    for name, pred in [("two-stage", p_two), ("direct", p_dir), ("stage 2 at true loss", p_s2)]:
        err, inside = score(obs, pred)
        rows.append(dict(target=f"average of {n_tasks} tasks", method=name, models=len(obs),
                         mae_points=err.mean(), max_err_points=err.max(),
                         coverage90=inside.mean(),
                         mean_width_points=100 * (pred["upper"] - pred["lower"]).mean()))
        for m, o, e, i, lo, hi, med in zip(new["model"], obs, err, inside, pred["lower"],
                                          pred["upper"], pred["median"]):
            detail.append(dict(target="average", method=name, model=m, observed=o, median=med,
                               lower=lo, upper=hi, abs_err_points=e, inside=i))
    # ---- single tasks
    ch_t = bs.chain(fits["loss"], fits["task_stage2"])
    # calibrated: also stage 2's drift learned per task (calibrate(by="task"): the same kind
    # of inner fits, their errors split by task, the tasks' rates pooled)
    by_task = fits["task_stage2"].calibrate(by="task") if EXTRAP else None
    for task in TASKS:
        sub = te_t[te_t["task"] == task].reset_index(drop=True)
        obs = sub["accuracy"].to_numpy()
        newt = sub[["params", "tokens", "dataset", "flops_6ND", "task", "chance", "n", "model"]]
        p_two = ch_t.predict(newt, prob=PROB, extrapolation=EXTRAP)
        p_dir = fits["task_direct"].predict(newt, prob=PROB, extrapolation=EXTRAP)
        p_s2 = fits["task_stage2"].predict(sub[["loss", "task", "chance", "n"]], prob=PROB,
                                           extrapolation=EXTRAP)
        methods = [("two-stage", p_two), ("direct", p_dir), ("stage 2 at true loss", p_s2)]
        if by_task is not None:
            methods.append(("two-stage, stage-2 drift by task",
                            bs.chain(fits["loss"], by_task).predict(newt, prob=PROB)))
        for name, pred in methods:
            err, inside = score(obs, pred)
            rows.append(dict(target=task, method=name, models=len(obs), mae_points=err.mean(),
                             max_err_points=err.max(), coverage90=inside.mean(),
                             mean_width_points=100 * (pred["upper"] - pred["lower"]).mean()))
            for m, o, e, i, lo, hi, med in zip(sub["model"], obs, err, inside, pred["lower"],
                                              pred["upper"], pred["median"]):
                detail.append(dict(target=task, method=name, model=m, observed=o, median=med,
                                   lower=lo, upper=hi, abs_err_points=e, inside=i))
    res = pd.DataFrame(rows)
    det = pd.DataFrame(detail)
    overall = (
        res[res["target"] != f"average of {n_tasks} tasks"]
        .groupby("method")
        .apply(lambda d: pd.Series({
            "mae_points": np.average(d["mae_points"], weights=d["models"]),
            "coverage90": np.average(d["coverage90"], weights=d["models"]),
        }), include_groups=False)
    )
    diag = pd.DataFrame(
        [dict(fit=k, rows=len(f.data), divergences=f.diagnostics["divergences"],
              max_rhat=f.diagnostics["max_rhat"], min_ess_bulk=f.diagnostics["min_ess_bulk"])
         for k, f in fits.items()]
    )
    cal_lines = []
    if EXTRAP:
        cal = pd.DataFrame(
            [dict(fit=k, scale=c["scale"], tau_median=c["tau_median"], tau_5=c["tau_5%"],
                  tau_95=c["tau_95%"], h_mean=c["h_mean"], inner_points=c["inner_points"],
                  inner_cover90=c["inner_cover90"], inner_problems=len(c["problems"]))
             for k, f in fits.items() for c in [f.calibration.summary()]]
        )
        cal_lines = ["## Learned discrepancy (nested leave-future-out of each fit)", "",
                     "tau: sd of the drift at one unit of distance (decades of compute for "
                     "stage 1 and the direct laws; the span of the fitted losses for stage 2), "
                     "on the log scale of the loss or the logit scale of the accuracy.", "",
                     md(cal), "",
                     "Stage 2 of the single tasks calibrated by task "
                     "(`calibrate(by=\"task\")`):", "",
                     md(by_task.calibration.level_summary()), ""]
    elapsed = time.time() - t0
    name = "downstream_gadre_calibrated.md" if EXTRAP else "downstream_gadre.md"
    out = REPO / "benchmarks" / "results" / name
    lines = [
        "# Downstream accuracy on the Gadre et al. testbed: two-stage vs direct",
        "",
        f"Generated by `benchmarks/downstream_gadre.py` ({elapsed / 60:.1f} min, NUTS "
        f"{SAMPLE['chains']} chains x {DRAWS} draws, nutpie"
        + (f"; the fits {LOADED} were loaded from the benchmark cache, so the time excludes "
           "their sampling" if LOADED else "") + ").",
        "",
        f"Fit on the {len(train_m)} models of the four small architectures (<= 0.41B "
        f"parameters, <= {train_m['flops_6ND'].max():.2g} FLOPs); predict the "
        f"{len(test_m)} held-out open_lm_1b / open_lm_7b models "
        f"({test_m['flops_6ND'].min():.2g}-{test_m['flops_6ND'].max():.2g} FLOPs, up to "
        f"{test_m['flops_6ND'].max() / train_m['flops_6ND'].max():.0f}x the largest fitted).",
        "Two-stage = Chinchilla C4-loss law (E pooled over pretraining set) chained into "
        "accuracy(loss); direct = logistic accuracy in log10 compute. 'stage 2 at true "
        "loss' uses the held-out models' *measured* C4 loss (an oracle for stage 1) and "
        "shows how much error stage 1 adds.",
        "Errors are |posterior median - observed| in accuracy points; coverage of the "
        "90% posterior predictive interval. Calibrated extrapolation discrepancy (every "
        f"fit): {'on' if EXTRAP else 'off (plain posteriors)'}.",
        "",
        "## Summary",
        "",
        md(res),
        "",
        "Single tasks pooled (weighted by models):",
        "",
        md(overall, index=True),
        "",
        "## Sampler diagnostics",
        "",
        md(diag),
        "",
        *cal_lines,
        "## Per model",
        "",
        md(det),
        "",
    ]
    out.write_text("\n".join(lines))
    print(res.to_string())
    print(overall)
    print(f"wrote {out} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
