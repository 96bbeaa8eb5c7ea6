"""Onsets of emergent abilities and trend direction, derived per posterior draw.

The onset is where the fitted curve has risen by a fraction ``threshold`` of the
way from chance to its ceiling (or where it crosses an ``absolute`` accuracy).
Closed forms (LAWS.md E1), with ``u`` the scale axis (``log10 C``, or ``-L`` on a
loss axis):

* logistic (model A): ``u_on = u0 + logit(q) / k`` (``q = 0.1``: ``u0 - 2.1972 / k``);
* softplus hinge (model B): ``u_on = u_kink + tau * log(expm1(-log(1 - q) / (s * tau)))``.

For an absolute accuracy ``a`` the fraction is ``q = (a - chance) / (top - chance)``
per draw; draws whose ceiling stays below ``a`` never cross (onset ``+inf``).

**Censoring.** When every observed model of a task is still at chance (within
binomial noise), the data only say the onset lies beyond the largest observed
scale; the upper side of the interval then comes from the prior (and, when
pooled, from the other tasks). :func:`onset` flags such tasks in ``censored``
and says so in ``note``; it also flags tasks whose onset lies beyond the largest
model with posterior probability >= 0.5 (a rise has started but its onset point
is not yet pinned down by data).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import xarray as xr

from .data import as_rows, coerced, group_labels, is_count, is_real_number
from .errors import BayescaleError

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit


@dataclass(frozen=True)
class OnsetForm:
    """How to read the onset from a law's parameters."""

    kind: str  # "logistic" or "hinge"
    axis: str  # law input of the scale axis
    log10: bool  # axis is log10 of the input (compute) or the input itself (loss)
    sign: float  # +1: rises with the axis; -1: rises as the axis falls (loss)
    loc: str  # location parameter (midpoint or kink)
    rate: str | None = None  # the rise's rate: "k" (logistic) or "s" (hinge) when None
    width: str = "tau"  # hinge: the kink's softness
    ceiling: str = "ceiling"  # the share of the way from chance to 1 the curve reaches

    def params(self) -> dict[str, str]:
        """The law parameters this form reads, by role (``loc``, ``rate``...)."""
        rate = self.rate or ("k" if self.kind == "logistic" else "s")
        out = {"loc": self.loc, "rate": rate, "ceiling": self.ceiling}
        if self.kind == "hinge":
            out["width"] = self.width
        return out


#: Laws with a closed-form onset. Register more with ``ONSET_FORMS[name] = OnsetForm(...)``,
#: naming the law's parameters (``OnsetForm("logistic", "C", True, 1.0, "mid",
#: rate="slope", ceiling="top")``).
ONSET_FORMS: dict[str, OnsetForm] = {
    "onset_logistic": OnsetForm("logistic", "C", True, 1.0, "x0"),
    "sigmoid_compute": OnsetForm("logistic", "C", True, 1.0, "x0"),
    "onset_hinge": OnsetForm("hinge", "C", True, 1.0, "x_on"),
    "sigmoid_of_loss": OnsetForm("logistic", "L", False, -1.0, "L0"),
    "onset_hinge_loss": OnsetForm("hinge", "L", False, -1.0, "L_on"),
}


def logistic_onset(x0, k, q: float | np.ndarray = 0.1):
    """Onset of the logistic law at fraction ``q`` of the rise: ``x0 + logit(q) / k``.

    Examples
    --------
    LAWS.md section 8: ``x_on(0.1) = x_mid - 2.1972 / k``.

    >>> round(float(logistic_onset(23.0, 2.0, 0.1)), 4)
    21.9014
    """
    q = np.asarray(q, dtype=float)
    with np.errstate(divide="ignore"):
        return x0 + (np.log(q) - np.log1p(-q)) / k


