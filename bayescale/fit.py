"""``fit()`` and the :class:`Fit` result: summaries, predictions, save/load.

A :class:`Fit` is immutable: it holds the model spec, the validated training
data, the InferenceData and the sampler settings. The PyMC model is rebuilt on
demand (``fit.model``); ``fit.idata`` is the escape hatch to ArviZ.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from . import data as _data
from .compiled import COMPILED_SAMPLERS, choose_sampler, sample_compiled
from .errors import (
    BayescaleError,
    DataError,
    DataWarning,
    ExtrapolationWarning,
    LawError,
    PoolingWarning,
    did_you_mean,
)
from .errors import warn as _warn
from .law import Law, get_law
from .likelihoods import get_likelihood
from .model import (
    ModelSpec,
    build_model,
    make_spec,
    normalise_pooled,
    param_draws,
    run_offsets,
)
from .pooling import check_group_sizes
from .priors import as_prior
from .sampling import (
    SAMPLERS,
    check_seed,
    check_settings,
    problems_text,
    rhat_text,
    sample,
    sample_stepping_down,
    seed_or_chosen,
    tree_depth_option,
    warn_problems,
)

_log = logging.getLogger("bayescale")

#: Every ``sampler=`` value accepted by :func:`fit`.
ALL_SAMPLERS = ("auto", *COMPILED_SAMPLERS, *(s for s in SAMPLERS if s != "nutpie"))

KINDS = ("predictive", "mean")
#: A target this many times the largest fitted scale is warned about (units, most likely).
FAR_BEYOND = 1e6


def _check_prob(prob: float) -> float:
    if not _data.is_real_number(prob):  # None, "0.9", [0.9]: float() raised a TypeError
        several = " For several levels call it once per level." if isinstance(
            prob, (list, tuple, np.ndarray)) else ""
        raise BayescaleError(
            f"prob must be one number between 0 and 1 (e.g. 0.9), got {prob!r}.{several}"
        )
    if not (0.0 < float(prob) < 1.0):
        percent = (f" For a {prob:g}% interval pass prob={float(prob) / 100:g} (a fraction, "
                   "not a percentage)." if 1.0 < float(prob) < 100.0 else "")
        raise BayescaleError(f"prob must be between 0 and 1 (e.g. 0.9), got {prob!r}.{percent}")
    return float(prob)


def size_inputs(law: Law) -> tuple[str, ...]:
    """The inputs :func:`scale_of` makes the size of: ``C``, else ``N`` and ``D``, else the first.

    Examples
    --------
    >>> import bayescale as bs
    >>> size_inputs(bs.get_law("chinchilla")), size_inputs(bs.get_law("sigmoid_compute"))
    (('N', 'D'), ('C',))
    """
    if "C" in law.inputs:
        return ("C",)
    if "N" in law.inputs and "D" in law.inputs:
        return ("N", "D")
    return (law.inputs[0],)


def scale_of(law: Law, frame: pd.DataFrame) -> np.ndarray:
    """The 'size' of each row used for extrapolation ratios: C, else 6ND, else the input."""
    inputs = size_inputs(law)
    if len(inputs) == 2:
        return 6.0 * frame["N"].to_numpy(dtype=float) * frame["D"].to_numpy(dtype=float)
    return frame[inputs[0]].to_numpy(dtype=float)


def size_of(law: Law, frame: pd.DataFrame) -> np.ndarray:
    """Each row's size for extrapolation: :func:`scale_of`, inverted for a falling input.

    A law of a loss (``sigmoid_of_loss``: accuracy against loss) forecasts larger models
    at *lower* loss, so its size is ``1 / L`` and a target's extrapolation ratio is the
    smallest fitted loss over the target's loss.

    Examples
    --------
    >>> import pandas as pd, bayescale as bs
    >>> size_of(bs.get_law("sigmoid_of_loss"), pd.DataFrame({"L": [2.0, 4.0]}))
    array([0.5 , 0.25])
    """
    s = scale_of(law, frame)
    return 1.0 / s if size_input(law) in law.falling_inputs else s


def size_input(law: Law) -> str:
    """The input whose direction the size follows (:func:`size_of`).

    ``C``, else the first input (``N`` of a law of ``N`` and ``D``, whose size ``6 N D``
    rises with it).
    """
    return "C" if "C" in law.inputs else law.inputs[0]


def pooled_text(pooled: Mapping[str, Sequence[str]]) -> str:
    """Pooling in a few words: parameters grouped by the columns they pool over.

    Examples
    --------
    >>> pooled_text({"E": ("family",), "A": ("family",), "alpha": ("task", "family")})
    'E,A over family; alpha over task+family'
    """
    by: dict[tuple[str, ...], list[str]] = {}
    for param, cols in pooled.items():
        by.setdefault(tuple(cols), []).append(param)
    return "; ".join(f"{','.join(ps)} over {'+'.join(c)}" for c, ps in by.items())


#: likelihoods whose predictive, taken back from the log scale, has no mean: ``exp`` of a
#: Student-t variable has infinite expectation for every ``nu``, so the mean of its draws
#: is whatever the few largest draws make it (on a real ladder 26.8 for a loss whose 90%
#: interval was 2.83-3.25)
NO_MEAN_ON_LOG = frozenset({"studentt", "ar1"})


def has_predictive_mean(fit: Fit) -> bool:
    """Whether ``fit``'s predictive distribution has a (finite) mean.

    Not for a law fitted on the log scale with Student-t noise (``"studentt"``, ``"ar1"``):
    its ``predict`` table reports ``mean`` as NaN and the ``median`` is the point forecast.
    """
    return not (fit.law.link == "log" and fit.spec.likelihood in NO_MEAN_ON_LOG)


def summarise_draws(fit: Fit, new: Any, d: np.ndarray, prob: float,
                    ratio: np.ndarray | None = None, *, mean: bool = True) -> pd.DataFrame:
    """The ``predict`` table: ``new``'s columns + mean, median, lower, upper, extrapolation.

    ``d`` holds draws ``(samples, rows)`` for the rows of ``new`` (``None``: the
    training rows of ``fit``); ``fit`` supplies the extrapolation ratio unless ``ratio``
    (:meth:`Fit.extrapolation_ratio` of ``new``) is given. ``mean=False``: the draws'
    distribution has no mean (:func:`has_predictive_mean`), and the column is NaN.
    """
    q = np.quantile(d, [0.5, (1 - prob) / 2, (1 + prob) / 2], axis=0)
    out = fit.user_rows(new)
    out["mean"] = d.mean(axis=0) if mean else np.nan
    out["median"] = q[0]
    out["lower"] = q[1]
    out["upper"] = q[2]
    out["extrapolation"] = fit.extrapolation_ratio(new) if ratio is None else ratio
    return out


def n_samples(posterior: Any, params: Mapping[str, np.ndarray] | None = None) -> int:
    """The number of posterior samples, chains times draws (1 for an empty posterior).

    With ``params`` (:func:`bayescale.model.param_draws`), the most of either: a fit with
    every law parameter fixed has one value of each, and still every sample of its noise.

    Examples
    --------
    >>> import xarray as xr
    >>> n_samples(xr.Dataset({"E": (("chain", "draw"), np.zeros((4, 250)))}))
    1000
    """
    sizes = getattr(posterior, "sizes", {})
    n = int(sizes.get("chain", 1) * sizes.get("draw", 1))
    return max([n] + [p.shape[0] for p in (params or {}).values()])


def data_hash(frame: pd.DataFrame) -> str:
    """Short sha256 of the training data (for reports)."""
    h = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class Fit:
    """Result of :func:`fit`: posterior of a law on data, with predictions.

    Attributes
    ----------
    spec : ModelSpec
        Law, priors, pooling and likelihood.
    data : pandas.DataFrame
        Validated training data (canonical column names, ``y`` the response).
    idata : arviz.InferenceData
        Posterior, sample stats, log-likelihood, observed data.
    settings : dict
        Sampler settings (sampler, draws, tune, chains, random_seed, ...).
    diagnostics : dict
        Divergences, max r_hat, min ESS and a list of ``problems``.
    """

    spec: ModelSpec
    data: pd.DataFrame
    idata: Any
    settings: Mapping[str, Any]
    diagnostics: Mapping[str, Any]
    extras: Mapping[str, Any] = field(default_factory=dict)

    def __getstate__(self) -> dict[str, Any]:
        # The cached pm.Model is not picklable; it is rebuilt on demand.
        state = dict(self.__dict__)
        state.pop("model", None)
        state.pop("_lfo_refits", None)  # leave-future-out refits kept in this process
        return state

    # ------------------------------------------------------------------ basics
    @property
    def law(self) -> Law:
        """The fitted law."""
        return self.spec.law

    @cached_property
    def model(self):
        """The ``pm.Model`` (rebuilt from the spec and data)."""
        return build_model(self.spec, self.data)

    @property
    def posterior(self):
        """The posterior group (xarray Dataset)."""
        return self.idata.posterior

    @property
    def var_names(self) -> list[str]:
        """Population-level law parameters and noise parameters."""
        names = [p for p in self.law.params if self.spec.priors[p].dist != "Fixed"]
        names += [p for p in self.spec.noise_params if self.spec.priors[p].dist != "Fixed"]
        if self.spec.run:
            names.append("sigma_run")
        return names

    @property
    def ok(self) -> bool:
        """True when sampling reported no problem."""
        return not self.diagnostics["problems"]

    def __repr__(self) -> str:
        d = self.diagnostics
        status = "ok" if self.ok else "PROBLEMS: " + problems_text(d["problems"])
        pooled = f" pooled={pooled_text(self.spec.pooled)!r}" if self.spec.pooled else ""
        return (
            f"<bayescale.Fit law={self.law.name!r} likelihood={self.spec.likelihood!r} "
            f"rows={len(self.data)}{pooled} "
            f"chains={d['chains']} draws={d['draws']} divergences={d['divergences']} "
            f"max_rhat={rhat_text(d['max_rhat'])} min_ess_bulk={d['min_ess_bulk']:.0f} [{status}]>"
        )

    def _repr_html_(self) -> str:
        """A notebook's view: what was fitted, how sampling went, the posterior table."""
        import html

        d, law = self.diagnostics, self.law
        facts = [
            ("law", f"{law.name}: {law.equation}"),
            ("likelihood", self.spec.likelihood),
            ("rows", len(self.data)),
            *([("pooled", pooled_text(self.spec.pooled))] if self.spec.pooled else []),
            *([("run offsets", self.spec.run)] if self.spec.run else []),
            ("sampler", f"{self.settings.get('sampler')}, {d['chains']} chains x "
                        f"{d['draws']} draws"),
            ("divergences", d["divergences"]),
            ("max r_hat", rhat_text(d["max_rhat"])),
            ("min ESS (bulk)", f"{d['min_ess_bulk']:.0f}"),
        ]
        rows = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                       f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
                       for k, v in facts)
        if self.ok:
            status = "<p>Sampling: no problems found.</p>"
        else:
            items = "".join(f"<li>{html.escape(p)}</li>" for p in d["problems"])
            status = (f"<p style='color:#b00020'><b>Sampling problems</b> (the intervals may "
                      f"not be trustworthy):</p><ul style='color:#b00020'>{items}</ul>")
        return (f"<div><p><b>bayescale.Fit</b></p><table>{rows}</table>{status}"
                f"<p>Posterior (90% HDI):</p>{self.summary().to_html()}</div>")

    def summary(self, prob: float = 0.9, var_names: Sequence[str] | None = None) -> pd.DataFrame:
        """Posterior table: mean, sd, HDI bounds, ESS and r_hat per parameter.

        Pooled parameters are summarised at the population level; see
        ``group_effects`` for the groups. Values are not rounded (ArviZ's default rounding
        wrote a noise scale of 4e-4 as 0.0, and an r_hat of 1.012, flagged, as 1.01).
        """
        import arviz as az

        prob = _check_prob(prob)
        names = list(var_names or self.var_names)
        have = list(self.posterior.data_vars)
        missing = [v for v in names if str(v).lstrip("~") not in have]  # "~x": all but x
        if missing:  # ArviZ's bare KeyError otherwise
            hints = "".join(did_you_mean(v, have) for v in missing)
            raise BayescaleError(
                f"var_names {missing} are not in the posterior.{hints} Its variables: {have}."
            )
        return az.summary(self.idata, var_names=names, hdi_prob=prob, round_to="none")

    def group_effects(self, prob: float = 0.9) -> pd.DataFrame:
        """Per-group posteriors of the pooled parameters, with population and scale.

        One row per pooled parameter, grouping column and level (``kind="level"``),
        plus the population value (``level="(population)"``) and the scale of the
        group offsets on the unconstrained scale (``level="(sd)"``). Columns:
        ``param, group, level, kind, mean, median, lower, upper``.
        See :func:`bayescale.pooling.group_effects`.

        Examples
        --------
        >>> fit = bs.fit(df, "power_law", x={"x": "N"}, pooled="family")  # doctest: +SKIP
        >>> fit.group_effects(prob=0.9)  # doctest: +SKIP
        """
        from .pooling import group_effects

        return group_effects(self, prob=_check_prob(prob))

    def loo(self, **kwargs: Any):
        """PSIS-LOO of the fit (``arviz.loo``)."""
        import arviz as az

        return az.loo(self.idata, **kwargs)

    # --------------------------------------------------------------- prediction
    def _frame(self, new: pd.DataFrame | Mapping[str, Any] | None) -> pd.DataFrame:
        if new is None:
            return self.data.drop(columns="y")
        new = _data.as_rows(new)
        if not isinstance(new, pd.DataFrame):
            raise DataError(
                f"New rows must be a DataFrame, a dict of columns or a list of row dicts, e.g. "
                f"{{{', '.join(f'{inp!r}: [...]' for inp in self.law.inputs)}}}; got "
                f"{type(new).__name__}."
            )
        renamed = self._input_names_to_columns(new)
        _data.check_groups_present(self.spec.group_columns, renamed)
        run = self.spec.run if self.spec.run and self.spec.run in renamed.columns else None
        try:
            frame = _data.validate(renamed, self.law, y=None, x=self.spec.x,
                                   groups=list(self.spec.group_columns), run=run,
                                   require_y=False)
        except DataError as err:  # name the columns as the new rows do ('N', not 'params')
            msg = str(err)
            for col in set(renamed.columns) - set(new.columns):
                inp = next(i for i, c in _data.input_columns(self.law, self.spec.x).items()
                           if c == col)
                law = f"(input {inp!r} of law {self.law.name!r}"
                msg = msg.replace(f"Column {col!r} {law}",
                                  f"Column {inp!r} {law}, fitted on column {col!r}")
            raise type(err)(msg) from None
        new = renamed
        n_col = self.spec.trials
        if n_col and n_col in new.columns:
            # as the training rows' (500.5 was rounded, True read as 1 trial, 1e12 taken)
            try:
                n = _data.check_trials(new, n_col).to_numpy(dtype=float)
            except DataError as err:
                raise DataError(f"New rows: {err} (Or drop the column to use the training "
                                "rows' mean.)") from None
            frame["n"] = np.rint(n)
        return frame

    def _input_names_to_columns(self, new: pd.DataFrame) -> pd.DataFrame:
        """Accept new rows by the law's input names too (``N`` for a fit on ``params``).

        A fit made with ``x={"N": "params"}`` reads the new rows' ``params``; a frame
        with an ``N`` column and no ``params`` means the same input. A missing input
        gets an error naming both.
        """
        names = {}
        for inp, col in _data.input_columns(self.law, self.spec.x).items():
            if (isinstance(col, str) and col != inp and {col, inp} <= set(new.columns)
                    and not new[col].equals(new[inp])):
                raise DataError(
                    f"The new rows have both column {col!r} (the fit's column of input "
                    f"{inp!r}) and column {inp!r}, with different values: keep one."
                )
            if not isinstance(col, str) or col in new.columns:
                continue
            if inp in new.columns:
                names[inp] = col
            elif not (col == "C" and {"N", "D"} <= set(new.columns)):  # C = 6 N D
                either = f"{col!r} or {inp!r}" if col != inp else repr(col)
                budget = (
                    " For the loss at the best split of a compute budget, use "
                    "fit.compute_optimal(C=[...])."
                    if "C" in new.columns and {"N", "D"} <= set(self.law.inputs)
                    else _data.missing_hint(col, new, rename=True)
                )
                raise DataError(
                    f"The new rows need column {either} (input {inp!r} of law "
                    f"{self.law.name!r}, fitted on column {col!r}); available columns: "
                    f"{list(new.columns)}.{budget}"
                )
        return new.rename(columns=names) if names else new

    def _rng(self, random_seed: int | None, stream: int = 0) -> np.random.Generator:
        """The generator of this fit's forecasts for ``random_seed`` (default: the fit's).

        ``stream`` > 0 gives another, independent one for the same seed (stage 2 of a
        chain, whose stage 1 may share the seed).
        """
        check_seed(random_seed)
        seed = self.settings.get("random_seed") if random_seed is None else random_seed
        if seed is None:
            return np.random.default_rng()
        return np.random.default_rng([int(seed), 7919, *([int(stream)] if stream else [])])

    def mean_draws(
        self, new: pd.DataFrame | None = None, *, random_seed: int | None = None
    ) -> np.ndarray:
        """Law mean per posterior draw and row, shape ``(samples, rows)``."""
        frame = self._frame(new)
        rng = self._rng(random_seed)
        params = param_draws(self.spec, self.posterior, frame, rng=rng)
        args = [frame[i].to_numpy(dtype=float)[None, :] for i in self.law.inputs]
        mu = self.law(*args, **params)
        return np.broadcast_to(mu, (n_samples(self.posterior, params), len(frame)))

    def draws(
        self,
        new: pd.DataFrame | Mapping[str, Any] | None = None,
        *,
        kind: str = "predictive",
        random_seed: int | None = None,
        extrapolation: bool | str = "auto",
        shared_noise: bool = False,
    ) -> xr.DataArray:
        """Posterior draws of the response at ``new`` rows.

        ``kind="predictive"`` includes observation noise (and a fresh run offset for
        runs not seen in training); ``kind="mean"`` is the law's mean curve without
        observation noise (beyond the data still with the extrapolation drift, which is
        uncertainty about the curve itself; ``extrapolation=False`` leaves it out).
        ``extrapolation`` adds the calibrated discrepancy that grows with the distance
        beyond the fitted range (``"auto"``: on for loss laws, on the log scale, and for
        accuracy laws, on the logit scale; see :mod:`bayescale.calibration`).
        ``shared_noise=True`` draws one observation-noise quantile per sample for all rows
        (common random numbers): each row's distribution is unchanged, the rows' noise is
        perfectly correlated, so intervals along a curve come without Monte Carlo jitter
        (what :func:`bayescale.plots.plot_fit` uses; the ``ar1`` likelihood, whose noise
        is correlated along a run already, and user likelihoods without ``draw_shared``
        draw as usual). Returns a DataArray with dims ``("sample", "row")``.
        """
        if kind not in KINDS:
            raise BayescaleError(f"kind must be one of {KINDS}, got {kind!r}.")
        if not isinstance(shared_noise, (bool, np.bool_)):
            raise BayescaleError(f"shared_noise must be True or False, got {shared_noise!r}.")
        frame = self._frame(new)
        rng = self._rng(random_seed)
        params = param_draws(self.spec, self.posterior, frame, rng=rng)
        args = [frame[i].to_numpy(dtype=float)[None, :] for i in self.law.inputs]
        mu = np.asarray(self.law(*args, **params), dtype=float)
        # every posterior sample, also where each law parameter is fixed (one value): the
        # noise's draws still vary (a fit of a known curve gave one sample, or a crash)
        mu = np.broadcast_to(mu, (n_samples(self.posterior, params), len(frame)))
        if self.law.link == "log":
            self._check_positive(mu, frame)
        if kind == "mean":
            # the observations' mean: an accuracy law's value clipped to [0, 1] as its
            # likelihood clips it (exp_error_of_loss gave accuracies of 7 at a low loss)
            out = np.clip(mu, 0.0, 1.0) if get_likelihood(self.spec.likelihood).probability \
                else mu
        else:
            out = self._predictive(mu, frame, rng, shared=shared_noise)
        if self._use_extrapolation(extrapolation):
            from .calibration import add_drift

            out = add_drift(self, frame, out, rng)
        return xr.DataArray(
            out, dims=("sample", "row"), coords={"row": np.asarray(frame.index)}, name=self.spec.y
        )

    def _check_positive(self, mu: np.ndarray, frame: pd.DataFrame) -> None:
        """Raise when a log-link law's mean is not positive (or NaN) at ``frame``'s rows.

        Its log is undefined there: the rows' forecasts were all NaN, unsaid.
        """
        with np.errstate(invalid="ignore"):
            bad = ~(np.isfinite(mu) & (mu > 0))
        rows = np.flatnonzero(bad.any(axis=0))
        if not len(rows):
            return
        shown = "; ".join(
            f"row {frame.index[i]!r} ("
            + ", ".join(f"{inp}={frame[inp].iloc[i]:.4g}" for inp in self.law.inputs)
            + f"): {bad[:, i].mean():.0%} of the draws" for i in rows[:3])
        raise BayescaleError(
            f"Law {self.law.name!r} models log {self.spec.y}, but its mean is not positive "
            f"(or not a number) at {len(rows)} row(s) of the new data: {shown}. The law "
            "leaves its domain there (often far beyond the data); forecast nearer the data, "
            "or use a law that stays positive."
        )

    def _noise(self) -> dict[str, np.ndarray]:
        post = self.posterior
        return {k: post[k].values.reshape(-1)[:, None] for k in self.spec.noise_params}

    def _predictive(self, mu: np.ndarray, frame: pd.DataFrame, rng, *,
                    shared: bool = False, idx: np.ndarray | None = None,
                    data: Mapping[str, Any] | None = None) -> np.ndarray:
        """Likelihood draws around the law's values ``mu`` (run offsets included).

        ``idx``: the posterior draws ``mu`` was computed with (a chain's stage 2 pairs a
        subset); ``data``: what the likelihood's ``draw`` gets, else :meth:`_lik_data`.
        """
        lik = get_likelihood(self.spec.likelihood)
        eta = self._eta(mu, frame, rng, shared=shared, idx=idx)
        draw = lik.draw_shared if shared and lik.draw_shared is not None else lik.draw
        noise = self._noise()
        if idx is not None:
            noise = {k: v[idx] for k, v in noise.items()}
        y = draw(eta, noise, rng, self._lik_data(frame) if data is None else data)
        # heavy tails from a stuck chain (tiny nu) must not turn quantiles into NaN; the
        # fit's diagnostics already flag such a posterior
        return np.exp(np.minimum(y, 700.0)) if self.law.link == "log" else y

    def _eta(self, mu: np.ndarray, frame: pd.DataFrame, rng, *,
             shared: bool = False, idx: np.ndarray | None = None) -> np.ndarray:
        """Link-scale mean of ``frame``'s rows plus their run offsets (fresh for new runs)."""
        eta = np.log(mu) if self.law.link == "log" else np.array(mu, dtype=float)
        off = run_offsets(self.spec, self.posterior, frame, rng, shared=shared)
        if off is not None and idx is not None:
            off = off[idx]
        return eta if off is None else eta + off

    def _lik_data(self, frame: pd.DataFrame) -> dict[str, Any]:
        """What a likelihood's ``draw`` may use besides the draws: rows, training data, fit."""
        from .autocorr import fitted_residuals

        return {
            "frame": frame,
            "train": self.data,
            "spec": self.spec,
            "train_resid": lambda: fitted_residuals(self),
        }

    def _use_extrapolation(self, extrapolation: bool | str) -> bool:
        from .calibration import check_in_decades, drift_scale, in_decades

        if extrapolation == "auto":  # off where a drift has no scale or no decades
            return drift_scale(self.law) is not None and in_decades(self.law)
        if extrapolation not in (True, False):
            hint = {"off": " False turns the drift off.", "on": " True turns it on.",
                    "none": " False turns the drift off."}.get(str(extrapolation).lower(), "")
            raise BayescaleError(
                f"extrapolation must be 'auto', True or False, got {extrapolation!r}.{hint}"
            )
        if extrapolation:
            check_in_decades(self.law)
        return bool(extrapolation)

    @property
    def scale_max(self) -> float:
        """Largest fitted scale (C, else 6ND, else the input)."""
        return float(scale_of(self.law, self.data).max())

    @cached_property
    def calibration(self):
        """Discrepancy-growth calibration (nested leave-future-out), computed once.

        See :mod:`bayescale.calibration`; use :meth:`calibrate` for other settings.
        """
        from .calibration import Calibration, calibrate

        if "calibration" in self.extras:
            return Calibration.from_dict(self.extras["calibration"])
        _log.info(
            "Calibrating the extrapolation drift of %r by nested leave-future-out "
            "(refits on the smaller runs; once per fit, saved by fit.save; "
            "extrapolation=False skips it) ...", self.law.name
        )
        return calibrate(self)

    def calibrate(self, **kwargs: Any) -> Fit:
        """Return a copy of the fit calibrated with non-default settings.

        Keyword arguments go to :func:`bayescale.calibration.calibrate` (``cutoffs``,
        ``cut_by``, ``prior_scale``, ``h_grid``, ``min_rows``, ``draws``, ``by``: a drift
        per task or family of a pooled fit, ``ratio``: the drifts along ``D/N``). It runs
        its own inner refits (as many as the first calibration's, and as long), saying so
        on the ``bayescale`` logger. To pool the discrepancy rate over many fits, see
        :func:`bayescale.pool_calibration`.
        """
        from .calibration import calibrate

        _log.info(
            "Calibrating the extrapolation drift of %r with %s by nested leave-future-out "
            "(inner refits, as many as the first calibration's) ...", self.law.name,
            ", ".join(f"{k}={v!r}" for k, v in kwargs.items()) or "the default settings",
        )
        return self.with_calibration(calibrate(self, **kwargs))

    def with_calibration(self, cal) -> Fit:
        """Return a copy of the fit that uses the calibration ``cal`` (saved with it)."""
        extras = dict(self.extras)
        extras["calibration"] = cal.to_dict()
        new = Fit(self.spec, self.data, self.idata, self.settings, self.diagnostics, extras)
        new.__dict__["calibration"] = cal
        return new

    def residual_autocorrelation(self) -> float:
        """Lag-1 autocorrelation of the fitted residuals along each run (or all rows).

        0.5 or more: the law misses over stretches of scale, so an i.i.d. likelihood
        overstates certainty; refit learning curves and checkpoints with
        ``likelihood="ar1"`` (:func:`bayescale.autocorr.residual_autocorrelation`).
        """
        from .autocorr import residual_autocorrelation

        return residual_autocorrelation(self)[0]

    def decompose(
        self,
        new: pd.DataFrame | Mapping[str, Any] | None = None,
        *,
        extrapolation: bool | str = "auto",
    ) -> pd.DataFrame:
        """Split each row's predictive variance into parameter, noise and extrapolation.

        On the log scale for a loss law, on the logit scale for an accuracy law
        (:func:`bayescale.calibration.decompose`). ``extrapolation`` as in
        :meth:`predict`: ``False`` leaves the drift out (its share is then 0).
        """
        from .calibration import decompose

        return decompose(self, new, extrapolation=self._use_extrapolation(extrapolation))

    def extrapolation_ratio(self, new: pd.DataFrame | None = None) -> np.ndarray:
        """Target scale / largest fitted scale per row (C, else 6ND, else the input).

        For a law of a loss (a falling input, e.g. ``sigmoid_of_loss``): the smallest
        fitted loss / the target's loss (:func:`size_of`).
        """
        frame = self._frame(new)
        return size_of(self.law, frame) / float(size_of(self.law, self.data).max())

    def predict(
        self,
        new: pd.DataFrame | Mapping[str, Any] | None = None,
        *,
        prob: float = 0.9,
        kind: str = "predictive",
        random_seed: int | None = None,
        extrapolation: bool | str = "auto",
        shared_noise: bool = False,
    ) -> pd.DataFrame:
        """Posterior predictive summary at ``new`` rows.

        Parameters
        ----------
        new : DataFrame or dict, optional
            Rows with the law's input columns (and group columns when pooled).
            Default: the training rows.
        prob : float
            Central interval probability (0.9 -> 5% and 95% quantiles).
        kind : {"predictive", "mean"}
            With observation noise (default) or the law's mean curve without it (beyond
            the data still with the extrapolation drift, uncertainty about the curve).
        extrapolation : {"auto", True, False}
            Widen forecasts beyond the fitted range by the calibrated discrepancy
            (on by default for loss and accuracy laws; the first such call runs the
            nested leave-future-out calibration, see :mod:`bayescale.calibration`).
        shared_noise : bool
            One noise quantile per sample for all rows (:meth:`draws`): the same
            intervals per row, smooth along a grid (plots use it).

        Returns
        -------
        DataFrame
            The input columns plus ``mean``, ``median``, ``lower``, ``upper`` and
            ``extrapolation`` (target scale / largest fitted scale). The ``median`` is the
            point forecast: with ``kind="predictive"`` a loss law's Student-t noise on the
            log scale (the default likelihood, and ``"ar1"``) has no mean, so ``mean`` is
            NaN there (:func:`has_predictive_mean`); ``kind="mean"`` gives the mean curve's.
        """
        prob = _check_prob(prob)
        rows = _data.as_rows(new) if new is not None else None
        ratio = None
        if isinstance(rows, pd.DataFrame):  # the labels only; draws validates the rows
            self._warn_new_levels(rows)
            ratio = self.extrapolation_ratio(rows)
            self._warn_far_beyond(ratio, "Row(s) of the new rows", list(rows.index))
        d = self.draws(new, kind=kind, random_seed=random_seed, extrapolation=extrapolation,
                       shared_noise=shared_noise).values
        return summarise_draws(self, new, d, prob, ratio,
                               mean=kind == "mean" or has_predictive_mean(self))

    def _warn_far_beyond(self, ratio: np.ndarray, what: str = "Row(s) of the new rows",
                         labels: Sequence[Any] | None = None) -> None:
        """Warn when a target lies a million times or more beyond (or below) the fitted scale.

        No scaling law is trusted six decades out; such a target is most often in other
        units than the training data (parameters in millions there, raw counts here).
        """
        ratio = np.asarray(ratio, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            sizes = size_of(self.law, self.data)
            lowest = float(np.min(sizes) / np.max(sizes))  # the smallest fitted row's ratio
        beyond = np.flatnonzero(ratio >= FAR_BEYOND)
        below = (np.flatnonzero((ratio >= 0) & (ratio <= lowest / FAR_BEYOND))
                 if np.isfinite(lowest) and lowest > 0 else np.array([], int))
        if not len(beyond) and not len(below):  # the usual case: nothing to say
            return
        cols = _data.input_columns(self.law, self.spec.x)
        names = ", ".join(f"{cols.get(c, c)} {self.data[c].min():.3g}-{self.data[c].max():.3g}"
                          for c in self.law.inputs if c in self.data
                          and isinstance(cols.get(c, c), str)  # not a constant (chance 0.25)
                          and pd.api.types.is_numeric_dtype(self.data[c]))
        for far, where in ((beyond, "beyond"), (below, "below")):  # each said, not one
            if not len(far):
                continue
            with np.errstate(divide="ignore"):  # a size that underflows to a ratio of 0
                decades = (np.log10(ratio[far].max()) if where == "beyond"
                           else np.log10(lowest / ratio[far].min()))
            shown = [labels[i] for i in far[:5]] if labels is not None else far[:5].tolist()
            _warn(
                f"{what} {shown} lie "
                f"{f'{decades:.1f}' if np.isfinite(decades) else 'more than 300'} decades "
                f"{where} the fitted data "
                f"(extrapolation "
                f"{ratio[far].max() if where == 'beyond' else ratio[far].min():.3g}). Check "
                f"that they are in the training data's units (fitted: {names}): a column in "
                "millions or billions there and raw counts here (or the reverse) looks like "
                "this.",
                ExtrapolationWarning,
            )

    def _warn_new_levels(self, frame: pd.DataFrame) -> None:
        """Warn when new rows name a group level the fit never saw (often a typo).

        Such a row's parameters are drawn from the population of levels, which is right
        for a new family on purpose and wrong for ``'c4'`` meant as ``'C4'``: the
        forecast is then quietly wider and centred elsewhere.
        """
        for g in self.spec.group_columns:
            if g not in frame.columns:
                continue
            seen = [str(v) for v in self.spec.levels[g]]
            new = sorted(set(_data.group_labels(frame[g].dropna())) - set(seen))
            if not new:
                continue
            hints = "".join(did_you_mean(v, seen, name_it=len(new) > 1) for v in new)
            shown = ", ".join(repr(v) for v in seen[:8]) + (", ..." if len(seen) > 8 else "")
            _warn(
                f"Column {g!r}: {', '.join(repr(v) for v in new[:5])} "
                f"{'was' if len(new) == 1 else 'were'} not among the fitted levels "
                f"({shown}), so {'its' if len(new) == 1 else 'their'} parameters are drawn "
                f"from the population of levels and the interval is wider than a fitted "
                f"level's.{hints} For a new level on purpose, silence this with "
                "warnings.simplefilter('ignore', bs.PoolingWarning).",
                PoolingWarning,
            )

    def compute_optimal(
        self,
        C: float | Sequence[float],
        *,
        prob: float = 0.9,
        groups: Mapping[str, Any] | None = None,
        extrapolation: bool | str = "auto",
        inputs: Mapping[str, float] | None = None,
    ) -> pd.DataFrame:
        """Compute-optimal allocation for budgets ``C`` (FLOPs, ``C = 6 N D``).

        One row per budget with the posterior median and central interval of
        ``N_opt``, ``D_opt``, ``tokens_per_param`` and the ``loss`` at the optimum (with
        the calibrated drift beyond the fitted compute, ``extrapolation="auto"``), and
        ``extrapolation`` (budget / largest fitted compute).
        A pooled fit gives one row per budget and fitted level, or the level named:
        ``fit.compute_optimal(C=[1e22], groups={"family": "fam_a"})``.
        ``inputs`` fixes the law's other inputs, e.g. ``inputs={"U": 4e11}`` (unique tokens
        available) for ``data_constrained``; left out, data are unlimited.
        See :func:`bayescale.derived.compute_optimal`.
        """
        from .derived import compute_optimal

        return compute_optimal(self, C, prob=prob, groups=groups, extrapolation=extrapolation,
                               inputs=inputs)

    def onset(
        self,
        threshold: float = 0.1,
        *,
        absolute: float | None = None,
        prob: float = 0.9,
        **kwargs: Any,
    ):
        """Onset compute per task/family with credible interval. See :func:`bayescale.onset`."""
        from .onset import onset

        return onset(self, threshold, absolute=absolute, prob=prob, **kwargs)

    def prob_emerged(self, C: float | None = None, **kwargs: Any) -> pd.DataFrame:
        """Probability the onset happened by compute ``C``. See :func:`bayescale.prob_emerged`."""
        from .onset import prob_emerged

        return prob_emerged(self, C, **kwargs)

    def prob_inverse(self, **kwargs: Any) -> pd.DataFrame:
        """Probability of inverse / U-shaped scaling. See :func:`bayescale.prob_inverse`."""
        from .onset import prob_inverse

        return prob_inverse(self, **kwargs)

    def report(self, target: pd.DataFrame | Mapping[str, Any] | None = None, **kwargs: Any):
        """Paper-ready report (Markdown/CSV); see :func:`bayescale.report.report`."""
        from .report import report

        return report(self, target, **kwargs)

    def plot(self, **kwargs: Any):
        """Plot data with the posterior predictive band (see :func:`bayescale.plots.plot_fit`)."""
        from .plots import plot_fit

        return plot_fit(self, **kwargs)

    # ------------------------------------------------------------------- refits
    def user_frame(self, rows: Any = None) -> pd.DataFrame:
        """Training rows with the user's column names (as ``bs.fit`` received them).

        ``rows`` is a boolean mask or index selection of ``self.data`` (default all).
        """
        try:
            frame = self.data if rows is None else self.data.loc[rows]
        except (KeyError, IndexError, ValueError) as exc:
            raise BayescaleError(
                f"rows must be a boolean mask over the fit's {len(self.data)} training rows or "
                f"labels of fit.data's index: {exc}"
            ) from None
        ren = {inp: col for inp, col in self.spec.x.items() if isinstance(col, str)}
        ren["y"] = self.spec.y
        if self.spec.trials:
            ren["n"] = self.spec.trials
        # an input given as a number (x={"chance": 0.25}) was no column of the user's
        constants = [inp for inp, col in self.spec.x.items() if not isinstance(col, str)]
        return frame.drop(columns=[c for c in constants if c in frame.columns]).rename(
            columns=ren)

    def user_rows(self, new: pd.DataFrame | Mapping[str, Any] | None = None) -> pd.DataFrame:
        """``new`` as the user passed it (a copy), to which tables add their columns.

        ``None``: the training rows by the user's column names, without the response.
        Forecast tables (``predict``, ``decompose``) start from it, so a fit with
        ``x={"x": "N"}`` reports ``N`` as it was given, not the law's input name.
        """
        if new is None:
            return self.user_frame().drop(columns=self.spec.y)
        rows = _data.as_rows(new)
        return rows.copy() if rows is new else rows

    def refit(self, rows: Any = None, **overrides: Any) -> Fit:
        """Fit the same law, priors, pooling and sampler settings to a subset of rows.

        Used by leave-future-out scores, backtests and calibration. ``rows`` selects
        rows of ``self.data`` (boolean mask or index); ``overrides`` replace sampler
        settings (``draws``, ``random_seed``, ...) or model arguments of :func:`fit`
        (``priors``, ``pooled``, ``run``, ``likelihood``: another likelihood drops the
        noise priors of this one that it does not have). The refit keeps this fit's levels of
        its run and group columns (``levels=``): a run with no rows left has the
        population's offset, as a new run would, and the refit reuses this fit's compiled
        model.

        Examples
        --------
        >>> small = fit.refit(fit.data["N"] < 1e9, draws=300)  # doctest: +SKIP
        """
        from .compare import refit_kwargs

        kwargs = refit_kwargs(self, **{"progressbar": False, **overrides})
        return fit(self.user_frame(rows), self.law, **kwargs)

    # ------------------------------------------------------------- persistence
    def _extras_to_save(self) -> dict[str, Any]:
        extras = dict(self.extras)
        if "calibration" in self.__dict__:
            extras["calibration"] = self.__dict__["calibration"].to_dict()
        return extras

    def save(self, path: str | Path) -> Path:
        """Write the fit (InferenceData + spec + data) to one netCDF file."""
        if not isinstance(path, (str, os.PathLike)):
            raise BayescaleError(f"save takes a file path, e.g. 'fit.nc'; got {path!r}.")
        path = Path(path)
        if not path.parent.is_dir():
            raise BayescaleError(
                f"Cannot save to {str(path)!r}: folder {str(path.parent)!r} does not exist; "
                "create it first."
            )
        if path.is_dir():
            raise BayescaleError(
                f"Cannot save to {str(path)!r}: it is a folder; give a file name, e.g. "
                f"{str(path / 'fit.nc')!r}."
            )
        idata = self.idata.copy()
        meta = {
            "spec": self.spec.to_dict(),
            "settings": _jsonable(dict(self.settings)),  # numpy numbers: random_seed=np.int64
            "diagnostics": _jsonable(dict(self.diagnostics)),
            "extras": _jsonable(self._extras_to_save()),
            "data": _frame_to_dict(self.data),
        }
        idata.posterior.attrs["bayescale"] = json.dumps(meta)
        idata.to_netcdf(str(path), engine="h5netcdf")
        return path


def _kept_kind(t: Any) -> bool:
    """Whether a column of dtype ``t`` is saved with its dtype (numbers, booleans, times)."""
    return (pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t)
            or pd.api.types.is_datetime64_any_dtype(t) or pd.api.types.is_timedelta64_dtype(t))


