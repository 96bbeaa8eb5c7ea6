"""A fit report to paste into a paper: law, priors, data, conventions, sampler, results.

:func:`report` collects everything a reader needs to reproduce or judge a fit in
tables (``Report.tables``), renders them as Markdown (``Report.markdown()``) and
writes them as CSV files (``Report.to_csv(folder)``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .autocorr import (
    AR1_THRESHOLD,
    POOLED_WITHOUT_RUN,
    ar1_obstacle,
    residual_autocorrelation,
)
from .errors import BayescaleError

CONVENTIONS = {
    "N": "parameters",
    "D": "training tokens",
    "C": "training compute in FLOPs",
    "U": "unique training tokens",
}


@dataclass(frozen=True)
class Report:
    """Tables describing a fit; render with :meth:`markdown` or :meth:`to_csv`.

    Attributes
    ----------
    title : str
    tables : dict of DataFrame
        ``model``, ``priors``, ``data``, ``conventions``, ``sampler``,
        ``diagnostics``, ``parameters`` and, with a target, ``forecast``.
    notes : list of str
        Sampling problems and other remarks.
    """

    title: str
    tables: Mapping[str, pd.DataFrame]
    notes: tuple[str, ...] = ()

    def markdown(self) -> str:
        """Render the report as Markdown (pipe tables)."""
        parts = [f"# {self.title}", ""]
        for name, table in self.tables.items():
            parts.append(f"## {name.capitalize()}")
            parts.append("")
            parts.append(_md_table(table))
            parts.append("")
        if self.notes:
            parts.append("## Notes")
            parts.append("")
            parts += [f"- {n}" for n in self.notes]
            parts.append("")
        return "\n".join(parts)

    def latex(self, tables: Sequence[str] | None = None, *, notes: bool = True,
              label: str = "tab:") -> str:
        r"""Render tables as LaTeX ``booktabs`` tables, ready for a paper.

        Parameters
        ----------
        tables : list of str, optional
            Which tables, in order (default: all, e.g. ``["parameters", "forecast"]``).
            Each becomes a ``table`` float with its name as caption and a label
            ``<label><name>``; text is escaped, numbers get four significant digits.
            Needs ``\usepackage{booktabs}``.
        notes : bool
            Add the report's notes (sampling problems, what the intervals are) after the
            tables, as a list: a table of numbers whose fit flagged r_hat must not travel
            without the flag.
        label : str
            Prefix of the tables' labels (``"tab:"``); give each report its own, such as
            ``"tab:chinchilla-"``, when a paper holds two.

        Examples
        --------
        >>> rep = Report("fit", {"forecast": pd.DataFrame({"median": [1.93], "lower_90": [1.87]},
        ...                                               index=pd.Index(["70B"], name="N"))})
        >>> print(rep.latex())  # doctest: +NORMALIZE_WHITESPACE
        \begin{table}
        \centering
        \caption{fit: forecast}
        \label{tab:forecast}
        \begin{tabular}{lrr}
        \toprule
        N & median & lower\_90 \\
        \midrule
        70B & 1.93 & 1.87 \\
        \bottomrule
        \end{tabular}
        \end{table}
        """
        names = list(self.tables) if tables is None else list(tables)
        unknown = [n for n in names if n not in self.tables]
        if unknown:
            raise BayescaleError(
                f"The report has no table(s) {unknown}; it has {list(self.tables)}."
            )
        parts = [_tex_table(self.tables[n], f"{self.title}: {n}", _tex_label(n, label))
                 for n in names]
        if notes and self.notes:
            parts.append("\n".join([r"\paragraph{Notes (" + _tex(self.title) + ")}",
                                     r"\begin{itemize}"]
                                    + [rf"\item {_tex(n)}" for n in self.notes]
                                    + [r"\end{itemize}"]))
        return "\n\n".join(parts)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __str__(self) -> str:
        return self.markdown()

    def to_csv(self, path: str | Path) -> list[Path]:
        """Write one CSV per table into folder ``path`` (created); returns the files."""
        folder = Path(path)
        if folder.suffix == ".csv":
            raise BayescaleError(
                f"to_csv writes one file per table into a folder; give a folder, not {str(path)!r}."
            )
        folder.mkdir(parents=True, exist_ok=True)
        out = []
        for name, table in self.tables.items():
            # "parameters (chinchilla)" -> parameters_chinchilla.csv
            p = folder / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_')}.csv"
            table.to_csv(p, index=True)
            out.append(p)
        return out


def percent(prob: float) -> str:
    """A probability as the percent in labels: 90 for 0.9, 97.5 for 0.975 (not rounded to 98).

    Examples
    --------
    >>> [percent(p) for p in (0.5, 0.9, 0.975, 0.999)]
    ['50', '90', '97.5', '99.9']
    """
    return f"{100 * prob:g}"


def _text(v: Any) -> str:
    """A cell as text: floats to four significant digits, a line break as a space.

    A dict reads ``key value, ...`` and a list or tuple ``a, b, ...``, their numbers
    formatted alike (a timing of ``6.597563131999777`` s is ``6.598``).

    Examples
    --------
    >>> _text({"sample_s": 6.597563131999777, "compiled": True})
    'sample_s 6.598, compiled True'
    >>> _text([0.5, 0.65, 0.8])
    '0.5, 0.65, 0.8'
    """
    if isinstance(v, dict):
        return ", ".join(f"{k} {_text(x)}" for k, x in v.items())
    if isinstance(v, (list, tuple)):
        return ", ".join(_text(x) for x in v)
    if isinstance(v, (float, np.floating)):
        return str(v) if not np.isfinite(v) else f"{float(v):.4g}"
    return str(v).replace("\n", " ")


def _fmt(v: Any) -> str:
    """A Markdown table cell (a pipe would end the cell)."""
    return _text(v).replace("|", "\\|")


def _cells(df: pd.DataFrame) -> tuple[list[str], list[list[Any]]]:
    """Header (the index's name, then the columns) and rows (index value, then values)."""
    header = [str(df.index.name or "")] + [str(c) for c in df.columns]
    return header, [[idx, *row.tolist()] for idx, row in df.iterrows()]


def _md_table(df: pd.DataFrame) -> str:
    header, rows = _cells(df)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


#: LaTeX's special characters and what stands for each in text
_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#",
        "_": r"\_", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}"}


