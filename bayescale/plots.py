"""Plots. The only module that imports matplotlib (headless-safe: Agg when no display)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit


def _plt():
    import os

    import matplotlib

    if not os.environ.get("DISPLAY") and matplotlib.get_backend().lower() not in {
        "agg",
        "module://matplotlib_inline.backend_inline",
    }:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_fit(
    fit: Fit,
    *,
    new: pd.DataFrame | None = None,
    prob: float = 0.9,
    extend: float = 10.0,
    ax: Any = None,
    random_seed: int | None = None,
):
    """Data and the posterior predictive band on log-log axes.

    For a one-input law the band is a curve over the input range extended
    ``extend`` times beyond the largest fitted value. For laws of several inputs
    each training row (and each row of ``new``) gets its predictive interval,
    plotted against compute (``C`` or ``6 N D``).

    Returns the matplotlib Axes.
    """
    from .fit import scale_of

    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    law = fit.law
    data = fit.data
    groups = fit.spec.group_columns
    if len(law.inputs) == 1:
        inp = law.inputs[0]
        col = fit.spec.x.get(inp, inp)
        keys = [None] if not groups else sorted(data[groups[0]].unique())
        for key in keys:
            sub = data if key is None else data[data[groups[0]] == key]
            lo, hi = np.log10(sub[inp].min()), np.log10(sub[inp].max() * extend)
            grid = pd.DataFrame({col: np.logspace(lo, hi, 80)})
            if key is not None:
                for g in groups:
                    grid[g] = sub[g].iloc[0]
            band = fit.predict(grid, prob=prob, random_seed=random_seed)
            label = "posterior predictive" if key is None else str(key)
            lines = ax.plot(band[col], band["median"], lw=1.5, label=label)
            ax.fill_between(
                band[col], band["lower"], band["upper"], alpha=0.25, color=lines[0].get_color()
            )
            ax.scatter(sub[inp], sub["y"], s=12, color=lines[0].get_color(), zorder=3)
        ax.set_xlabel(col)
    else:
        pred = fit.predict(None, prob=prob, random_seed=random_seed)
        xs = scale_of(law, data)
        ax.errorbar(
            xs,
            pred["median"],
            yerr=[pred["median"] - pred["lower"], pred["upper"] - pred["median"]],
            fmt="none",
            alpha=0.35,
            label=f"{int(prob * 100)}% predictive interval",
        )
        ax.scatter(xs, data["y"], s=10, color="k", zorder=3, label="data")
        if new is not None:
            pn = fit.predict(new, prob=prob, random_seed=random_seed)
            frame = fit._frame(new)
            xn = scale_of(law, frame)
            ax.errorbar(
                xn,
                pn["median"],
                yerr=[pn["median"] - pn["lower"], pn["upper"] - pn["median"]],
                fmt="o",
                color="C3",
                label="forecast",
            )
        ax.set_xlabel("compute C (FLOPs)" if {"N", "D"} <= set(law.inputs) or "C" in law.inputs
                      else law.inputs[0])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_ylabel(fit.spec.y)
    ax.set_title(f"{law.name}: {law.equation}", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_calibration(backtest: Any, *, ax: Any = None):
    """Plot observed against nominal coverage of a backtest's central intervals.

    One line per law (and the model average); the dashed diagonal is perfect
    calibration. Points below it mean intervals that are too narrow.

    Parameters
    ----------
    backtest : Backtest
        Result of :func:`bayescale.backtest`.
    ax : matplotlib Axes, optional

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> bt.plot_calibration()  # doctest: +SKIP
    """
    plt = _plt()
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4.5))
    cal = backtest.calibration()
    ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration")
    for law_name, sub in cal.groupby("law", sort=False):
        ax.plot(sub["nominal"], sub["observed"], marker="o", label=str(law_name))
    n = int(cal["n"].iloc[0]) if len(cal) else 0
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("nominal coverage of central interval")
    ax.set_ylabel(f"observed coverage ({n} held-out rows)")
    ax.set_title("Backtest calibration", fontsize=9)
    ax.legend(fontsize=8)
    return ax