def _values_to_list(values: pd.Series) -> list[Any]:
    """A column's values for JSON: numbers as they are, times and the rest as text."""
    t = values.dtype
    if pd.api.types.is_numeric_dtype(t) or pd.api.types.is_bool_dtype(t):
        return values.tolist()
    return values.astype(str).tolist()


def _frame_to_dict(frame: pd.DataFrame) -> dict[str, Any]:
    """The training rows as JSON-able lists, exactly: a loaded fit refits the same numbers.

    Floats go through Python's ``repr`` (17 significant digits), not pandas' JSON writer
    (at most 15: the calibration's inner fits of a loaded fit drew other samples). Numeric,
    boolean and time columns keep their dtype; other columns come back as text. The row
    labels keep their levels, names and dtypes (dates, several levels), as columns do.

    Examples
    --------
    >>> df = pd.DataFrame({"N": [1 / 3, 2e9], "family": ["a", "b"]}, index=[4, 7])
    >>> _frame_from_dict(json.loads(json.dumps(_frame_to_dict(df)))).equals(df)
    True
    >>> df.index = pd.MultiIndex.from_tuples(
    ...     [("a", pd.Timestamp("2024-01-01")), ("b", pd.Timestamp("2024-02-01"))],
    ...     names=["family", "date"])
    >>> _frame_from_dict(json.loads(json.dumps(_frame_to_dict(df)))).index.equals(df.index)
    True
    """
    kept = {c: str(t) for c, t in frame.dtypes.items() if _kept_kind(t)}
    levels = frame.index.to_frame(index=False)
    return {
        "index": [_values_to_list(levels.iloc[:, i]) for i in range(levels.shape[1])],
        "index_names": list(frame.index.names),
        "index_dtypes": [str(t) if _kept_kind(t) else None for t in levels.dtypes],
        "columns": {c: _values_to_list(frame[c]) for c in frame.columns},
        "dtypes": kept,
    }