def _tex(v: Any) -> str:
    r"""A cell as LaTeX: text escaped; a number in e-notation as a power of ten.

    Examples
    --------
    >>> print(_tex(7e10), _tex(1e21), _tex(2.5e-7), _tex(1.934), _tex("lower_90"))
    $7 \times 10^{10}$ $10^{21}$ $2.5 \times 10^{-7}$ 1.934 lower\_90
    """
    text = _text(v)
    if isinstance(v, (float, np.floating)) and "e" in text and np.isfinite(v):
        mantissa, exponent = text.split("e")
        power = f"10^{{{int(exponent)}}}"
        return f"${power}$" if mantissa == "1" else f"${mantissa} \\times {power}$"
    return "".join(_TEX.get(c, c) for c in text)


def _tex_label(name: str, prefix: str = "tab:") -> str:
    return prefix + re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")


def _tex_table(df: pd.DataFrame, caption: str, label: str) -> str:
    header, rows = _cells(df)
    align = "l" + "".join(
        "r" if pd.api.types.is_numeric_dtype(df[c]) else "l" for c in df.columns
    )
    lines = [r"\begin{table}", r"\centering", rf"\caption{{{_tex(caption)}}}",
             rf"\label{{{label}}}", rf"\begin{{tabular}}{{{align}}}", r"\toprule",
             " & ".join(_tex(c) for c in header) + r" \\", r"\midrule"]
    lines += [" & ".join(_tex(v) for v in row) + r" \\" for row in rows]
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines)


def _kv(d: Mapping[str, Any], name: str = "item") -> pd.DataFrame:
    """A one-column table of ``d``; a dict or list value as text (:func:`_text`)."""
    return pd.DataFrame({"value": [_text(v) if isinstance(v, (list, tuple, dict)) else v
                                   for v in d.values()]}, index=pd.Index(list(d), name=name))


