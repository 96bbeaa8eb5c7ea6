"""Write the notebooks owned by the core (run: python scripts/make_notebooks.py)."""

from pathlib import Path

import nbformat as nbf

HERE = Path(__file__).resolve().parents[1] / "notebooks"

SETUP = """import os
import warnings

import numpy as np
import pandas as pd

import bayescale as bs

FAST = os.environ.get("BAYESCALE_FAST") == "1"   # the test suite runs this notebook fast
SAMPLING = dict(draws=300, tune=300, chains=2) if FAST else dict(draws=1000, tune=1000, chains=4)
warnings.simplefilter("default", bs.SamplingWarning)"""


def chinchilla() -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
    nb.cells = [
        md(
            "# 01 · Replicating the Chinchilla fit with a full posterior\n\n"
            "Hoffmann et al. (2022) fitted `L(N, D) = E + A/N^α + B/D^β` to their training runs; "
            "Epoch AI (Besiroglu et al. 2024) reconstructed the 245 points of Figure 4, found the "
            "original fit had not converged and refitted it with a bootstrap. Here we fit the same "
            "law with NUTS, compare the posterior with both published fits, forecast the loss of a "
            "70B-parameter model trained on 1.4T tokens, and look at the posterior of the "
            "compute-optimal tokens-per-parameter ratio."
        ),
        code(SETUP),
        md(
            "The dataset resolves from `BAYESCALE_DATA` (a folder laid out as the shared datasets), "
            "the user cache, or Epoch's public repository (checksum-verified). Epoch excluded the 5 "
            "highest-loss points; so do we."
        ),
        code(
            'df = bs.datasets.load("chinchilla")\n'
            'train = df[~df["epoch_excluded_outlier"]]\n'
            "print(len(df), 'points,', len(train), 'used')\n"
            "train.head()"
        ),
        code(
            'fit = bs.fit(train, "chinchilla", y="loss", random_seed=0, **SAMPLING)\n'
            "fit"
        ),
        code("fit.summary(prob=0.9)"),
        md(
            "## Against the published values\n\n"
            "Hoffmann's values are point estimates; Epoch's come with bootstrap 95% intervals. "
            "Our 95% credible intervals sit beside them."
        ),
        code(
            "published = pd.DataFrame(\n"
            "    {\n"
            '        "Hoffmann 2022": [1.69, 406.4, 0.34, 410.7, 0.28],\n'
            '        "Epoch 2024": [1.81686, 482.006, 0.34781, 2085.43, 0.36585],\n'
            '        "Epoch 95% low": [1.769, 285.2, 0.317, 1042.4, 0.331],\n'
            '        "Epoch 95% high": [1.871, 743.6, 0.373, 5810.3, 0.415],\n'
            "    },\n"
            '    index=["E", "A", "alpha", "B", "beta"],\n'
            ")\n"
            'post = fit.posterior[["E", "A", "alpha", "B", "beta"]]\n'
            'published["bayescale median"] = [float(post[p].median()) for p in published.index]\n'
            'published["bayescale 2.5%"] = [float(post[p].quantile(0.025)) for p in published.index]\n'
            'published["bayescale 97.5%"] = [float(post[p].quantile(0.975)) for p in published.index]\n'
            "published.round(3)"
        ),
        md(
            "## Forecast: 70B parameters, 1.4T tokens\n\n"
            "`predict` gives the posterior predictive (with run-to-run noise); `kind=\"mean\"` the "
            "law's mean curve only. `extrapolation` is the target compute over the largest fitted "
            "compute."
        ),
        code(
            'target = pd.DataFrame({"N": [7e10], "D": [1.4e12]})\n'
            "pd.concat([fit.predict(target, prob=0.9).assign(kind='predictive'),\n"
            "           fit.predict(target, prob=0.9, kind='mean').assign(kind='mean')])"
        ),
        code("ax = fit.plot(new=target)"),
        md(
            "## Compute-optimal allocation\n\n"
            "For each posterior draw the optimum of `L(N, D)` subject to `C = 6ND` is closed form; "
            "the posterior of the tokens-per-parameter ratio at the Chinchilla budget is the "
            "question Hoffmann et al. answered with ≈20."
        ),
        code("fit.compute_optimal(C=[1e21, 5.76e23, 1e25], prob=0.9).round(3)"),
        code(
            "from bayescale.derived import chinchilla_optimum\n"
            "import matplotlib.pyplot as plt\n\n"
            'p = {k: fit.posterior[k].values.ravel() for k in ("A", "alpha", "B", "beta")}\n'
            "n_opt, d_opt = chinchilla_optimum(5.76e23, **p)\n"
            "fig, ax = plt.subplots(figsize=(5, 3))\n"
            "ax.hist(d_opt / n_opt, bins=60, density=True)\n"
            'ax.axvline(20, color="k", ls="--", label="Chinchilla: 20 tokens/param")\n'
            'ax.set_xlabel("compute-optimal tokens per parameter at C = 5.76e23")\n'
            "ax.legend();\n"
            "print('posterior median %.1f, 90%% interval %.1f-%.1f' % (np.median(d_opt / n_opt),\n"
            "      *np.quantile(d_opt / n_opt, [0.05, 0.95])))"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def calibrated() -> nbf.NotebookNode:
    nb = nbf.v4.new_notebook()
    md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
    nb.cells = [
        md(
            "# 06 · Calibrated forecasts: intervals that hold beyond the data\n\n"
            "Fit the Chinchilla law to Epoch's points below 3e20 FLOPs and forecast the 63 "
            "larger runs. The plain posterior predictive is honest about parameters and noise "
            "but assumes the law is exactly right; its 90% intervals miss most large runs. "
            "bayescale's default forecast adds a drift whose spread grows with the distance "
            "beyond the data, at a rate learned from the data by nested leave-future-out."
        ),
        code(SETUP),
        code(
            'df = bs.datasets.load("chinchilla")\n'
            'df = df[~df["epoch_excluded_outlier"]]\n'
            'train, test = df[df["C"] < 3e20], df[df["C"] >= 3e20]\n'
            'fit = bs.fit(train, "chinchilla", random_seed=0, **SAMPLING)\n'
            "len(train), len(test)"
        ),
        md("## The problem: plain intervals are too narrow when extrapolating"),
        code(
            'plain = fit.predict(test[["N", "D"]], prob=0.9, extrapolation=False)\n'
            'calib = fit.predict(test[["N", "D"]], prob=0.9)\n'
            "def coverage(p):\n"
            '    return float(np.mean((test["loss"].values >= p["lower"].values)\n'
            '                         & (test["loss"].values <= p["upper"].values)))\n'
            'print("plain 90%% coverage: %.2f" % coverage(plain))\n'
            'print("calibrated 90%% coverage: %.2f" % coverage(calib))'
        ),
        md(
            "## What was learned\n\n"
            "`tau` is the extra spread of log-loss one decade beyond the fitted range and `h` how "
            "it grows with distance `d` (spread `tau * d**h`), learned from three inner forecasts "
            "(refits on the smaller part of the training data). With many series fitted by one "
            "law, `bs.pool_calibration(fits)` learns the rate's population across them."
        ),
        code("fit.calibration.summary()"),
        code(
            "import matplotlib.pyplot as plt\n"
            "r = fit.calibration.residuals\n"
            "fig, ax = plt.subplots(figsize=(5, 3))\n"
            'ax.scatter(r["decades"], r["residual"] / r["predictive_sd"], s=8)\n'
            'ax.set_xlabel("decades beyond the inner fit")\n'
            'ax.set_ylabel("inner forecast error / predictive sd");'
        ),
        md("## Why is this interval as wide as it is? Variance decomposition of one forecast"),
        code(
            'target = pd.DataFrame({"N": [7e10], "D": [1.4e12]})\n'
            "fit.decompose(target).round(6)"
        ),
        code(
            "ax = fit.plot(new=test[[\"N\", \"D\"]].iloc[::4])"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


if __name__ == "__main__":
    HERE.mkdir(exist_ok=True)
    nbf.write(chinchilla(), HERE / "01_chinchilla.ipynb")
    nbf.write(calibrated(), HERE / "06_calibrated_forecasts.ipynb")
    print("wrote", HERE / "01_chinchilla.ipynb", HERE / "06_calibrated_forecasts.ipynb")
