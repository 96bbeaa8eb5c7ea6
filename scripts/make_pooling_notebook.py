"""Write notebooks/02_pooling_across_families.ipynb.

Usage: ``python scripts/make_pooling_notebook.py [--execute]``; with ``--execute`` (and
``BAYESCALE_FAST=1 BAYESCALE_DATA=...``) the notebook is stored with its outputs.
"""

import sys
from pathlib import Path

import nbformat as nbf

cells = []


def md(s):
    cells.append(nbf.v4.new_markdown_cell(s.strip()))


def code(s):
    cells.append(nbf.v4.new_code_cell(s.strip()))


md(r"""
# Pooling scaling laws across model families

Three ways to fit one law to several model families:

* **complete pooling**: one curve for everyone (ignores that families differ);
* **no pooling**: one independent fit per family (ignores that families are alike);
* **partial pooling** (`pooled=`): each family has its own parameters, drawn from a
  population whose spread is learned from the data. Families with many runs keep
  their own fit; families with few runs borrow strength from the others.

Data: the over-training testbed of Gadre et al. (2024), loss on the C4 validation
set of models trained on three datasets (C4, RedPajama, RefinedWeb). We fit the
Chinchilla law on the four small architectures (10M-412M parameters) and forecast
the held-out 1.4B and 6.9B models. RefinedWeb is made *sparse*: it keeps only 8 of
its training runs.

Set `BAYESCALE_FAST=1` for a quick run (2 short chains). The stored outputs come from
such a run, so read their diagnostics with that in mind.
""")

code(r"""
import os
import time
import warnings
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

import bayescale as bs

warnings.filterwarnings("ignore", message="PyTensor could not link to a BLAS")  # harmless here
FAST = os.environ.get("BAYESCALE_FAST") == "1"
SETTINGS = dict(
    draws=150 if FAST else 1000,
    tune=150 if FAST else 1000,
    chains=2 if FAST else 4,
    sampler="nutpie",
    random_seed=0,
    progressbar=False,
    warn=not FAST,  # short chains in fast mode: diagnostics are shown, not warned
)
DATA = Path(os.environ.get("BAYESCALE_DATA", Path.cwd().parents[1] / "shared" / "datasets"))
X = {"N": "params", "D": "tokens"}
t_start = time.perf_counter()
""")

code(r"""
raw = pd.read_csv(DATA / "gadre_overtraining" / "gadre_losses_long.csv")
df = raw[raw.val_set == "c4_val"][["model", "dataset", "params", "tokens", "loss"]].copy()
df["multiplier"] = df.tokens / (20 * df.params)
df["held_out"] = df.params > 1e9
# RefinedWeb keeps only 8 training runs: token multipliers 1 and 4 of each small architecture
sparse = (df.dataset == "RefinedWeb") & ~df.held_out & ~df.multiplier.round(2).isin([1.0, 4.0])
df = df[~sparse]
train, test = df[~df.held_out], df[df.held_out]
train.groupby("dataset").size().rename("training runs").to_frame()
""")

md(r"""
## Complete pooling: one law for all three datasets
""")

code(r"""
complete = bs.fit(train, "chinchilla", x=X, **SETTINGS)
complete
""")

md(r"""
## No pooling: one law per dataset
""")

code(r"""
unpooled = {ds: bs.fit(g, "chinchilla", x=X, **SETTINGS) for ds, g in train.groupby("dataset")}
unpooled["RefinedWeb"]
""")

md(r"""
## Partial pooling: levels pooled over `dataset`, exponents shared

`pooled={"E": "dataset", "A": "dataset", "B": "dataset"}` gives the irreducible loss
and the two term sizes a population value, a group scale and one non-centred offset
per dataset (log scale). The exponents `alpha`, `beta` are shared. With only three
groups, pooling all five parameters (`pooled="dataset"`) leaves the group scales of
the exponents barely identified, and the chains mix poorly. See
`benchmarks/results/pooling_gadre.md`.
""")

code(r"""
partial = bs.fit(train, "chinchilla", x=X, pooled={p: "dataset" for p in ["E", "A", "B"]},
                 group_scale={"E": 0.5, "A": 1.0, "B": 1.0}, **SETTINGS)
partial
""")

code(r"""
effects = partial.group_effects(prob=0.9)
effects.round(3)
""")

md(r"""
## Forecasts for the held-out 1.4B and 6.9B models, side by side
""")

code(r"""
def score(pred, rows, name):
    out = rows[["dataset", "params", "tokens", "loss"]].copy()
    out["strategy"] = name
    out["median"] = pred["median"].to_numpy()
    out["lower"], out["upper"] = pred["lower"].to_numpy(), pred["upper"].to_numpy()
    return out


parts = [score(complete.predict(test), test, "complete"),
         score(partial.predict(test), test, "partial")]
parts += [score(unpooled[ds].predict(g), g, "none") for ds, g in test.groupby("dataset")]
res = pd.concat(parts, ignore_index=True)
res["ARE %"] = 100 * (res["median"] - res.loss).abs() / res.loss
res["covered"] = (res.lower <= res.loss) & (res.loss <= res.upper)
res["width %"] = 100 * (res.upper - res.lower) / res.loss
res.groupby(["strategy", "dataset"])[["ARE %", "covered", "width %"]].mean().round(2)
""")

code(r"""
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), sharey=True)
colors = {"complete": "tab:gray", "none": "tab:orange", "partial": "tab:blue"}
for ax, (ds, g) in zip(axes, res.groupby("dataset")):
    for k, (name, h) in enumerate(g.groupby("strategy")):
        x = np.arange(len(h)) + 0.2 * (k - 1)
        ax.errorbar(x, h["median"], yerr=[h["median"] - h.lower, h.upper - h["median"]],
                    fmt="o", color=colors[name], label=name, capsize=3)
    ax.scatter(np.arange(len(h)), h.loss, marker="*", s=120, color="k", zorder=5,
               label="observed")
    ax.set_xticks(np.arange(len(h)), [f"{p / 1e9:.1f}B, M={t / p / 20:g}" for p, t in
                                      zip(h.params, h.tokens)], fontsize=8)
    ax.set_title(ds + (" (8 training runs)" if ds == "RefinedWeb" else ""))
axes[0].set_ylabel("C4 validation loss")
axes[0].legend(fontsize=8)
fig.tight_layout()
""")

md(r"""
For the data-rich datasets (C4, RedPajama) partial pooling stays close to the
per-dataset fit. For the sparse RefinedWeb family the per-dataset fit has little to
go on, while the pooled fit borrows the exponents from the other datasets and shrinks
the term sizes towards theirs. Whether this makes the 7B forecast more accurate
depends on how similar the families really are. The benchmark
(`benchmarks/results/pooling_gadre.md`) reports both errors honestly.

## A forecast for a family with very few runs, and for one never seen

A family never seen in training (`"new family"`) draws its parameters from the
population: its interval includes the spread between datasets.
""")

code(r"""
target = pd.DataFrame({"dataset": ["RefinedWeb", "C4", "new family"],
                       "params": 6.9e9, "tokens": 1.38e11})
partial.predict(target, prob=0.9)[["dataset", "median", "lower", "upper", "extrapolation"]]
""")

code(r"""
print(f"notebook ran in {time.perf_counter() - t_start:.0f} s (fast mode: {FAST})")
""")

nb = nbf.v4.new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
out = Path(__file__).resolve().parents[1] / "notebooks" / "02_pooling_across_families.ipynb"
if "--execute" in sys.argv:  # store outputs from a fast-mode run
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(out.parent)}}).execute()
nbf.write(nb, out)
print(out)
