"""Emergence onsets of BIG-bench tasks across public model families (ObsScaling data).

Data: Ruan et al. (2024) observational-scaling evaluations: 7 emergent BIG-bench
metrics (arithmetic 2da/2dm/3da/3ds, word unscrambling, IPA transliteration exact
match, ParsiNLU QA) for public base models with 6ND training FLOPs, across ~25
families.

Protocol: fit ``onset_logistic`` (beta-binomial, onset midpoint pooled over
task x family, ceiling and steepness pooled over task) on the models below
``CUTOFF`` FLOPs; then (1) check the later models against the posterior predictive
interval (coverage and absolute error), and (2) report onset intervals per task
for a new family (population level) and for a few named families, with
``prob_emerged`` at 1e24 FLOPs.

Item counts: 2000 for arithmetic and word unscrambling, 1050 for ParsiNLU QA
(both read off the value granularity); the IPA exact-match scores are not on an
item grid (averaged), so n = 1000 and counts are rounded.

Run: ``PYTHONPATH=. python benchmarks/onsets_obsscaling.py`` (several minutes on 2 cores).
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
from benchmarks.downstream_gadre import md  # noqa: E402

DRAWS = int(os.environ.get("BAYESCALE_BENCH_DRAWS", 400))
CUTOFF = float(os.environ.get("BAYESCALE_ONSET_CUTOFF", 1e23))
SAMPLE = dict(sampler="nutpie", draws=DRAWS, tune=DRAWS, chains=2, progressbar=False,
              random_seed=0, warn=False, target_accept=0.95)
TASKS = {
    "arithmetic_2da_2_acc": ("arithmetic_2da", 0.0, 2000),
    "arithmetic_2dm_2_acc": ("arithmetic_2dm", 0.0, 2000),
    "arithmetic_3da_2_acc": ("arithmetic_3da", 0.0, 2000),
    "arithmetic_3ds_2_acc": ("arithmetic_3ds", 0.0, 2000),
    "word_unscrambling_2_exact_match": ("word_unscrambling", 0.0, 2000),
    "ipa_transliterate_2_exact_match": ("ipa_transliterate", 0.0, 1000),
    "parsinlu_qa_2_acc": ("parsinlu_qa", 0.25, 1050),
}
FAMILIES = ["Pythia", "OPT", "Llama-2", "Qwen1.5"]


def load_emergent() -> pd.DataFrame:
    """Tidy frame: model, family, C (FLOPs), task, chance, n, accuracy."""
    root = shared_datasets()  # exits with a message when they are not found
    d = pd.read_csv(root / "obsscaling" / "obsscaling_evals_long.csv")
    d = d[d["metric"].isin(TASKS) & d["flops"].notna() & d["value"].notna()].copy()
    d["task"] = d["metric"].map(lambda m: TASKS[m][0])
    d["chance"] = d["metric"].map(lambda m: TASKS[m][1])
    d["n"] = d["metric"].map(lambda m: TASKS[m][2])
    d["accuracy"] = np.rint(d["value"] * d["n"]) / d["n"]
    return d.rename(columns={"flops": "C"})[
        ["model", "family", "C", "task", "chance", "n", "accuracy"]
    ].reset_index(drop=True)


def main() -> None:
    t0 = time.time()
    df = load_emergent()
    train, test = df[df["C"] < CUTOFF], df[df["C"] >= CUTOFF]
    fit = bs.fit(
        train,
        "onset_logistic",
        pooled={"x0": ["task", "family"], "ceiling": "task", "k": "task"},
        **SAMPLE,
    )
    # (1) later models against the predictive interval: the default forecast (with the
    # calibrated extrapolation drift, logit scale) and the plain posterior predictive
    new = test[["C", "task", "family", "chance", "n"]]
    t_cal = time.time()
    pred = fit.predict(new, prob=0.9)
    t_cal = time.time() - t_cal
    plain = fit.predict(new, prob=0.9, extrapolation=False)
    # the drift learned per task (calibrate(by="task"): the same kind of inner fits, their
    # errors split by task, the tasks' rates pooled)
    by_task = fit.calibrate(by="task")
    pred_bt = by_task.predict(new, prob=0.9)
    obs = test["accuracy"].to_numpy()
    inside = (pred["lower"].to_numpy() <= obs) & (obs <= pred["upper"].to_numpy())
    inside_plain = (plain["lower"].to_numpy() <= obs) & (obs <= plain["upper"].to_numpy())
    inside_bt = (pred_bt["lower"].to_numpy() <= obs) & (obs <= pred_bt["upper"].to_numpy())
    width_bt = 100 * (pred_bt["upper"] - pred_bt["lower"]).to_numpy()
    err = 100 * np.abs(pred["median"].to_numpy() - obs)
    width = 100 * (pred["upper"] - pred["lower"]).to_numpy()
    width_plain = 100 * (plain["upper"] - plain["lower"]).to_numpy()
    seen = test["family"].isin(train["family"].unique()).to_numpy()
    per_task = (
        pd.DataFrame({"task": test["task"].to_numpy(), "inside": inside, "err": err,
                      "inside_plain": inside_plain, "width": width,
                      "width_plain": width_plain, "inside_by_task": inside_bt,
                      "width_by_task": width_bt, "seen": seen})
        .groupby("task")
        .agg(models=("inside", "size"), coverage90=("inside", "mean"),
             coverage90_plain=("inside_plain", "mean"),
             coverage90_by_task=("inside_by_task", "mean"), width_points=("width", "mean"),
             width_plain_points=("width_plain", "mean"),
             width_by_task_points=("width_by_task", "mean"), mae_points=("err", "mean"),
             median_err_points=("err", "median"))
        .reset_index()
    )
    cal = fit.calibration.summary()
    # (2) onsets: population level (a new family) and a few named families
    tasks = sorted(df["task"].unique())
    chance = df.groupby("task")["chance"].first()
    new_fam = pd.DataFrame({"task": tasks, "family": "(new family)",
                            "chance": [chance[t] for t in tasks]})
    pop = fit.onset(0.1, levels=new_fam)
    pe = fit.prob_emerged(C=1e24, levels=new_fam)
    pop["prob_emerged_1e24"] = pe["prob_emerged"].to_numpy()
    fam = fit.onset(0.1)
    fam_sel = fam[fam["family"].isin(FAMILIES)]
    cols = ["task", "family", "n_models", "max_observed", "log10_C_on", "log10_C_on_lower",
            "log10_C_on_upper", "prob_beyond_data", "censored"]
    elapsed = time.time() - t0
    d = fit.diagnostics
    lines = [
        "# Emergence onsets on BIG-bench tasks (ObsScaling public models)",
        "",
        f"Generated by `benchmarks/onsets_obsscaling.py` ({elapsed / 60:.1f} min; nutpie, "
        f"{SAMPLE['chains']} chains x {DRAWS} draws; divergences {d['divergences']}, max r_hat "
        f"{d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}).",
        "",
        f"Fit `onset_logistic` (beta-binomial; x0 pooled over task x family, ceiling and k "
        f"over task) on {len(train)} (model, task) rows with C < {CUTOFF:.0e} FLOPs "
        f"({train['model'].nunique()} models, {train['family'].nunique()} families); "
        f"check {len(test)} rows of {test['model'].nunique()} later models "
        f"({int((~seen).sum())} rows from families not in the fit, which draw their offset "
        "from the population).",
        "",
        "## Later models against the 90% posterior predictive interval",
        "",
        "With the calibrated extrapolation drift (the default, logit scale, learned by "
        "nested leave-future-out of this fit): overall coverage "
        f"{inside.mean():.3f} ({inside.sum()}/{inside.size}); seen families "
        f"{inside[seen].mean():.3f}, new families "
        f"{inside[~seen].mean() if (~seen).any() else float('nan'):.3f}; mean width "
        f"{width.mean():.1f} points. Plain posterior (`extrapolation=False`): coverage "
        f"{inside_plain.mean():.3f} (seen {inside_plain[seen].mean():.3f}, new "
        f"{inside_plain[~seen].mean() if (~seen).any() else float('nan'):.3f}); mean width "
        f"{width_plain.mean():.1f} points. With the drift learned per task "
        f"(`calibrate(by=\"task\")`): coverage {inside_bt.mean():.3f}; mean width "
        f"{width_bt.mean():.1f} points. Mean absolute error {err.mean():.1f} points "
        f"(median {np.median(err):.1f}).",
        "",
        f"Learned drift: tau median {cal['tau_median']:.3f} logits per decade of compute "
        f"(90%: {cal['tau_5%']:.3f}-{cal['tau_95%']:.3f}), h mean {cal['h_mean']:.2f}, from "
        f"{cal['inner_points']} inner forecasts (their 90% coverage "
        f"{cal['inner_cover90']:.2f}); the inner fits took {t_cal:.0f} s. Per task:",
        "",
        md(by_task.calibration.level_summary()),
        "",
        md(per_task),
        "",
        "## Onset (10% of the rise from chance to ceiling), new family = population level",
        "",
        md(pop[["task", "log10_C_on", "log10_C_on_lower", "log10_C_on_upper",
                "prob_emerged_1e24", "note"]]),
        "",
        "## Onsets for some families in the fit",
        "",
        md(fam_sel[cols]),
        "",
        f"Censored (task, family) levels: {int(fam['censored'].sum())} of {len(fam)}.",
        "",
        "## Population parameters",
        "",
        md(fit.summary().reset_index().rename(columns={"index": "param"})),
        "",
    ]
    out = REPO / "benchmarks" / "results" / "onsets_obsscaling.md"
    out.write_text("\n".join(lines))
    print("\n".join(lines))
    print(f"wrote {out} in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