def _frame_from_dict(d: dict[str, Any]) -> pd.DataFrame:
    """Inverse of :func:`_frame_to_dict` (columns of other dtypes come back as text)."""
    cols = {c: pd.Series(v).astype(d["dtypes"].get(c, "str")) for c, v in d["columns"].items()}
    if "index_names" not in d:  # saved before 2026-12-08: one level, labels as they were
        index = pd.Index(d["index"])
    else:
        parts = [pd.Series(v, dtype=object).astype(t or "str")
                 for v, t in zip(d["index"], d["index_dtypes"])]
        index = (pd.Index(parts[0], name=d["index_names"][0]) if len(parts) == 1 else
                 pd.MultiIndex.from_arrays(parts, names=d["index_names"]))
    frame = pd.DataFrame({c: s.to_numpy() for c, s in cols.items()}, index=index)
    return frame.astype({c: s.dtype for c, s in cols.items()})


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    def default(o: Any) -> Any:
        return o.tolist() if hasattr(o, "tolist") else str(o)

    return json.loads(json.dumps(d, default=default))


def load_fit(path: str | Path, law: Law | None = None) -> Fit:
    """Load a fit written by :meth:`Fit.save`.

    The file names its law: a built-in law, or a custom one registered in this process
    (define it with :func:`bayescale.law` first). A law made with ``register=False`` is
    passed as ``law=``. The file is read whole and closed: saving over it works.

    Examples
    --------
    >>> fit = bs.load_fit("fit.nc")  # doctest: +SKIP
    >>> fit = bs.load_fit("fit.nc", law=my_law)  # a law made with register=False  # doctest: +SKIP
    """
    from io import StringIO

    import arviz as az

    if not isinstance(path, (str, os.PathLike)):
        raise BayescaleError(f"load_fit takes a file path, e.g. 'fit.nc'; got {path!r}.")
    if law is not None and not isinstance(law, Law):
        raise BayescaleError(
            f"load_fit(law=...) takes the Law the fit was made with (a function decorated "
            f"with @bayescale.law), got {type(law).__name__}."
        )
    path = Path(path)
    if not path.exists():
        raise BayescaleError(f"No saved fit at {str(path)!r}.")
    try:  # eager: a lazily loaded file stays open, and saving over it failed in h5py
        with az.rc_context({"data.load": "eager"}):
            idata = az.from_netcdf(str(path), engine="h5netcdf")
    except OSError as exc:  # h5py: not an HDF5/netCDF-4 file
        raise BayescaleError(
            f"{str(path)!r} is not a saved fit (a netCDF file written by fit.save): {exc}."
        ) from None
    posterior = getattr(idata, "posterior", None)  # (a netCDF file of another kind: none)
    raw = None if posterior is None else posterior.attrs.get("bayescale")
    if raw is None:
        raise BayescaleError(
            f"{str(path)!r} is not a bayescale fit: it has no posterior with bayescale's "
            "record (fit.save writes one)."
        )

    def damaged(why: str) -> BayescaleError:
        return BayescaleError(f"{str(path)!r}: the fit's record is damaged ({why}); save the "
                              "fit again.")

    try:
        meta = json.loads(raw)
        name = meta["spec"]["law"]
        missing = [k for k in ("data", "settings", "diagnostics") if k not in meta]
    except (ValueError, TypeError, KeyError) as exc:
        raise damaged(f"{type(exc).__name__}: {exc}") from None
    if missing:
        raise damaged(f"no {missing}")
    if law is not None and law.name != name:
        raise BayescaleError(
            f"{str(path)!r} holds a fit of law {name!r}; law= was {law.name!r}."
        )
    if law is None:
        try:
            law = get_law(name)
        except LawError:
            raise LawError(
                f"{str(path)!r} holds a fit of law {name!r}, which is not built in nor "
                "registered in this process. Define it first (the @bayescale.law function, "
                f"named {name!r}), or pass it: bs.load_fit(path, law=your_law) (a law made "
                "with register=False)."
            ) from None
    saved = meta["spec"]
    lost = sorted(set(law.params) - set(saved.get("priors", {})))
    other = sorted(set(saved.get("x", {})) ^ set(law.inputs))
    if lost or other:  # a law of the same name, defined again differently
        raise LawError(
            f"{str(path)!r} holds a fit of law {name!r} whose parameters and inputs differ "
            f"from this process's {name!r} (its parameters {list(law.params)}, inputs "
            f"{list(law.inputs)}; the file's priors {sorted(saved.get('priors', {}))}, inputs "
            f"{sorted(saved.get('x', {}))}). Define the law as it was when the fit was saved."
        )
    try:
        spec = ModelSpec.from_dict(saved, law)
        if isinstance(meta["data"], str):  # files written before bayescale saved data exactly
            frame = pd.read_json(StringIO(meta["data"]), orient="split")
        else:
            frame = _frame_from_dict(meta["data"])
    except (ValueError, TypeError, KeyError) as exc:
        raise damaged(f"{type(exc).__name__}: {exc}") from None
    for g in spec.group_columns + ((spec.run,) if spec.run else ()):
        frame[g] = frame[g].astype(str)
    return Fit(
        spec=spec,
        data=frame,
        idata=idata,
        settings=meta["settings"],
        diagnostics=meta["diagnostics"],
        extras=meta.get("extras", {}),
    )