def hinge_onset(x_on, s, tau, q: float | np.ndarray = 0.1):
    """Onset of the softplus hinge at fraction ``q``: solves ``1 - exp(-s tau softplus) = q``.

    Examples
    --------
    A sharp kink (small ``tau``) puts the 10% point just after ``x_on``, at
    ``x_on - log(0.9) / s``:

    >>> round(float(hinge_onset(23.0, 1.0, 0.001, 0.1)), 4)
    23.1054
    """
    q = np.asarray(q, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        v = -np.log1p(-q) / (s * tau)
        # log(expm1(v)) without overflow for large v
        z = np.where(v > 30, v + np.log1p(-np.exp(-np.minimum(v, 700))), np.log(np.expm1(v)))
    return x_on + tau * z


def _form(fit: Fit, caller: str = "onset") -> OnsetForm:
    from .law import Law

    if not isinstance(getattr(fit, "law", None), Law):  # bs.onset(3): an AttributeError
        raise BayescaleError(
            f"{caller}() takes a fit of an onset law (bs.fit(df, 'onset_logistic', ...)); "
            f"got {type(fit).__name__}."
        )
    name = fit.law.name
    if name not in ONSET_FORMS:
        raise BayescaleError(
            f"{caller}() needs a law with a known onset form; law {name!r} is not one of "
            f"{sorted(ONSET_FORMS)}. Fit 'onset_logistic' or 'onset_hinge'."
        )
    form = ONSET_FORMS[name]
    if form.kind not in ("logistic", "hinge"):
        raise BayescaleError(
            f"ONSET_FORMS[{name!r}].kind must be 'logistic' or 'hinge', got {form.kind!r}."
        )
    missing = {role: p for role, p in form.params().items() if p not in fit.law.params}
    if missing:  # a registered form of a user's law named otherwise: KeyError 'k'
        said = ", ".join(f"{role}={p!r}" for role, p in missing.items())
        raise BayescaleError(
            f"ONSET_FORMS[{name!r}] reads parameter(s) {said}, which law {name!r} does "
            f"not have (its parameters: {list(fit.law.params)}). Name them in the form, "
            f"e.g. OnsetForm({form.kind!r}, {form.axis!r}, {form.log10}, {form.sign}, "
            f"{form.loc!r}, rate=..., ceiling=...)."
        )
    return form


def _per_level_inputs(fit: Fit) -> list[str]:
    """The law's inputs besides its axis that the data hold per row (``chance``)."""
    return [inp for inp in fit.law.inputs[1:] if inp in fit.data.columns]


def _levels(fit: Fit, levels: pd.DataFrame | None) -> pd.DataFrame:
    """One row per task/family combination (group columns + chance).

    By default every level of the data, and a level whose rows have several chance
    values (4-way and 2-way questions in one task) once per chance value: an absolute
    onset depends on it.
    """
    groups = list(fit.spec.group_columns)
    data = fit.data
    if levels is not None:
        levels = _rows(levels)
        missing = [g for g in groups if g not in levels.columns]
        if missing:
            raise BayescaleError(
                f"levels= lacks the group column(s) {missing} the fit pools over."
            )
        out = levels[groups + [c for c in levels.columns if c not in groups]].copy()
        for g in groups:
            bad = out[g].isna().to_numpy()
            if bad.any():  # a missing label became a level named 'nan'
                raise BayescaleError(
                    f"levels=: group column {g!r} has a missing label at row "
                    f"{int(np.argmax(bad))}. Give every row a label (a level not in the "
                    "data draws from the fitted population)."
                )
            out[g] = group_labels(out[g])
        return _level_inputs(fit, out.reset_index(drop=True))
    keys = groups + _per_level_inputs(fit)
    first = data.drop_duplicates(keys) if keys else data.iloc[:1]
    return first.drop(columns="y").reset_index(drop=True)


def _members(fit: Fit, lv: pd.DataFrame, j: int) -> np.ndarray:
    """Which data rows are the observed models of level ``lv.iloc[j]``.

    The rows with its group labels (compared column by column); where those rows have
    several chance values, the ones with the level's own.
    """
    data = fit.data
    mask = np.ones(len(data), dtype=bool)
    for g in fit.spec.group_columns:
        mask &= (data[g].astype(str) == str(lv[g].iloc[j])).to_numpy()
    for inp in _per_level_inputs(fit):
        if inp not in lv.columns:
            continue
        same = mask & np.isclose(data[inp].to_numpy(dtype=float), float(lv[inp].iloc[j]),
                                 rtol=1e-12, atol=0.0)
        if same.any():
            mask = same
    return mask


def _identifying(fit: Fit, lv: pd.DataFrame) -> list[str]:
    """The columns that tell the level rows apart: the groups, and chance where needed."""
    groups = list(fit.spec.group_columns)
    if "chance" not in lv.columns or len(lv) <= 1:
        return groups
    if not groups or lv.duplicated(groups).any():
        return groups + ["chance"]
    return groups


def _level_inputs(fit: Fit, out: pd.DataFrame) -> pd.DataFrame:
    """``levels=`` rows with the law's per-level inputs (``chance``) as the data hold them.

    A column of the data (``x={"chance": "baseline"}``) may be given under either name;
    left out, a fitted level takes its training value, and a new level needs it.
    """
    groups = list(fit.spec.group_columns)
    for inp in fit.law.inputs[1:]:  # the first is the axis (C or L)
        col = fit.spec.x.get(inp, inp)
        if not isinstance(col, str) or inp in out.columns:
            continue
        if col in out.columns:
            out = out.rename(columns={col: inp})
            continue
        first = fit.data.drop_duplicates(groups) if groups else fit.data.iloc[:1]
        known = dict(zip(_label(first, groups), first[inp]))
        labels = _label(out, groups) if groups else ["all"] * len(out)
        of_rows = _label(fit.data, groups) if groups else ["all"] * len(fit.data)
        values = pd.Series(fit.data[inp].to_numpy()).groupby(of_rows).nunique()
        several = sorted(lab for lab in set(labels) if values.get(lab, 0) > 1)
        if several:  # which of them: the first row's was taken, by the rows' order
            raise BayescaleError(
                f"levels= has no column {col!r} (input {inp!r} of law {fit.law.name!r}), "
                f"and the data hold several values of it for level(s) {several[:5]}: add "
                f"a {col!r} column to levels= to say which."
            )
        new = sorted({lab for lab in labels if lab not in known})
        if new:
            raise BayescaleError(
                f"levels= has no column {col!r} (input {inp!r} of law {fit.law.name!r}), "
                f"which the fitted levels take from the data but the new level(s) {new[:5]} "
                f"cannot: add a {col!r} column to levels=."
            )
        out[inp] = [known[lab] for lab in labels]
    if "chance" in fit.law.inputs and "chance" in out.columns:
        # as the data's chance column is checked: a NaN gave a NaN onset, unflagged
        chance = coerced(out["chance"])
        bad = ~((chance >= 0) & (chance < 1))
        if bad.any():
            i = int(np.argmax(bad.to_numpy()))
            raise BayescaleError(
                f"levels=: the chance level must be a number in [0, 1); row {i} has "
                f"{out['chance'].iloc[i]!r}."
            )
        out["chance"] = chance.astype(float)
    return out


def _rows(levels: Any) -> pd.DataFrame:
    """``levels=`` as a DataFrame (a dict of columns or a list of rows too, as in predict)."""
    out = as_rows(levels, "levels=")
    if not isinstance(out, pd.DataFrame) or not len(out):
        raise BayescaleError(
            "levels= takes rows of group labels (and chance): a DataFrame or a dict of "
            f"columns such as {{'task': ['a', 'b']}}, got {levels!r}."
        )
    return out


def _label(frame: pd.DataFrame, groups: Sequence[str]) -> list[str]:
    """A label per level: its group labels joined by ``|``.

    Without groups one level is ``"all"``; several (``levels=`` rows of an unpooled fit,
    e.g. two chance levels) are told apart by their ``chance``, else by their position.
    """
    if groups:
        return frame[list(groups)].astype(str).agg("|".join, axis=1).tolist()
    if len(frame) <= 1:
        return ["all"]
    if "chance" in frame.columns and frame["chance"].nunique() == len(frame):
        return [f"chance={float(c):g}" for c in frame["chance"]]
    return [f"level {i}" for i in range(len(frame))]


def _level_names(lv: pd.DataFrame, groups: Sequence[str]) -> list[str]:
    """The levels' coordinate labels, one per level row.

    :func:`_label`, with ``|chance=...`` where the group labels repeat (a task with two
    chance levels), and ``#2``, ``#3``... for labels that still repeat (labels that
    contain ``|`` themselves, rows given twice).
    """
    names = _label(lv, groups)
    if groups and "chance" in lv.columns:
        twice = pd.Series(names).duplicated(keep=False).to_numpy()
        names = [f"{n}|chance={float(c):g}" if t else n
                 for n, c, t in zip(names, lv["chance"], twice)]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if seen[n] == 1 else f"{n}#{seen[n]}")
    return out