def parameter_table(fit: Any, prob: float = 0.9) -> pd.DataFrame:
    """Posterior mean, sd, median and central ``prob`` interval, r_hat and ESS per parameter."""
    import arviz as az

    post = fit.posterior
    names = [v for v in fit.var_names if v in post]
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    # unrounded: ArviZ rounds to 2 decimals, so an r_hat of 1.0124, which the fit flags
    # (> 1.01), read 1.01
    summ = az.summary(fit.idata, var_names=names, kind="diagnostics", round_to="none")
    rows = []
    for v in names:
        arr = post[v].values.reshape(post.sizes["chain"] * post.sizes["draw"], -1)
        for j in range(arr.shape[1]):
            label = v if arr.shape[1] == 1 else f"{v}[{j}]"
            a = arr[:, j]
            key = label if label in summ.index else v
            rows.append({
                "parameter": label,
                "mean": float(a.mean()),
                "sd": float(a.std(ddof=1)),
                "median": float(np.median(a)),
                f"lower_{percent(prob)}": float(np.quantile(a, lo)),
                f"upper_{percent(prob)}": float(np.quantile(a, hi)),
                "r_hat": float(summ.loc[key, "r_hat"]) if key in summ.index else np.nan,
                "ess_bulk": float(summ.loc[key, "ess_bulk"]) if key in summ.index else np.nan,
            })
    return pd.DataFrame(rows).set_index("parameter")