def _prepare(
    data: pd.DataFrame, law: str | Law, **model_kw: Any
) -> tuple[ModelSpec, pd.DataFrame, Any]:
    """Validate the data, compute the spec and build the PyMC model (shared by fits).

    ``model_kw``: the :data:`MODEL_ARGS` of :func:`prepare_spec`.
    """
    spec, frame = prepare_spec(data, law, **model_kw)
    return spec, frame, build_model(spec, frame)


#: Arguments of :func:`fit` that define a series' model (the rest are sampler settings).
MODEL_ARGS = ("y", "x", "priors", "pooled", "run", "likelihood", "group_scale", "correlated",
              "trials", "levels")


def check_series(frames: Sequence[pd.DataFrame], law: str | Law, labels: Sequence[str],
                 **fit_kwargs: Any) -> list[ModelSpec]:
    """Check every series' data before any is sampled; an error names its series.

    ``fit_kwargs`` are those of :func:`fit` (sampler settings are ignored here);
    warnings are left to the fits themselves. Returns each series' spec (with the law's
    own likelihood where ``likelihood="auto"``), e.g. to check held-out rows against it.
    """
    import warnings

    model_kw = {k: fit_kwargs[k] for k in MODEL_ARGS if k in fit_kwargs}
    if model_kw.get("likelihood", "auto") == "auto":  # the fit decides; check the law's own
        model_kw["likelihood"] = None
        model_kw["priors"] = auto_priors(law, model_kw.get("priors"))[0]
    specs = []
    for label, df in zip(labels, frames):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                specs.append(prepare_spec(df, law, **{"y": None, "x": None, "priors": None,
                                                      **model_kw})[0])
            except BayescaleError as e:
                raise type(e)(f"{label}: {e}") from None
    return specs