def _axis_values(form: OnsetForm, v: np.ndarray) -> np.ndarray:
    """Input value -> the signed axis ``u`` (log10 C, or -L)."""
    v = np.asarray(v, dtype=float)
    return form.sign * (np.log10(v) if form.log10 else v)


def onset_draws(
    fit: Fit,
    threshold: float = 0.1,
    *,
    absolute: float | None = None,
    levels: pd.DataFrame | None = None,
) -> xr.DataArray:
    """Posterior draws of the onset per task/family level, on the axis scale.

    Values are ``log10`` of the onset compute for compute laws, or the onset loss
    for loss-axis laws. Dims ``("sample", "level")``; level labels join the group
    columns with ``"|"`` (``"all"`` without pooling). A draw that never reaches the
    threshold is ``+inf`` on a compute axis and ``-inf`` on a loss axis (the loss would
    have to fall without end); one above it at any scale the opposite.

    Examples
    --------
    >>> d = onset_draws(fit, 0.1)  # doctest: +SKIP
    >>> d.sel(level="arithmetic|OPT").quantile([0.05, 0.5, 0.95])  # doctest: +SKIP
    """
    from .model import param_draws

    form = _form(fit, "onset_draws")

    def fraction(v: Any) -> float:  # a number in (0, 1) ("x" was a raw ValueError)
        try:
            f = float(v)
        except (TypeError, ValueError):
            return np.nan
        return np.nan if isinstance(v, (bool, np.bool_)) else f

    if absolute is None and not (0.0 < fraction(threshold) < 1.0):
        raise BayescaleError(
            f"threshold is a fraction of the rise from chance to ceiling, in (0, 1); got "
            f"{threshold!r}. For an accuracy level use absolute=0.5."
        )
    if absolute is not None and not (0.0 < fraction(absolute) < 1.0):
        raise BayescaleError(f"absolute accuracy must lie in (0, 1), got {absolute!r}.")
    lv = _levels(fit, levels)
    groups = list(fit.spec.group_columns)
    rng = np.random.default_rng(fit.settings.get("random_seed") or 0)
    params = param_draws(fit.spec, fit.posterior, lv, rng=rng)
    s = max(p.shape[0] for p in params.values())
    par = {k: np.broadcast_to(v, (s, len(lv))) for k, v in params.items()}
    if absolute is None:
        q = np.full((s, len(lv)), float(threshold))
    else:
        if "chance" in fit.law.inputs:
            if "chance" in lv.columns:
                chance = lv["chance"].to_numpy(dtype=float)[None, :]
            else:
                chance = np.full((1, len(lv)), float(fit.spec.x["chance"]))
        else:
            chance = np.zeros((1, len(lv)))
        below = float(absolute) <= chance[0]  # chance has shape (1, levels)
        if below.any():
            where = [f"{lab} ({c:g})" for lab, c, b in zip(_level_names(lv, groups), chance[0],
                                                              below)
                     if b]
            of = f"of {', '.join(where)}" if groups else f"({float(chance.max()):g})"
            raise BayescaleError(
                f"absolute={absolute!r} is at or below the chance level {of}: "
                "every model is above it from the start. Choose an accuracy above chance, "
                "pass levels= without those, or use threshold= (a fraction of the rise)."
            )
        top = chance + (1.0 - chance) * par[form.ceiling]
        with np.errstate(divide="ignore", invalid="ignore"):
            q = (float(absolute) - chance) / (top - chance)
    u0 = form.sign * par[form.loc]
    names = form.params()
    if form.kind == "logistic":
        u = logistic_onset(u0, par[names["rate"]], np.clip(q, 1e-300, 1 - 1e-16))
    else:
        u = hinge_onset(u0, par[names["rate"]], par[names["width"]],
                        np.clip(q, 1e-300, 1 - 1e-16))
    u = np.where(q >= 1.0, np.inf, np.where(q <= 0.0, -np.inf, u))
    vals = form.sign * u  # back to log10 C, or to L (sign flips +inf for loss: never)
    return xr.DataArray(
        vals,
        dims=("sample", "level"),
        coords={"level": _level_names(lv, groups)},
        name="log10_C_on" if form.log10 else f"{form.axis}_on",
    )