def report(
    fit: Any,
    target: pd.DataFrame | Mapping[str, Any] | None = None,
    *,
    prob: float = 0.9,
    title: str | None = None,
    extrapolation: bool | str = "auto",
    kind: str = "predictive",
) -> Report:
    """Build a :class:`Report` of a fit, with an optional forecast at ``target`` rows.

    Parameters
    ----------
    fit : Fit, Averaged or Chain
        A fit, or a model average (:func:`bayescale.average`): its report has the
        ``weights``, the average's ``forecast`` (with the ``law_form`` share) and every
        law's tables, named ``"<table> (<law>)"``; or a two-stage forecast
        (:func:`bayescale.chain`, :func:`bayescale.fit_joint`): its ``forecast`` (shares
        ``loss``, ``parameter``, ``noise``, ``extrapolation``, :meth:`Chain.decompose`)
        and each stage's tables, named ``"<table> (stage 1: <law>)"``.
    target : DataFrame or dict, optional
        Rows to forecast (input columns as in training); the forecast table gives
        the posterior predictive median, central ``prob`` interval, the
        extrapolation ratio (target compute / largest fitted compute) and the shares
        of the predictive variance (log scale for a loss, logit scale for an accuracy)
        from parameter uncertainty, noise and the extrapolation discrepancy
        (:meth:`Fit.decompose`).
    prob : float
        Credible interval probability of the parameter and forecast tables.
    extrapolation : {"auto", True, False}
        As in :meth:`Fit.predict`: ``False`` forecasts without the calibrated drift
        beyond the data (and says so in the notes); the default widens such forecasts.
    kind : {"predictive", "mean"}
        As in :meth:`Fit.predict`: ``"mean"`` forecasts the law's mean curve (no
        observation noise); its forecast table then has no variance shares (they split
        the predictive variance) and a note says so.

    Examples
    --------
    >>> rep = bs.report(f, target={"N": [7e10], "D": [1.4e12]})  # doctest: +SKIP
    >>> print(rep.markdown())  # doctest: +SKIP
    """
    from .chain import Chain
    from .compare import Averaged
    from .fit import KINDS, Fit, _check_prob, data_hash, pooled_text

    prob = _check_prob(prob)
    if kind not in KINDS:
        raise BayescaleError(f"kind must be one of {KINDS}, got {kind!r}.")
    if isinstance(fit, Averaged):
        return _average_report(fit, target, prob, title, extrapolation, kind)
    if isinstance(fit, Chain):
        return _chain_report(fit, target, prob, title, extrapolation, kind)
    if not isinstance(fit, Fit):
        raise BayescaleError(
            f"report takes a Fit (bs.fit), an average (bs.average) or a two-stage chain "
            f"(bs.chain, bs.fit_joint), got {type(fit).__name__}."
        )
    spec = fit.spec
    law = fit.law
    model = {
        "law": law.name,
        "equation": law.equation or law.doc,
        "citation": law.citation or "-",
        "link": law.link,
        "likelihood": f"{spec.likelihood} on the {'log' if law.link == 'log' else law.link} scale",
        "pooled": pooled_text(spec.pooled) or "none",
        "run offsets": spec.run or "none",
    }
    priors = pd.DataFrame(
        {
            "prior": [str(spec.priors[p]) for p in spec.priors],
            "note": [_prior_note(spec, p) for p in spec.priors],
        },
        index=pd.Index(list(spec.priors), name="parameter"),
    )
    d = fit.data
    data_info: dict[str, Any] = {
        "rows": len(d),
        "sha256 (first 16 hex)": data_hash(d),
        "response": f"{spec.y} (range {d['y'].min():.4g} to {d['y'].max():.4g})",
    }
    for inp in law.inputs:
        col = spec.x.get(inp, inp)
        data_info[f"input {inp}"] = (
            f"column {col!r}, range {d[inp].min():.4g} to {d[inp].max():.4g}"
            if isinstance(col, str) else f"constant {col:g}"
        )
    conv: dict[str, Any] = {}
    for inp in law.inputs:
        col = spec.x.get(inp, inp)
        if not isinstance(col, str):  # x={"chance": 0.25}
            conv[inp] = f"{CONVENTIONS.get(inp, 'as given')} (constant {col:g})"
        elif col == inp or col in CONVENTIONS:
            conv[inp] = f"{CONVENTIONS.get(col, 'as given')} (column {col!r})"
        else:  # the law's axis fed from the user's column: its units are the column's
            meaning = CONVENTIONS.get(inp)
            conv[inp] = (f"{meaning} by convention; here column {col!r}, in its own units"
                         if meaning else f"as given (column {col!r})")
    conv["compute"] = (
        "C = 6 N D FLOPs (Kaplan et al. 2020) where C is derived from N and D; "
        "extrapolation ratios use C, else 6 N D, else the law's first input"
    )
    if law.name == "kaplan":
        conv["N"] = conv.get("N", "") + "; Kaplan et al. count non-embedding parameters"
    sampler = {k: v for k, v in fit.settings.items()}
    diag = {k: v for k, v in fit.diagnostics.items() if k != "problems"}
    diag["status"] = "ok" if not fit.diagnostics.get("problems") else "problems (see notes)"
    r, pairs = residual_autocorrelation(fit)
    diag["residual_lag1_autocorrelation"] = round(r, 3)
    tables: dict[str, pd.DataFrame] = {
        "model": _kv(model),
        "priors": priors,
        "data": _kv(data_info),
        "conventions": _kv(conv, "quantity"),
        "sampler": _kv(sampler, "setting"),
        "diagnostics": _kv(diag, "diagnostic"),
        "parameters": parameter_table(fit, prob),
    }
    if spec.pooled:  # each group's own value beside the population's (fit.group_effects)
        tables["group effects"] = _group_table(fit, prob)
    if target is not None:
        tables["forecast"] = _forecast_table(fit, target, prob,
                                             ("parameter", "noise", "extrapolation"),
                                             extrapolation, kind)
    notes = (tuple(fit.diagnostics.get("problems", ())) + _drift_off_note(target, extrapolation)
             + _mean_note(target, kind))
    if "calibration" in fit.__dict__ or "calibration" in fit.extras:
        # the drift a forecast beyond the data used: how large, learned from what
        tables["calibration"], problems = _calibration_table(fit.calibration)
        notes += tuple(f"extrapolation calibration: {p}" for p in problems)
    if r > AR1_THRESHOLD and fit.spec.likelihood != "ar1":
        obstacle = ar1_obstacle(fit.spec, fit.data)
        if obstacle is None:
            fix = ("For learning curves or checkpoints refit with likelihood='ar1' or 'auto' "
                   "(docs/calibration.md).")
        elif obstacle == POOLED_WITHOUT_RUN:
            fix = ("The rows of different groups are not one sequence: pass run=<column> "
                   "(one sequence per run) with likelihood='ar1' or 'auto' "
                   "(docs/calibration.md).")
        else:
            fix = f"likelihood='ar1' does not apply to these rows as they are: {obstacle}"
        notes += (
            f"Residuals are autocorrelated along scale (lag-1 r = {r:.2f} over {pairs} "
            "neighbouring pairs): the law misses over stretches of scale and an i.i.d. "
            f"likelihood overstates certainty. {fix}",
        )
    note = heavy_tail_note(fit)
    if note:
        notes += (note,)
    return Report(title=title or f"Fit of {law.name} ({len(d)} rows)", tables=tables,
                  notes=notes + (INTERVAL_NOTE,))


def _group_table(fit: Any, prob: float) -> pd.DataFrame:
    """:meth:`Fit.group_effects` as a report table: one row per parameter, column and level."""
    ge = fit.group_effects(prob=prob)
    p = percent(prob)
    ge = ge.rename(columns={"lower": f"lower_{p}", "upper": f"upper_{p}"})

    def label(a: str, g: str, lv: Any, k: str) -> str:
        if k == "level":
            return f"{a} [{g} = {lv}]"
        if k == "sd":  # the offsets' scale, where they are drawn (pooling.group_effects)
            return f"{a} [{g}]: sd of offsets (unconstrained scale)"
        return f"{a} [{g}]: population"

    ge.index = pd.Index([label(*r) for r in zip(ge["param"], ge["group"], ge["level"],
                                                 ge["kind"])], name="parameter")
    return ge.drop(columns=["param", "group", "level", "kind"])