def prepare_spec(
    data: pd.DataFrame,
    law: str | Law,
    *,
    y: str | None,
    x: Mapping[str, str] | None,
    priors: Mapping[str, Any] | None,
    pooled: Any = None,
    run: str | None = None,
    likelihood: str | None = None,
    group_scale: Mapping[str, float] | None = None,
    correlated: bool = False,
    trials: str | None = None,
    levels: Mapping[str, Sequence[Any]] | None = None,
) -> tuple[ModelSpec, pd.DataFrame]:
    """Validate the data (counts, trials, groups) and compute the :class:`ModelSpec`.

    Returns the spec and the validated frame (canonical input names, ``y``, ``n``).
    """
    _data.check_column_arguments(y=y, x=x, run=run, trials=trials, priors=priors)
    law_obj = get_law(law)
    pooled_map = normalise_pooled(pooled, law_obj)
    if isinstance(pooled, (str, list, tuple)):
        # "pool everything" skips parameters the user fixed with priors={name: value}
        fixed = {k for k, v in (priors or {}).items() if as_prior(v, k).dist == "Fixed"}
        pooled_map = {p: c for p, c in pooled_map.items() if p not in fixed}
    groups = [g for cols in pooled_map.values() for g in cols]
    lik_obj = get_likelihood(likelihood or law_obj.likelihood)
    frame, y_col, n_col = validate_observed(
        data, law_obj, lik_obj, y=y, x=x, trials=trials, groups=list(dict.fromkeys(groups)),
        run=run,
    )
    if pooled_map:
        check_group_sizes(frame, pooled_map)
    x_map = _data.input_columns(law_obj, x)
    _data.check_identifiable(frame, law_obj, x_map, priors=priors, run=run)
    spec = make_spec(
        frame,
        law_obj,
        priors=priors,
        pooled=pooled_map,
        likelihood=likelihood,
        x=x_map,
        y=y_col,
        run=run,
        group_scale=group_scale,
        correlated=correlated,
        trials=n_col,
        levels=levels,
    )
    n_free = spec.free_parameter_count()
    if len(frame) < n_free:
        raise DataError(
            f"Only {len(frame)} rows for law {law_obj.name!r} with {n_free} free parameters; "
            "add data, fix parameters with priors={name: value}, or choose a simpler law."
        )
    return spec, frame