def _quantiles(v: np.ndarray, prob: float) -> np.ndarray:
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    return np.quantile(v, [0.5, lo, hi], axis=0, method="nearest")


def _near_chance(fit: Fit, sub: pd.DataFrame, near: float) -> np.ndarray:
    chance = (
        sub["chance"].to_numpy(dtype=float)
        if "chance" in sub.columns
        else np.zeros(len(sub))
    )
    n = sub["n"].to_numpy(dtype=float) if "n" in sub.columns else np.full(len(sub), np.inf)
    var = chance * (1 - chance) / n
    if "phi" in fit.posterior:
        # over-dispersion fitted by the beta(-binomial) likelihood
        phi = float(np.median(fit.posterior["phi"].values))
        var = var + chance * (1 - chance) / (phi + 1.0)
    tol = near + 2.5 * np.sqrt(var)
    return (sub["y"].to_numpy(dtype=float) - chance) <= tol


def onset(
    fit: Fit,
    threshold: float = 0.1,
    *,
    absolute: float | None = None,
    prob: float = 0.9,
    near_chance: float = 0.02,
    levels: pd.DataFrame | None = None,
    return_draws: bool = False,
) -> pd.DataFrame | tuple[pd.DataFrame, xr.DataArray]:
    """Posterior of the onset compute (or loss) per task/family level.

    Parameters
    ----------
    fit : Fit
        A fit of an onset law (``onset_logistic``, ``onset_hinge``,
        ``sigmoid_compute``, ``sigmoid_of_loss``, ``onset_hinge_loss``), pooled or not.
    threshold : float
        Fraction of the rise from chance to ceiling that defines the onset (0.1).
    absolute : float, optional
        Instead, the accuracy the curve must reach (e.g. 0.5).
    prob : float
        Central credible interval probability.
    near_chance : float
        A model counts as "at chance" when its accuracy is at most
        ``near_chance + 2.5 * SD`` above chance, where SD is the sampling SD at chance
        (binomial with the row's ``n``, plus the fitted beta over-dispersion ``phi``
        when the likelihood has one). A level is ``censored`` (onset not observed)
        when all its models are at chance, or when the onset lies beyond its largest
        model with posterior probability >= 0.5.
    levels : DataFrame, optional
        Group labels (and ``chance``) to report, including tasks not in the fit
        (they draw from the population). Default: every level in the data.
    return_draws : bool
        Also return the draws (:func:`onset_draws`).

    Returns
    -------
    DataFrame
        One row per level: the group columns, ``chance``, ``n_models``,
        ``max_observed`` (largest observed ``log10 C`` or smallest loss), the onset
        median and interval (``log10_C_on``, ``log10_C_on_lower``,
        ``log10_C_on_upper`` and ``C_on...`` in FLOPs; ``L_on...`` on a loss axis),
        ``prob_beyond_data`` (posterior probability that the onset lies beyond the
        observed range), ``censored`` and ``note``.

    Examples
    --------
    >>> f = bs.fit(df, "onset_logistic", pooled={"x0": "task"})  # doctest: +SKIP
    >>> f.onset(threshold=0.1)[["task", "log10_C_on", "censored"]]  # doctest: +SKIP
    """
    from .fit import _check_prob

    prob = _check_prob(prob)
    if not is_real_number(near_chance) or not 0 <= near_chance < 1:
        # 2 called every level censored "at chance"; "x" was numpy's UFuncTypeError
        raise BayescaleError(
            f"near_chance is an accuracy margin above chance in [0, 1), e.g. 0.02; got "
            f"{near_chance!r}."
        )
    form = _form(fit)
    draws = onset_draws(fit, threshold, absolute=absolute, levels=levels)
    lv = _levels(fit, levels)
    groups = list(fit.spec.group_columns)
    data = fit.data
    q = _quantiles(draws.values, prob)
    rows = []
    for j in range(len(lv)):
        sub = data[_members(fit, lv, j)]
        row: dict[str, Any] = {g: lv[g].iloc[j] for g in groups}
        if "chance" in lv.columns:
            row["chance"] = float(lv["chance"].iloc[j])
        row["n_models"] = len(sub)
        d = draws.values[:, j]
        if form.log10:
            row["max_observed"] = float(np.log10(sub[form.axis].max())) if len(sub) else np.nan
            row["log10_C_on"], row["log10_C_on_lower"], row["log10_C_on_upper"] = q[:, j]
            row["C_on"], row["C_on_lower"], row["C_on_upper"] = 10.0 ** q[:, j]
            beyond = d > row["max_observed"]
        else:
            row["max_observed"] = float(sub[form.axis].min()) if len(sub) else np.nan
            row["L_on"], row["L_on_lower"], row["L_on_upper"] = q[:, j]
            beyond = d < row["max_observed"]
        row["prob_beyond_data"] = float(np.mean(beyond)) if len(sub) else np.nan
        at_chance = bool(len(sub)) and bool(_near_chance(fit, sub, near_chance).all())
        late = bool(len(sub)) and row["prob_beyond_data"] >= 0.5
        row["censored"] = at_chance or late
        where = (
            f"log10 C = {row['max_observed']:.2f}"
            if form.log10
            else f"{form.axis} = {row['max_observed']:.3g}"
        )
        prior = "the upper side of the interval reflects the prior" + (
            " and the other pooled levels" if groups else ""
        )
        never = bool(np.isinf(d).all())  # no draw's curve ever reaches the level
        if never:
            row["note"] = (
                "no posterior draw reaches this level at any scale: every draw's ceiling "
                "stays below it (onset infinite)"
                + ("; level not in the data, drawn from the fitted population of levels"
                   if not len(sub) else "")
            )
        elif not len(sub):
            row["note"] = "level not in the data: onset drawn from the fitted population of levels"
        elif at_chance and late:
            row["note"] = (
                f"onset not yet observed: all {len(sub)} models at chance up to {where}; {prior}"
            )
        elif at_chance:  # the curve's onset sits inside the data, its rise undetectable
            row["note"] = (
                f"onset not observed: all {len(sub)} models at chance up to {where}, though "
                f"the fitted curve reaches the threshold inside the data (P beyond = "
                f"{row['prob_beyond_data']:.2f}): its rise there is below what the models' "
                "sampling noise can show, so the interval comes from the curve's shape (its "
                "ceiling and slope" + (", pooled with the other levels" if groups else "")
                + "), not from an observed rise"
            )
        elif late:
            row["note"] = (
                f"onset probably beyond the largest model ({where}; P = "
                f"{row['prob_beyond_data']:.2f}); {prior}"
            )
        else:
            row["note"] = ""
        rows.append(row)
    table = pd.DataFrame(rows)
    return (table, draws) if return_draws else table


