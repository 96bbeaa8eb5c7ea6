"""Plots. The only module that imports matplotlib (headless-safe: Agg when no display)."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .errors import BayescaleError, PoolingWarning
from .report import percent

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit


def _axes(ax: Any, figsize: tuple[float, float]) -> Any:
    """``ax``, or new axes of ``figsize`` when None; anything else is a clear error.

    New axes lay out their figure as drawn (matplotlib's constrained layout), so a plain
    ``plt.savefig`` keeps the axis labels inside the picture.
    """
    if ax is None:
        return _plt().subplots(figsize=figsize, layout="constrained")[1]
    from matplotlib.axes import Axes

    if not isinstance(ax, Axes):  # ax="foo": 'str' object has no attribute 'errorbar'
        raise BayescaleError(
            f"ax must be matplotlib axes (e.g. fig, ax = plt.subplots()), got {ax!r}."
        )
    return ax


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


#: Most groups or runs :func:`plot_fit` draws a band for (more: the population band).
MAX_BANDS = 10
#: The group label of :func:`plot_fit`'s population band (a level not in the data).
POPULATION_LEVEL = "(population)"


def plot_fit(
    fit: Fit,
    *,
    new: pd.DataFrame | None = None,
    prob: float = 0.9,
    extend: float = 10.0,
    ax: Any = None,
    random_seed: int | None = None,
    extrapolation: bool | str = "auto",
    kind: str = "predictive",
):
    """Data and the posterior predictive band on log axes (linear y for accuracy laws).

    ``new`` rows are drawn as forecasts with their intervals. ``extrapolation`` and
    ``kind`` as in :meth:`Fit.predict`: beyond the data the band carries the calibrated
    drift unless ``False``; ``kind="mean"`` draws the band of the law's mean curve.

    For a one-input law the band is a curve over the input range extended
    ``extend`` times beyond the largest fitted value (a falling input, a loss, below the
    smallest by the fitted span: the direction of larger models), one per group of a
    pooled fit or
    per run of a fit with ``run=`` (up to :data:`MAX_BANDS`). For laws of several inputs
    each training row (and each row of ``new``) gets its predictive interval,
    plotted against compute (``C`` or ``6 N D``), coloured by group or run as the bands.

    Returns the matplotlib Axes.
    """
    from .fit import scale_of

    _check_extend(extend)
    _plt()  # the backend, before any axes
    ax = _axes(ax, (6, 4))
    kw = dict(prob=prob, random_seed=random_seed, extrapolation=extrapolation, kind=kind)
    law = fit.law
    data = fit.data
    interval = f"{percent(prob)}% {kind} interval"
    # one band (one colour) per group of a pooled fit or per run (run offsets), up to
    # MAX_BANDS; more than that: the population band over all rows
    by = fit.spec.group_columns[:1] or ([fit.spec.run] if fit.spec.run else [])
    keys = sorted(data[by[0]].unique()) if by else []
    if not keys or len(keys) > MAX_BANDS:
        by, keys = [], [None]
    inp = plot_input(fit)
    if inp is not None:
        col = fit.spec.x.get(inp, inp)
        reach = None if new is None else fit._frame(new)[inp]  # the band reaches forecasts
        for key in keys:
            sub = data if key is None else data[data[by[0]] == key]
            grid = _grid_frame(fit, sub, inp,
                               _input_grid(law, sub[inp], extend, 80, inp, reach))
            if key is not None:
                for g in fit.spec.group_columns + ((fit.spec.run,) if fit.spec.run else ()):
                    grid[g] = sub[g].iloc[0]
            else:  # the population band: a level the fit never saw, on purpose
                for g in fit.spec.group_columns:
                    grid[g] = POPULATION_LEVEL
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", PoolingWarning)
                band = fit.predict(grid, shared_noise=True, **kw)  # no jitter along x
            new_group = key is None and fit.spec.group_columns
            lines = ax.plot(band[col], band["median"], lw=1.5,
                            label="median" if key is None else str(key))
            ax.fill_between(
                band[col], band["lower"], band["upper"], alpha=0.25, color=lines[0].get_color(),
                label=(f"{interval} of a new {fit.spec.group_columns[0]}" if new_group
                       else interval if key is None else None),
            )
            ax.scatter(sub[inp], sub["y"], s=12, color=lines[0].get_color(), zorder=3,
                       label="data" if key is None else None)
        if keys != [None]:  # the bands' meaning, once
            ax.fill_between([], [], [], color="0.6", alpha=0.25, label=interval)
        _mark_data_end(ax, data[inp], inp in law.falling_inputs)
        if new is not None:
            _forecast_points(ax, fit._frame(new)[inp], fit.predict(new, **kw),
                             _group_labels(fit, new, by))
        ax.set_xlabel(_input_label(fit, inp))
    else:
        pred = fit.predict(None, **kw)
        xs = np.asarray(scale_of(law, data))
        for i, key in enumerate(keys):
            rows = np.ones(len(data), bool) if key is None else (data[by[0]] == key).to_numpy()
            med, lo, hi = (pred[c].to_numpy()[rows] for c in ("median", "lower", "upper"))
            # wide, half-transparent bars: a point's dot must not hide its interval
            ax.errorbar(xs[rows], med, yerr=[med - lo, hi - med], **BARS,
                        color=None if key is None else f"C{i}",
                        label=interval if key is None else None)
            ax.scatter(xs[rows], data["y"].to_numpy()[rows], s=6, zorder=3,
                       color="k" if key is None else f"C{i}",
                       label="data" if key is None else str(key))
        if keys != [None]:  # the bars' meaning once, in grey: not the first group's colour
            ax.plot([], [], lw=BARS["elinewidth"], alpha=BARS["alpha"], color="0.6",
                    label=interval)
        _mark_data_end(ax, xs, False)
        if new is not None:
            _forecast_points(ax, scale_of(law, fit._frame(new)), fit.predict(new, **kw),
                             _group_labels(fit, new, by))
        ax.set_xlabel(_scale_label(fit))
    ax.set_xscale("log")
    ax.set_yscale("log" if law.link == "log" else "linear")  # accuracy: a linear axis
    _plain_log_ticks(ax)
    ax.set_ylabel(fit.spec.y)
    ax.set_title(_wrap(f"{law.name}: {law.equation}"), fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_input(fit: Fit) -> str | None:
    """The input a fit's plot runs along, or None (plotted against compute).

    A one-input law's input; a law whose other inputs are constants (an accuracy law's
    ``chance`` given as a number or a constant column) its one varying input.

    Examples
    --------
    >>> import bayescale as bs
    >>> class _F:  # a stand-in: the function reads the law and the data
    ...     law = bs.get_law("sigmoid_compute")
    ...     data = pd.DataFrame({"C": [1e20, 1e21, 1e22], "chance": 0.25})
    >>> plot_input(_F())
    'C'
    """
    law = fit.law
    if len(law.inputs) == 1:
        return law.inputs[0]
    varying = [i for i in law.inputs if fit.data[i].nunique() > 1]
    return varying[0] if len(varying) == 1 else None


def _grid_frame(fit: Fit, sub: pd.DataFrame, inp: str, values: np.ndarray) -> pd.DataFrame:
    """Rows along ``inp`` (the user's column name), the law's other inputs held constant.

    Each at its value in ``sub``; those given as numbers in ``x=`` need no column.
    """
    grid = pd.DataFrame({fit.spec.x.get(inp, inp): values})
    for other in fit.law.inputs:
        col = fit.spec.x.get(other, other)
        if other != inp and isinstance(col, str):
            grid[col] = sub[other].iloc[0]
    return grid


def _group_labels(fit: Fit, new: Any, by: list) -> list[str] | None:
    """Each new row's group (or run) label, to tell forecasts of several groups apart."""
    if not by:
        return None
    frame = pd.DataFrame(new) if not isinstance(new, pd.DataFrame) else new
    return [str(v) for v in frame[by[0]]] if by[0] in frame.columns else None


#: Interval bars of rows plotted against compute: wide and half-transparent, so that a
#: point's dot does not hide its interval (fit, average and chain plots alike).
BARS = {"fmt": "none", "alpha": 0.45, "elinewidth": 3}


def _check_extend(extend: Any) -> None:
    from .data import is_real_number
    from .errors import BayescaleError

    if not is_real_number(extend) or not extend >= 1:
        raise BayescaleError(
            "extend is how many times beyond the largest fitted value the band reaches: a "
            f"number >= 1 (10 by default), got {extend!r}."
        )


def _wrap(title: str, width: int = 80) -> str:
    """A title on lines of at most ``width`` characters (long equations were cut off)."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width)) or title


def _mark_data_end(ax: Any, values: Any, falling: bool) -> None:
    """A dotted line where the data end: beyond it the band is an extrapolation."""
    v = np.asarray(values, dtype=float)
    ax.axvline(float(v.min() if falling else v.max()), ls=":", lw=1, color="0.35",
               label="end of data (beyond: extrapolation)", zorder=1)


def _plain_log_ticks(ax: Any) -> None:
    """Plain numbers on a log axis spanning less than a decade (2x10^0 read badly)."""
    from matplotlib.ticker import FuncFormatter

    fmt = FuncFormatter(lambda v, _: f"{v:.3g}")
    for axis, scale, (lo, hi) in ((ax.xaxis, ax.get_xscale(), ax.get_xlim()),
                                  (ax.yaxis, ax.get_yscale(), ax.get_ylim())):
        if scale == "log" and lo > 0 and hi / lo < 10:
            axis.set_major_formatter(fmt)
            axis.set_minor_formatter(fmt)


def _input_label(fit: Fit, inp: str) -> str:
    """The x label of a plot along input ``inp``: its quantity and unit where known."""
    col = fit.spec.x.get(inp, inp)
    known = {"C": "compute C (FLOPs)", "N": "parameters N", "D": "tokens D"}
    if inp in known:  # fed from another column: not necessarily that quantity's unit
        label = known[inp] if col == inp else f"{inp} = column {col!r}"
    else:
        label = known.get(col, str(col))  # power_law's x fed from column "C": compute
    # the law's other inputs held where every fitted row has them (a forecast row at
    # another value is drawn at its x, off the band: said here)
    held = [f"{other} = {fit.data[other].iloc[0]:.3g}" for other in fit.law.inputs
            if other != inp and isinstance(fit.spec.x.get(other, other), str)]
    return label + (f" (band at {', '.join(held)})" if held else "")


def _input_grid(law: Any, values: pd.Series, extend: float, points: int,
                inp: str | None = None, reach: Any = None) -> np.ndarray:
    """Log-spaced values of a law's plotted input (default its first), extended as forecasts go.

    ``extend`` times above the largest value, or for a falling input (a loss,
    :attr:`Law.falling_inputs`: larger models have lower loss) below the smallest by the
    fitted span in log10 (one unit of the calibration's distance for such a law).
    ``reach``: values the band must cover besides (forecast rows beyond that).
    """
    lo, hi = np.log10(values.min()), np.log10(values.max())
    if (inp or law.inputs[0]) in law.falling_inputs:
        lo -= hi - lo if hi > lo else 0.1
    else:
        hi += np.log10(extend)
    r = np.asarray([] if reach is None else reach, dtype=float)
    r = r[np.isfinite(r) & (r > 0)]
    if len(r):  # the band reaches the forecasts (a row at 1e23 floated beyond it)
        lo, hi = min(lo, np.log10(r.min())), max(hi, np.log10(r.max()))
    return np.logspace(lo, hi, points)


def _scale_label(fit: Fit) -> str:
    """The x label of a plot against a law's scale (``scale_of``).

    C, else 6 N D, else its first input; the user's column where the law's ``C`` is fed
    from another one (parameters on an onset's compute axis are not FLOPs).
    """
    law = fit.law
    if "C" in law.inputs:
        col = fit.spec.x.get("C", "C")
        return "compute C (FLOPs)" if col == "C" else f"C = column {col!r}"
    if {"N", "D"} <= set(law.inputs):
        return "compute 6 N D (FLOPs)"
    return str(fit.spec.x.get(law.inputs[0], law.inputs[0]))


def _band_rows(fit: Fit, extend: float, points: int,
               new: Any = None) -> tuple[pd.DataFrame, str | None]:
    """Rows to draw a forecast band over, by the user's column names, and the x column.

    A one-input law (or one whose other inputs are constants, :func:`plot_input`):
    ``points`` values of its input over the fitted range extended ``extend`` times (x
    column: that input's). Laws of several inputs: the training rows
    (x column ``None``: plotted against compute).
    """
    _check_extend(extend)
    inp = plot_input(fit)
    if inp is not None:
        reach = None if new is None else fit._frame(new)[inp]
        grid = _input_grid(fit.law, fit.data[inp], extend, points, inp, reach)
        return _grid_frame(fit, fit.data, inp, grid), fit.spec.x.get(inp, inp)
    return fit.user_frame().drop(columns=fit.spec.y), None


def _forecast_points(ax: Any, x: Any, pred: pd.DataFrame,
                     labels: list[str] | None = None) -> None:
    """Forecast rows as red points with their central interval (``predict``'s table).

    ``labels`` (each row's group) are written beside them.
    """
    ax.errorbar(x, pred["median"], yerr=[pred["median"] - pred["lower"],
                pred["upper"] - pred["median"]], fmt="o", color="C3", label="forecast",
                zorder=4)  # above the data (zorder 3): a forecast inside the data shows
    for xi, yi, text in zip(np.asarray(x, dtype=float), pred["median"], labels or ()):
        ax.annotate(text, (xi, yi), xytext=(4, 4), textcoords="offset points", fontsize=7,
                    color="C3")


def plot_average(
    avg: Any,
    *,
    new: pd.DataFrame | None = None,
    prob: float = 0.9,
    extend: float = 10.0,
    ax: Any = None,
    random_seed: int | None = None,
    extrapolation: bool | str = "auto",
    kind: str = "predictive",
):
    """Data, each law's median forecast and the model average's predictive band.

    ``kind="mean"``: the band and medians of the laws' mean curves (:meth:`Fit.predict`).

    ``avg`` is a :class:`bayescale.Averaged`. Each member with a positive weight gets
    its median line (labelled with its weight); the average's central ``prob`` interval
    is the shaded band (one-input laws: over the input range extended ``extend`` times)
    or error bars at the training rows and at ``new`` (laws of several inputs, plotted
    against compute). Where the laws' lines part, the band widens: the law-form share of
    :meth:`Averaged.decompose`.

    Returns the matplotlib Axes.

    Examples
    --------
    >>> bs.average({"chinchilla": f1, "kaplan": f2}, weights="lfo").plot(new=target)
    ... # doctest: +SKIP
    """
    from .fit import scale_of

    _plt()  # the backend, before any axes
    ax = _axes(ax, (6, 4))
    kw = dict(prob=prob, random_seed=random_seed, extrapolation=extrapolation, kind=kind)
    names = avg._members()
    top = avg.fits[max(names, key=lambda k: avg.weights[k])]
    law, data = top.law, top.data
    frame, col = _band_rows(top, extend, 80, new)
    one_input = col is not None
    if one_input:
        inp = plot_input(top)
    xs = scale_of(law, top._frame(frame)) if not one_input else frame[col].to_numpy()
    order = np.argsort(xs)
    band = avg.predict(frame, shared_noise=one_input, **kw)  # one input: a smooth band
    label = f"average, {percent(prob)}% {kind}"
    if one_input:
        ax.fill_between(xs, band["lower"], band["upper"], color="0.6", alpha=0.35, label=label)
    else:
        ax.errorbar(xs, band["median"], yerr=[band["median"] - band["lower"],
                    band["upper"] - band["median"]], **BARS, color="0.5", label=label)
    for i, name in enumerate(names):
        med = avg.fits[name].predict(frame, shared_noise=one_input, **kw)["median"]
        lab = f"{name} median (weight {avg.weights[name]:.2f})"
        if one_input:
            ax.plot(xs[order], med.to_numpy()[order], lw=1.5, color=f"C{i}", label=lab)
        else:  # rows of different N and D at similar compute: markers, not a line
            ax.scatter(xs, med.to_numpy(), marker="_", s=60, color=f"C{i}", label=lab)
    ax.scatter(scale_of(law, data) if not one_input else data[inp], data["y"], s=10,
               color="k", zorder=3, label="data")
    _mark_data_end(ax, data[inp] if one_input else scale_of(law, data),
                   one_input and inp in law.falling_inputs)
    if new is not None:  # the forecast rows, marked as such (they were grey error bars)
        x_new = top._frame(new)[inp] if one_input else scale_of(law, top._frame(new))
        _forecast_points(ax, x_new, avg.predict(new, **kw))
    ax.set_xscale("log")
    ax.set_yscale("log" if law.link == "log" else "linear")
    _plain_log_ticks(ax)
    ax.set_xlabel(_input_label(top, inp) if one_input else _scale_label(top))
    ax.set_ylabel(top.spec.y)
    weights = ", ".join(f"{k} {w:.2f}" for k, w in avg.weights.items())
    ax.set_title(_wrap(f"model average (weights: {weights})"), fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_chain(
    ch: Any,
    *,
    new: pd.DataFrame | None = None,
    data: pd.DataFrame | None = None,
    prob: float = 0.9,
    extend: float = 10.0,
    ax: Any = None,
    random_seed: int | None = None,
    extrapolation: bool | str = "auto",
):
    """The chained accuracy forecast against stage 1's scale (compute, ``6 N D`` or its input).

    ``ch`` is a :class:`bayescale.Chain` (or a :class:`~bayescale.JointFit`). Over stage
    1's training rows (a one-input law: its input range extended ``extend`` times) the
    central ``prob`` interval of :meth:`Chain.predict` is a band (a one-input stage 1) or
    error bars; ``new`` rows are forecasts with their intervals. Columns stage 2 needs
    besides the loss (a ``chance`` column, group labels, ``n``) are taken from the first
    row of ``new``. ``data``: rows with stage 1's inputs and stage 2's response (e.g. the
    models both stages were fitted on), drawn as points. ``extrapolation`` as in
    :meth:`Chain.predict`.

    Returns the matplotlib Axes.

    Examples
    --------
    >>> bs.chain(loss_fit, acc_fit).plot(new={"C": [1e23]}, data=models)  # doctest: +SKIP
    """
    from .errors import BayescaleError
    from .fit import scale_of

    _plt()  # the backend, before any axes
    ax = _axes(ax, (6, 4))
    s1, s2 = ch.loss_fit, ch.accuracy_fit
    law = s1.law
    new_df = None if new is None else ch._new(new)
    frame, col = _band_rows(s1, extend, 60, new_df)  # the band reaches the forecasts
    one_input = col is not None
    if new_df is not None:  # what stage 2 needs besides the loss, from the first new row
        for c in new_df.columns:
            if c not in frame.columns:
                frame[c] = new_df[c].iloc[0]
    xs = scale_of(law, s1._frame(frame))
    order = np.argsort(xs)
    kw = dict(prob=prob, random_seed=random_seed, extrapolation=extrapolation)
    band = ch.predict(frame, shared_noise=one_input, **kw)  # one input: a smooth band
    joint = type(ch).__name__ == "JointFit"
    # the loss stage 2 is fed: a joint fit pushes the mean loss by default, a narrower band
    label = (f"{'joint' if joint else 'chained'} {percent(prob)}% predictive "
             f"(of the {ch.default_loss_kind} loss)")
    if one_input:
        lines = ax.plot(xs[order], band["median"].to_numpy()[order], lw=1.5, label="median")
        ax.fill_between(xs[order], band["lower"].to_numpy()[order],
                        band["upper"].to_numpy()[order], alpha=0.25,
                        color=lines[0].get_color(), label=label)
    else:
        ax.errorbar(xs, band["median"], yerr=[band["median"] - band["lower"],
                    band["upper"] - band["median"]], **BARS, label=label)
    if data is not None:
        y, n = s2.spec.y, s2.spec.trials or "n"
        if y in data.columns:
            obs = data[y].to_numpy(dtype=float)
        elif {"correct", n} <= set(data.columns):  # counts, as bs.fit takes them
            obs = data["correct"].to_numpy(dtype=float) / data[n].to_numpy(dtype=float)
        else:
            raise BayescaleError(
                f"plot(data=...): the rows have no column {y!r} (stage 2's response) nor "
                f"'correct' and {n!r}; available: {list(data.columns)}."
            )
        keep = np.isfinite(obs)  # rows with a loss only (a joint fit's data)
        ax.scatter(scale_of(law, s1._frame(data[keep])), obs[keep], s=12, color="k",
                   zorder=3, label="data")
    inp = plot_input(s1)
    _mark_data_end(ax, s1.data[inp] if one_input else xs, one_input and inp in law.falling_inputs)
    if new_df is not None:
        _forecast_points(ax, scale_of(law, s1._frame(new_df)), ch.predict(new_df, **kw))
    ax.set_xscale("log")
    ax.set_xlabel(_input_label(s1, inp) if one_input else _scale_label(s1))
    ax.set_ylabel(s2.spec.y)
    ax.set_title(_wrap(f"{law.name} -> {s2.law.name}" + (" (joint fit)" if joint else "")),
                 fontsize=9)
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
    from .errors import BayescaleError

    if type(backtest).__name__ != "Backtest":
        raise BayescaleError(
            "plot_calibration takes the result of bs.backtest (observed against nominal "
            f"coverage of held-out rows), got {type(backtest).__name__}."
        )
    _plt()  # the backend, before any axes
    ax = _axes(ax, (4.5, 4.5))
    cal = backtest.calibration()
    ax.plot([0, 1], [0, 1], ls="--", color="0.5", lw=1, label="perfect calibration")
    marks = ("o", "s", "^", "D", "v", "P", "X")
    for i, (law_name, sub) in enumerate(cal.groupby("law", sort=False)):
        # markers and line styles differ: equal coverages (a law of weight 1 and the
        # average) once hid one line under the other
        ax.plot(sub["nominal"], sub["observed"], marker=marks[i % len(marks)],
                ls=("-", "--", "-.", ":")[i % 4], alpha=0.85, label=str(law_name))
    n = int(cal["n"].iloc[0]) if len(cal) else 0
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("nominal coverage of central interval")
    ax.set_ylabel(f"observed coverage ({n} held-out rows)")
    ax.set_title("Backtest calibration", fontsize=9)
    ax.legend(fontsize=8)
    return ax


def plot_sbc(
    result: Any,
    *,
    kind: str = "hist",
    n_bins: int | None = None,
    params: Any = None,
    prob: float = 0.99,
):
    """Plot the ranks of a simulation-based calibration, one panel per parameter.

    ``kind="hist"``: rank histograms with the central ``prob`` interval of each bin's
    count under uniform ranks (grey band, Talts et al. 2018). ``kind="ecdf"``: the
    ECDF of the ranks minus the uniform CDF with a simultaneous ``prob`` band
    (ArviZ's ``plot_ecdf(difference=True)``, Säilynoja et al. 2022). Curves leaving
    the band point to a miscalibrated posterior: a U shape (histogram) or a dip then
    a rise (ECDF difference) to posteriors that are too narrow, a tilt to a bias.

    Parameters
    ----------
    result : SBCResult
        Result of :func:`bayescale.sbc`.
    kind : {"hist", "ecdf"}
    n_bins : int, optional
        Histogram bins (default as in ``SBCResult.uniformity``).
    params : list of str, optional
        Parameters to show (default: all).
    prob : float
        Probability of the band.

    Returns
    -------
    matplotlib Figure

    Examples
    --------
    >>> res = bs.sbc("power_law", design, n_sims=100, random_seed=0)  # doctest: +SKIP
    >>> fig = plot_sbc(res, kind="ecdf")  # doctest: +SKIP
    """
    from scipy import stats

    from .errors import BayescaleError

    if kind not in {"hist", "ecdf"}:
        raise BayescaleError(f"kind must be 'hist' or 'ecdf', got {kind!r}.")
    if not 0 < prob < 1:
        raise BayescaleError(f"prob must be in (0, 1), got {prob!r}.")
    names = ([params] if isinstance(params, str) else list(params)) if params is not None \
        else result.params
    if not names:
        raise BayescaleError(f"params names none of the ranked parameters {result.params}.")
    unknown = [p for p in names if p not in result.params]
    if unknown:
        raise BayescaleError(f"params {unknown} were not ranked; ranked: {result.params}.")
    plt = _plt()
    ncol = min(3, len(names))
    nrow = int(np.ceil(len(names) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(3.4 * ncol, 2.8 * nrow), squeeze=False)
    L = result.n_ranks
    pvals = result.uniformity(n_bins)["p_value"]
    edges = result._bins(n_bins)
    uniform_ranks = stats.randint(0, L + 1)
    for ax, p in zip(axes.ravel(), names):
        r = np.array(result.ranks.loc[result.ranks["param"] == p, "rank"], dtype=float)
        if kind == "hist":
            from .sbc import _binned

            obs, expected = _binned(r, edges, L)
            lefts = np.array([b[0] for b in edges], dtype=float)
            widths = np.array([len(b) for b in edges], dtype=float)
            frac = widths / widths.sum()
            lo = stats.binom.ppf((1 - prob) / 2, len(r), frac)
            hi = stats.binom.ppf(1 - (1 - prob) / 2, len(r), frac)
            xs = np.append(lefts, L + 1.0)
            ax.fill_between(xs, np.append(lo, lo[-1]), np.append(hi, hi[-1]), step="post",
                            color="0.5", alpha=0.3, lw=0, zorder=0,
                            label=f"{percent(prob)}% band (uniform)")
            ax.bar(lefts, obs, width=widths, align="edge", color="C0", alpha=0.8,
                   edgecolor="white", zorder=1)
            ax.step(xs, np.append(expected, expected[-1]), where="post", color="0.3", lw=1,
                    zorder=2)
            ax.set_xlim(0, L + 1)
            ax.set_xlabel(f"rank (0..{L})")
            ax.set_ylabel("simulations")
            ax.legend(fontsize=7)
        else:
            import arviz as az

            az.plot_ecdf(
                r,
                cdf=uniform_ranks.cdf,
                difference=True,
                confidence_bands="simulated",
                ci_prob=prob,
                eval_points=np.arange(L + 1),
                rvs=uniform_ranks.rvs,
                random_state=0,
                ax=ax,
            )
            ax.set_xlabel(f"rank (0..{L})")
            ax.set_ylabel("ECDF - uniform CDF")
        ax.set_title(f"{p}  (chi-square p = {pvals[p]:.2g})", fontsize=9)
    for ax in axes.ravel()[len(names):]:
        ax.set_visible(False)
    fig.suptitle(
        f"SBC of {result.settings.get('law')!r}: {result.n_sims} simulations", fontsize=10
    )
    fig.tight_layout()
    return fig