def validate_observed(
    data: pd.DataFrame, law: Law, lik: Any, *, y: str | None, x: Mapping[str, str] | None,
    trials: str | None, groups: Sequence[str] = (), run: str | None = None,
    optional_trials: bool = False,
) -> tuple[pd.DataFrame, str, str | None]:
    """Validate observed rows, with their trials (``n``) where the likelihood uses them.

    Counts given as ``correct`` and trials become an accuracy ``y``; the trials column
    (``trials``, else ``n`` for accuracy laws) becomes ``n``. ``optional_trials``: a
    trials column only a Beta likelihood would use may be absent (held-out rows).
    Returns the frame, the response column and the trials column (or None).
    """
    y_col = y or law.response
    n_col = None
    counts = (law.response == "accuracy" and (trials or "n") in data.columns
              and (y == "correct" or (y is None and law.response not in data.columns
                                      and "correct" in data.columns)))
    if lik.needs_trials or counts:
        # counts (correct and n) for a score likelihood (beta): it fits their fraction,
        # bounded by half a trial, as fit_joint does
        data, y_col, n_col = _data.prepare_counts(data, y=y, trials=trials, response=law.response)
    elif trials is not None or (law.response == "accuracy" and "n" in data.columns):
        n_col = trials or "n"
        if n_col in data.columns:  # the Beta likelihood bounds scores by half a trial
            _data.check_trials(data, n_col)
        elif optional_trials:
            n_col = None
        else:
            sizes = [c for c in data.columns if c not in {"N", "D", "C"}]  # never a hint
            raise DataError(
                f"Column {n_col!r} (named in trials=, the number of trials per row) is "
                f"missing.{_data.missing_hint(n_col, data[sizes])} Available columns: "
                f"{list(data.columns)}. Name the trials column, or leave trials= out."
            )
    extra = [n_col] if n_col else []
    frame = _data.validate(data, law, y=y_col, x=x, groups=list(groups), run=run, extra=extra)
    if lik.probability and law.response != "accuracy" and "y" in frame:
        # an accuracy law's scores are checked by validate; a probability likelihood put on
        # a loss law (losses of 2-5) fitted, and every forecast was 1
        bad = ((frame["y"] < 0) | (frame["y"] > 1)).to_numpy()
        if bad.any():
            raise DataError(
                f"Likelihood {lik.name!r} is for scores in [0, 1], but response {y_col!r} of "
                f"law {law.name!r} has values outside at "
                f"{_data._rows(bad, frame.index, frame['y'])}. For losses use "
                "likelihood='studentt' or 'normal' (the default 'auto' picks one); a score in "
                "percent: divide by 100."
            )
    if n_col:
        frame = frame.rename(columns={n_col: "n"})
        frame["n"] = _data.coerced(frame["n"]).astype(float)  # checked above
    return frame, y_col, n_col