#: What the report's parameter intervals are, beside ArviZ's summary's (a note of each report).
INTERVAL_NOTE = (
    "parameter intervals here are central (equal-tailed) credible intervals; ArviZ's summary "
    "(fit.summary(), the command line's table and summary.csv) gives highest-density "
    "intervals (hdi_), which differ where a posterior is skewed"
)


def _calibration_table(cal: Any) -> tuple[pd.DataFrame, list[str]]:
    """The calibrated drift in a table (``Calibration.summary``) and its inner fits' problems.

    ``tau`` is the drift's sd per unit of distance (a decade of compute; for a law of a
    loss, the log10 span of the fitted losses) on the drift scale, ``sd = tau * d**h``.
    """
    summ = cal.summary()
    problems = list(summ.pop("problems", ()))
    summ["drift"] = f"sd = tau * distance^h on the {cal.scale} scale"
    along = summ.pop("ratio", None)  # the drifts along D/N, beyond the fitted ratios
    if along:
        summ["drift"] += ("; drifts of their own above and below the fitted input ratios "
                          "(D/N), added")
        for side, s in along.items():
            for key in ("tau_median", "tau_5%", "tau_95%", "h_mean", "inner_points"):
                summ[f"ratio_{side}_{key}"] = s[key]
    if summ.pop("ratio_pending", False):  # an internal flag, said in words
        summ["ratio_drifts"] = ("learned at the first forecast beyond the fitted input "
                                "ratios (D/N)")
    summ["inner_problems"] = len(problems)
    return _kv(summ, "setting"), problems


def _drift_off_note(target: Any, extrapolation: bool | str) -> tuple[str, ...]:
    """The note of a forecast made without the extrapolation drift, or none."""
    if target is None or extrapolation is not False:
        return ()
    return ("forecast without the extrapolation drift (extrapolation=False): beyond the "
            "fitted range its intervals hold parameter uncertainty and noise only, which "
            "covered far less than nominal on real ladders (docs/calibration.md)",)


def _mean_note(target: Any, kind: str) -> tuple[str, ...]:
    """The note of a forecast of the mean curve (``kind="mean"``), or none."""
    if target is None or kind != "mean":
        return ()
    return ("forecast of the law's mean curve (kind='mean'): its intervals hold no "
            "observation noise, so a new run's measured value falls outside them more "
            "often; the variance shares, which split the predictive variance, are not given",)


def _forecast_table(fit: Any, target: Any, prob: float, sources: tuple[str, ...],
                    extrapolation: bool | str = "auto", kind: str = "predictive"
                    ) -> pd.DataFrame:
    """Forecast at ``target``: median, interval, extrapolation, distance and variance shares.

    ``kind="mean"``: the mean curve's forecast, without the shares of the predictive variance.
    """
    pred = fit.predict(target, prob=prob, extrapolation=extrapolation, kind=kind)
    cols = [c for c in pred.columns if c not in {"mean"}]
    fc = pred[cols].rename(columns={"lower": f"lower_{percent(prob)}",
                                    "upper": f"upper_{percent(prob)}"})
    # why the interval is as wide as it is: shares of the predictive variance (drift scale)
    dec = fit.decompose(target, extrapolation=extrapolation)
    if "distance" in dec:  # decades beyond the data, over N, D, compute and D/N
        fc["distance"] = dec["distance"].to_numpy()
    for c in sources if kind == "predictive" else ():
        fc[f"{c}_share"] = dec[f"{c}_share"].to_numpy()
    fc.index.name = "target"
    return fc