def prob_emerged(
    fit: Fit,
    C: float | Sequence[float] | None = None,
    *,
    L: float | Sequence[float] | None = None,
    threshold: float = 0.1,
    absolute: float | None = None,
    levels: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Posterior probability that the onset has happened by compute ``C`` (or loss ``L``).

    ``C`` (or ``L``) is one value or several. Returns one row per level and value with
    the group columns, ``C`` (or ``L``) and ``prob_emerged``.

    Examples
    --------
    >>> prob_emerged(fit, C=[1e23, 1e24, 1e25])  # doctest: +SKIP
    """
    form = _form(fit, "prob_emerged")
    name, given = ("C", C) if form.log10 else ("L", L)
    if given is None and not form.log10:
        raise BayescaleError("This fit is on a loss axis: pass prob_emerged(fit, L=...).")
    try:  # text or True are not compute ("abc": a raw ValueError; True: 1 FLOP)
        values = np.atleast_1d(np.asarray(
            np.nan if given is None or isinstance(given, (bool, np.bool_)) else given,
            dtype=float))
    except (TypeError, ValueError, OverflowError):
        values = np.array([np.nan])
    if not np.isfinite(values).all() or (form.log10 and (values <= 0).any()):
        what = "positive compute C=" if form.log10 else "finite losses L="
        raise BayescaleError(f"prob_emerged needs {what}, got {given!r}.")
    if values.ndim != 1 or not len(values):
        raise BayescaleError(f"prob_emerged takes one value or a list for {name}=, got {given!r}.")
    draws = onset_draws(fit, threshold, absolute=absolute, levels=levels).values
    lv = _levels(fit, levels)
    base = lv[_identifying(fit, lv)].reset_index(drop=True)  # what tells the rows apart
    if "chance" in base.columns:
        base["chance"] = base["chance"].astype(float)
    tables = []
    for v in values:
        # emerged by compute C: onset at or below log10 C; on a loss axis, at or above L
        p = (draws <= np.log10(v)).mean(axis=0) if form.log10 else (draws >= v).mean(axis=0)
        tables.append(base.assign(**{name: float(v)}, prob_emerged=p))
    return pd.concat(tables, ignore_index=True)


def prob_inverse(
    fit: Fit,
    *,
    C: tuple[float, float] | None = None,
    min_change: float = 0.01,
    grid: int = 101,
    levels: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Posterior probability of inverse and U-shaped scaling per task/family level.

    Evaluates the mean curve of every posterior draw on a grid over the observed
    compute range of each level (or ``C=(low, high)``). Works for any fit whose
    law has a compute input ``C``; most useful with ``u_shaped``.

    Returns
    -------
    DataFrame
        Group columns, ``C_low``, ``C_high``, ``prob_inverse`` (accuracy at the high
        end below the low end by more than ``min_change``), ``prob_u_shaped``
        (an interior minimum more than ``min_change`` below both ends) and
        ``turning_point`` (median ``log10 C`` of that minimum among U-shaped draws).

    Examples
    --------
    >>> f = bs.fit(df, "u_shaped", pooled={"x0": "task", "b": "task"})  # doctest: +SKIP
    >>> prob_inverse(f)  # doctest: +SKIP
    """
    law = fit.law
    if "C" not in law.inputs:
        raise BayescaleError(
            f"prob_inverse needs a law of compute C; law {law.name!r} has inputs "
            f"{list(law.inputs)}."
        )
    if C is not None:
        try:
            lo_hi = np.asarray(C, dtype=float)
        except (TypeError, ValueError):
            lo_hi = np.array([np.nan])
        if lo_hi.shape != (2,) or not (np.isfinite(lo_hi).all() and 0 < lo_hi[0] < lo_hi[1]):
            raise BayescaleError(
                f"prob_inverse takes C=(low, high), two compute values with 0 < low < high "
                f"(e.g. C=(1e20, 1e24)), got C={C!r}."
            )
    if not is_count(grid, 2):
        raise BayescaleError(f"grid must be an integer of at least 2 points, got {grid!r}.")
    if not is_real_number(min_change) or not min_change >= 0:
        # -1 called a rising curve certainly inverse; NaN: never; "x": numpy's UFuncTypeError
        raise BayescaleError(
            f"min_change is the accuracy drop that counts as inverse scaling, a number of "
            f"at least 0 (e.g. 0.01); got {min_change!r}."
        )
    groups = list(fit.spec.group_columns)
    lv = _levels(fit, levels)
    data = fit.data
    shown = _identifying(fit, lv)  # what tells the rows apart
    rows = []
    for j in range(len(lv)):
        sub = data[_members(fit, lv, j)]
        if C is not None:
            lo, hi = float(lo_hi[0]), float(lo_hi[1])
        elif len(sub):
            lo, hi = float(sub["C"].min()), float(sub["C"].max())
        else:
            lo, hi = float(data["C"].min()), float(data["C"].max())
        xs = np.linspace(np.log10(lo), np.log10(hi), grid)
        new = pd.DataFrame({fit.spec.x.get("C", "C"): 10.0**xs})
        for inp, col in fit.spec.x.items():
            if inp != "C" and isinstance(col, str):
                new[col] = lv[inp].iloc[j] if inp in lv.columns else sub[inp].iloc[0]
        for g in groups:
            new[g] = lv[g].iloc[j]
        # the shape of the law itself: no extrapolation drift (it is shared along the grid)
        mu = fit.draws(new, kind="mean", extrapolation=False).values  # (samples, grid)
        start, end = mu[:, 0], mu[:, -1]
        imin = mu.argmin(axis=1)
        low = mu.min(axis=1)
        u = (imin > 0) & (imin < grid - 1) & (start - low > min_change) & (end - low > min_change)
        row: dict[str, Any] = {g: lv[g].iloc[j] for g in groups}
        if "chance" in shown:
            row["chance"] = float(lv["chance"].iloc[j])
        row.update(
            C_low=lo,
            C_high=hi,
            prob_inverse=float(np.mean(start - end > min_change)),
            prob_u_shaped=float(np.mean(u)),
            turning_point=float(np.median(xs[imin[u]])) if u.any() else np.nan,
        )
        rows.append(row)
    return pd.DataFrame(rows)