def fit(
    data: pd.DataFrame,
    law: str | Law,
    *,
    y: str | None = None,
    x: Mapping[str, str] | None = None,
    priors: Mapping[str, Any] | None = None,
    pooled: str | Sequence[str] | Mapping[str, str | Sequence[str]] | None = None,
    run: str | None = None,
    likelihood: str | None = "auto",
    sampler: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    target_accept: float | str = "auto",
    progressbar: bool | None = None,
    group_scale: Mapping[str, float] | None = None,
    correlated: bool = False,
    warn: bool = True,
    trials: str | None = None,
    levels: Mapping[str, Sequence[Any]] | None = None,
    **sampler_kwargs: Any,
) -> Fit:
    """Fit a scaling law to a tidy DataFrame with NUTS.

    Parameters
    ----------
    data : DataFrame
        One row per run: the law's input columns (``N``, ``D``, ``C``, ...) and the
        response (``loss`` by default for loss laws).
    law : str or Law
        A registered law name (``bayescale laws`` lists them) or a :class:`Law`.
    y : str, optional
        Response column (default: the law's, e.g. ``"loss"``).
    x : dict, optional
        ``{law input: column}`` for columns named differently, e.g. ``{"N": "params"}``.
        ``C`` is computed as ``6 N D`` when absent and needed.
    priors : dict, optional
        Overrides by parameter name: a :class:`Prior`, a ``(dist, {kw})`` tuple or a
        number (fixes the parameter, in raw units). A coefficient's prior (``A``) is on
        the log of its term at the reference scale, a location's (``L0``) on
        ``log(L0 / centre)``: real-valued priors (``Normal``) only.
    pooled : str, list or dict, optional
        Hierarchical pooling: ``"family"`` pools every parameter over the ``family``
        column; ``{"E": "family", "alpha": ["task", "family"]}`` pools some (a list
        is crossed: offsets add on the unconstrained scale). Rows of a level never
        seen in training draw that level's parameters from the population.
        ``PoolingWarning`` names any level with fewer rows than parameters pooled.
    run : str, optional
        Column identifying training runs, for checkpoints of one run: adds a run-level
        random offset on the link scale. Drop early checkpoints first with
        :func:`bayescale.filter_checkpoints`.
    likelihood : str, optional
        ``"auto"`` (default): the law's likelihood (``"studentt"`` on log loss for loss
        laws), refitted with ``"ar1"`` when the Student-t fit's residuals are
        autocorrelated along scale (lag-1 r > 0.5) and the rows form sequences
        (:func:`bayescale.autocorr.auto_choice`); the choice and its reason are in
        ``Fit.settings["likelihood_choice"]`` and the report. Laws whose likelihood is
        not Student-t (accuracy, counts) keep theirs. Or name one: ``"studentt"``,
        ``"normal"`` (``None``: the law's); ``"ar1"`` for checkpoints and learning
        curves: Student-t residuals that follow an AR(1) process in log scale along
        each run (``run=``) or along all rows, so that 100 checkpoints of one run do
        not count as 100 independent facts (:mod:`bayescale.autocorr`).
    sampler : {"auto", "nutpie", "jax", "numpyro", "pymc", "blackjax"}
        NUTS implementation. ``"nutpie"`` and ``"jax"`` are compiled once per model
        structure and reused for new data (see :mod:`bayescale.compiled`): nutpie's
        numba backend, or PyMC's JAX export sampled by NumPyro's NUTS in one jitted
        program. ``"auto"`` (default) picks ``"nutpie"``, on a GPU machine too: 2-3x
        less CPU time per fit than ``"numpyro"`` on the 2-core machine, and on an H100
        host 10x faster than the JAX path on the GPU, where NUTS is latency-bound
        (``docs/throughput.md``); ``"jax"`` if nutpie is not installed.
        ``"numpyro"``: ``pm.sample(nuts_sampler="numpyro")``, which re-translates and
        re-JITs on every call.
    draws, tune, chains, random_seed
        As in ``pymc.sample``. The same seed gives the same draws. Without one a seed is
        chosen from the system's entropy and recorded (``Fit.settings["random_seed"]``):
        the fit's predictions, calibration and report then draw the same numbers each
        time they are asked, and ``random_seed=fit.settings["random_seed"]`` repeats it.
    target_accept : float or "auto"
        NUTS's target acceptance rate. ``"auto"`` (default): 0.9, and while the fit has
        divergent transitions it is sampled again at 0.95, then 0.99 (same seed; see
        :data:`bayescale.sampling.TARGET_ACCEPT_STEPS`); ``Fit.settings`` records the
        rate used (``"target_accept_used"``) and each try (``"target_accept_steps"``),
        and divergences left at 0.99 are reported like any others. Ladders of a dozen
        runs often need it: their ``(E, A, alpha)`` ridge is curved.
    progressbar : bool, optional
        Show the sampler's progress (default: in an interactive terminal, not in CI or
        when ``BAYESCALE_NO_PROGRESS`` is set). ``sampler="jax"`` runs as one compiled
        program and shows none.
    trials : str, optional
        Column with the number of trials (questions) per row, needed by the count
        likelihoods ``"binomial"`` and ``"betabinomial"`` (default column ``"n"``).
        Counts may come as ``correct`` and ``n`` or as an accuracy column and ``n``.
    group_scale : dict, optional
        Prior scale (half-normal) of the group offsets per parameter, on its
        unconstrained scale; defaults in ``bayescale.model.GROUP_SCALE``.
    correlated : bool
        Correlated group effects: the offsets of the parameters pooled over the same
        column get an LKJ(2) correlation (``Fit.posterior["<column>_cov_corr"]``).
    levels : dict, optional
        ``{column: labels}``: every level of a ``pooled`` or ``run`` column, those of the
        data and more (default: the data's). A level without rows gets its offset from the
        population alone, as a level new at prediction time does, so the posterior of
        everything else is that of a fit without it. Refits of subsets that keep the full
        fit's levels share its compiled model (the calibration's inner fits do).

    Returns
    -------
    Fit

    Examples
    --------
    >>> import bayescale as bs
    >>> df = bs.datasets.load("synthetic_chinchilla")  # doctest: +SKIP
    >>> f = bs.fit(df, "chinchilla", random_seed=0, draws=200, tune=200)  # doctest: +SKIP
    >>> f.predict({"N": [7e10], "D": [1.4e12]})  # doctest: +SKIP
    """
    check_settings(draws, tune, chains, target_accept, random_seed, auto_ok=True)
    for name, value, none_ok in (("warn", warn, False), ("progressbar", progressbar, True)):
        # warn="no" was truthy: the warnings it meant to turn off were said
        if not (isinstance(value, (bool, np.bool_)) or (none_ok and value is None)):
            raise BayescaleError(
                f"{name} must be True or False{' (or None)' if none_ok else ''}, got {value!r}."
            )
    random_seed = seed_or_chosen(random_seed)
    data = _data.as_frame(data)
    _data.check_column_arguments(y=y, x=x, run=run, trials=trials, priors=priors)
    if warn:
        warn_repeated_rows(data, law, y=y, x=x, pooled=pooled, run=run)
    model_kw = dict(y=y, x=x, priors=priors, pooled=pooled, run=run, group_scale=group_scale,
                    correlated=correlated, trials=trials, levels=levels)
    if likelihood == "auto":
        result = _fit_auto(
            data,
            law,
            dict(model_kw, sampler=sampler, draws=draws, tune=tune, chains=chains,
                 random_seed=random_seed, target_accept=target_accept,
                 progressbar=progressbar, **sampler_kwargs),
            warn=warn,
        )
        if warn:  # (after the data passed the validation, which says what is wrong first)
            warn_one_ratio(data, law, x=x)
        return result
    spec, frame, model = _prepare(data, law, likelihood=likelihood, **model_kw)
    if warn:
        warn_one_ratio(data, law, x=x)
    if sampler not in ALL_SAMPLERS:
        raise BayescaleError(f"sampler must be one of {ALL_SAMPLERS}, got {sampler!r}.")
    law_obj = spec.law
    settings = {
        "sampler": sampler,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": random_seed,
        "target_accept": target_accept,
    }
    if sampler == "auto":
        sampler = choose_sampler()
        settings["sampler"] = sampler
        if sampler == "nutpie":
            # options meant for the JAX samplers have no nutpie counterpart
            sampler_kwargs.pop("chain_method", None)
    use_cache = sampler in COMPILED_SAMPLERS and not spec.correlated
    if sampler in COMPILED_SAMPLERS and not use_cache:
        # LKJ models fail nutpie's initial-point function after a data swap (read-only
        # arrays inside the numba RNG); sample them uncached through pm.sample
        sampler = "nutpie" if sampler == "nutpie" else "numpyro"
        settings["sampler"] = sampler
    if sampler_kwargs:
        # refits (Fit.refit, calibration, leave-future-out) repeat them
        settings["sampler_kwargs"] = dict(sampler_kwargs)
    sampler_kwargs = tree_depth_option(sampler, sampler_kwargs)
    names = [p for p in law_obj.params if spec.priors[p].dist != "Fixed"]
    names += [p for p in spec.noise_params if spec.priors[p].dist != "Fixed"]

    def draw(accept: float):
        if not use_cache:
            return sample(model, sampler=sampler, draws=draws, tune=tune, chains=chains,
                          random_seed=random_seed, target_accept=accept,
                          progressbar=progressbar, **sampler_kwargs)
        idata, timing = sample_compiled(
            spec, model, frame, sampler=sampler, draws=draws, tune=tune, chains=chains,
            random_seed=random_seed, target_accept=accept, progressbar=progressbar,
            **sampler_kwargs,
        )
        settings["timing"] = _over_tries(settings.get("timing"), timing)
        return idata

    idata, diag, record = sample_stepping_down(
        draw, target_accept, model=model, names=names, what=f"law {law_obj.name!r}",
        link=law_obj.link,
    )
    settings.update(record)
    if warn:
        warn_problems(diag, f"fit of law {law_obj.name!r}")
    result = Fit(spec=spec, data=frame, idata=idata, settings=settings, diagnostics=diag)
    result.__dict__["model"] = model
    return result