def _average_report(avg: Any, target: Any, prob: float, title: str | None,
                    extrapolation: bool | str = "auto", kind: str = "predictive") -> Report:
    """The report of a model average: weights, its forecast, then each law's tables."""
    names = list(avg.fits)
    tables: dict[str, pd.DataFrame] = {
        "weights": pd.DataFrame(
            {"law": [avg.fits[n].law.name for n in names],
             "weight": [float(avg.weights.get(n, 0.0)) for n in names]},
            index=pd.Index(names, name="fit"),
        )
    }
    if target is not None:
        tables["forecast"] = _forecast_table(
            avg, target, prob, ("parameter", "noise", "extrapolation", "law_form"),
            extrapolation, kind)
    notes: tuple[str, ...] = _drift_off_note(target, extrapolation) + _mean_note(target, kind)
    for n in names:
        part = report(avg.fits[n], prob=prob)
        tables.update({f"{k} ({n})": t for k, t in part.tables.items()})
        notes += tuple(f"{n}: {note}" for note in part.notes if note != INTERVAL_NOTE)
    notes += (INTERVAL_NOTE,)
    return Report(title=title or f"Average of {len(names)} laws ({', '.join(names)})",
                  tables=tables, notes=notes)


def _chain_report(ch: Any, target: Any, prob: float, title: str | None,
                  extrapolation: bool | str = "auto", kind: str = "predictive") -> Report:
    """The report of a two-stage forecast: its forecast, then each stage's tables."""
    stages = {"stage 1": ch.loss_fit, "stage 2": ch.accuracy_fit}
    tables: dict[str, pd.DataFrame] = {}
    if target is not None:
        tables["forecast"] = _forecast_table(ch, target, prob, ch.variance_sources,
                                             extrapolation, kind)
    notes: tuple[str, ...] = _drift_off_note(target, extrapolation) + _mean_note(target, kind)
    joint = tuple(getattr(ch, "diagnostics", {}).get("problems", ()))
    # a JointFit: one posterior for both stages, whose problems its stages' views repeat
    notes += tuple(f"joint fit: {p}" for p in joint)
    for name, f in stages.items():
        part = report(f, prob=prob)
        tables.update({f"{k} ({name}: {f.law.name})": t for k, t in part.tables.items()})
        notes += tuple(f"{name}: {note}" for note in part.notes
                       if note not in joint and note != INTERVAL_NOTE)
    notes += (INTERVAL_NOTE,)
    laws = " -> ".join(f.law.name for f in stages.values())
    return Report(title=title or f"Two-stage forecast ({laws})", tables=tables, notes=notes)


#: Student-t degrees of freedom below which the fit report warns: no mean, Cauchy-like.
NU_HEAVY = 1.0


def heavy_tail_note(fit: Any) -> str | None:
    """A note when the fitted Student-t noise has ``nu < 1`` (no mean, Cauchy-like tails).

    Such a fit treats the rows farthest from the law as outliers of an infinite-variance
    noise; its predictive has very narrow 50% and wide 90% intervals (seen on IsoFLOP
    grids, docs/calibration.md).
    """
    post = fit.posterior
    if "nu" not in post:
        return None
    nu = float(post["nu"].median())
    if nu >= NU_HEAVY:
        return None
    return (
        f"The Student-t noise has nu = {nu:.2f} < {NU_HEAVY:g} (posterior median): a core of "
        "rows close to the law and others treated as outliers of a noise without mean or "
        "variance, so forecast intervals are Cauchy-like (narrow at 50%, wide at 90%). "
        "Check the rows farthest from the law; to require a finite noise variance pass "
        "priors={'nu': bs.Prior('TruncatedNormal', mu=2, sigma=20, lower=2)} and "
        "back-test both (docs/calibration.md)."
    )


def _prior_note(spec: Any, p: str) -> str:
    pr = spec.priors[p]
    if pr.dist == "BelowMin":
        b = spec.bounds.get(p, {}).get("*")
        return (f"{p} = bound * sigmoid(z), z ~ Normal(mu, sigma), bound = smallest observed "
                f"response ({b:.4g})" if b is not None else "below the smallest response")
    if pr.dist == "AboveMax":
        b = spec.bounds.get(p, {}).get("*")
        return (f"{p} = bound * (1 + exp(z)), z ~ Normal(mu, sigma), bound = largest observed "
                f"response ({b:.4g})" if b is not None else "above the largest response")
    if pr.dist == "Fixed":  # a fixed coefficient or location is its natural value
        return "fixed"
    if p in spec.law.terms:
        expo, inp = spec.law.terms[p]
        return (f"on log of the term {p} * {inp}^-{expo} at the reference {inp} = "
                f"{np.exp(spec.log_refs[inp]):.3g}")
    if p in spec.law.locations:
        inp = spec.law.locations[p]
        return f"on log({p} / geometric mean of {inp} = {np.exp(spec.log_centres[inp]):.3g})"
    return ""