def warn_repeated_rows(data: pd.DataFrame, law: str | Law, *, y: str | None,
                       x: Mapping[str, Any] | None, pooled: Any, run: str | None) -> None:
    """A :class:`DataWarning` when rows repeat others exactly (inputs, response, groups, run).

    Two runs with the very same result are rare; rows copied twice (a table concatenated
    with itself, a merge that fanned out) are common, and the fit would count each copy
    as a new run: intervals too narrow. Data the validation refuses are left to it.
    """
    try:
        law_obj = get_law(law)
        cols = [c for c in _data.input_columns(law_obj, x).values() if isinstance(c, str)]
        groups = [g for gs in normalise_pooled(pooled, law_obj).values() for g in gs]
    except BayescaleError:
        return
    cols = list(dict.fromkeys([*cols, y or law_obj.response, *groups, *([run] if run else [])]))
    if not set(cols) <= set(data.columns):  # the validation's error says which is missing
        return
    try:
        repeated = data.duplicated(subset=cols, keep="first").to_numpy()
    except (TypeError, ValueError):  # unhashable cells (0-d arrays, lists): left to the
        return  # validation, which reads or refuses them
    if not repeated.any():
        return
    rows = data.index[repeated].tolist()
    _warn(
        f"{len(rows)} of the {len(data)} rows repeat an earlier row exactly in {cols} (rows "
        f"{rows[:5]}{' ...' if len(rows) > 5 else ''}): the fit counts each copy as another "
        "run, which narrows its intervals. If they are copies (a table joined twice, a merge "
        "that fanned out), drop them with df.drop_duplicates(); if they are replicate runs "
        "that happened to agree, keep them.",
        DataWarning,
    )


#: Tokens per parameter that vary by less than this factor over the rows count as one.
ONE_RATIO = 1.05


def warn_one_ratio(data: pd.DataFrame, law: str | Law, *, x: Mapping[str, Any] | None) -> None:
    """A :class:`DataWarning` when every row has the same tokens per parameter ``D/N``.

    A ladder at a fixed ratio (D = 20 N) identifies the law along that line only: how the
    loss splits between its ``N`` and ``D`` terms, and so the compute-optimal allocation,
    rests on the priors (a 90% interval of 0.006 to 44,000 tokens per parameter was
    returned unsaid). Data the validation refuses are left to it.
    """
    try:
        law_obj = get_law(law)
        cols = _data.input_columns(law_obj, x)
    except BayescaleError:
        return
    n_col, d_col = cols.get("N"), cols.get("D")
    if not (isinstance(n_col, str) and isinstance(d_col, str)
            and all((data.columns == c).sum() == 1 for c in (n_col, d_col))) or len(data) < 3:
        return  # (a column missing or given twice: the validation says so)
    try:
        with np.errstate(all="ignore"):
            ratio = (_data.coerced(data[d_col]) / _data.coerced(data[n_col])).to_numpy(float)
    except (TypeError, ValueError):
        return
    if not (np.isfinite(ratio).all() and (ratio > 0).all()):
        return
    if ratio.max() / ratio.min() < ONE_RATIO:
        _warn(
            f"Every row has about the same tokens per parameter ({d_col!r} / {n_col!r} = "
            f"{np.median(ratio):.3g}): the data follow one line through (N, D), so how law "
            f"{law_obj.name!r} splits the loss between its N and D terms, and the "
            "compute-optimal allocation (compute_optimal), rest on the priors. Add runs at "
            "other tokens per parameter to learn them; forecasts along the same ratio are "
            "unaffected.",
            DataWarning,
        )


def _over_tries(before: Mapping[str, Any] | None, now: Mapping[str, Any]) -> dict[str, Any]:
    """Timings of the tries of ``target_accept="auto"`` together.

    Seconds are summed, and a flag says whether any try compiled or loaded its program
    (the last try's alone said neither in a new process).

    Examples
    --------
    >>> _over_tries({"sample_s": 2.0, "compiled": True}, {"sample_s": 1.0, "compiled": False})
    {'sample_s': 3.0, 'compiled': True}
    """
    if not before:
        return dict(now)
    out = dict(now)
    for k, v in now.items():
        if isinstance(v, bool):
            out[k] = v or bool(before.get(k, False))
        elif isinstance(v, (int, float)) and k.endswith("_s"):
            out[k] = v + before.get(k, 0.0)
    return out


def auto_priors(law: str | Law, priors: Mapping[str, Any] | None
                ) -> tuple[dict[str, Any] | None, list[str]]:
    """``likelihood="auto"``'s priors for the law's own likelihood, and those left for later.

    Priors of ar1's own noise parameters (``corr_length``) wait for the ``"ar1"`` refit.

    Examples
    --------
    >>> auto_priors("power_law", {"alpha": 0.3, "corr_length": 0.5})
    ({'alpha': 0.3}, ['corr_length'])
    """
    law_obj = get_law(law)
    own = set(get_likelihood(law_obj.likelihood).priors) | set(law_obj.params)
    given = dict(priors or {})
    later = sorted(k for k in given if k in set(get_likelihood("ar1").priors) - own)
    return {k: v for k, v in given.items() if k not in later} or None, later


def unused_note(later: Sequence[str]) -> str:
    """What ``likelihood="auto"`` says of ar1-only priors when it keeps the i.i.d. fit."""
    return f" (the prior on {list(later)} applies to likelihood='ar1' only: unused)"


def _fit_auto(data: pd.DataFrame, law: str | Law, kwargs: dict[str, Any], warn: bool) -> Fit:
    """``fit(..., likelihood="auto")``: the law's i.i.d. fit, refitted with ``"ar1"`` if due."""
    from .autocorr import auto_choice

    first_priors, later = auto_priors(law, kwargs.get("priors"))
    first = fit(data, law, likelihood=None, warn=False, **dict(kwargs, priors=first_priors))
    chosen, why = auto_choice(first)
    result = first
    if chosen != first.spec.likelihood:
        result = fit(data, law, likelihood=chosen, warn=False, **kwargs)
    elif later:
        why += unused_note(later)
    result.settings["likelihood_choice"] = f"auto -> {why}"
    if warn:
        warn_problems(result.diagnostics, f"fit of law {result.law.name!r}")
    return result
