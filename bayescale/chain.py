"""Two-stage forecasting: scale -> loss (stage 1) -> accuracy (stage 2).

``chain(loss_fit, accuracy_fit)`` pushes every posterior draw of stage 1's
predicted loss through the matching posterior draw of stage 2 (draws are
paired, not crossed), so the accuracy interval carries both stages'
uncertainty. This is the Bayesian version of the OLMo model ladder's two-step
prediction (LAWS.md D1) without the delta method.

Which stage-1 draw is pushed through
------------------------------------
By default (``loss_kind="predictive"``) stage 2 receives stage 1's *posterior
predictive* loss, i.e. the law's mean plus observation noise. Stage 2 was fitted
on observed losses, which carry that noise, and the new model's loss will too, so
this is the right input for predicting one new model's accuracy.
``loss_kind="mean"`` pushes the law's mean loss only (narrower; the uncertainty
of the expected accuracy at that scale). ``kind`` controls stage 2 in the same
way: ``"predictive"`` adds the likelihood's sampling noise (Binomial with the
row's ``n`` trials, or the training mean ``n``), ``"mean"`` does not. Both stages'
draws include their calibrated extrapolation discrepancy by default
(``extrapolation="auto"``, see :mod:`bayescale.calibration`): stage 1's grows with the
target's compute beyond the fitted range (log scale), stage 2's with how far the target's
loss falls below the smallest fitted loss (logit scale; learned from stage 2's own
leave-future-out refits, so it is the error of the loss -> accuracy link alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from .data import as_rows
from .errors import BayescaleError, DataError

if TYPE_CHECKING:  # pragma: no cover
    from .fit import Fit


@dataclass(frozen=True)
class Chain:
    """Two fitted stages composed draw by draw (see :func:`chain`)."""

    loss_fit: Fit
    accuracy_fit: Fit
    loss_input: str = "L"
    #: Stage-1 draw pushed through when ``loss_kind`` is not given (see the module doc).
    default_loss_kind: ClassVar[str] = "predictive"
    #: Whether the stages' parameters come from one posterior (:class:`JointFit`): their
    #: terms of :meth:`decompose` are then correlated and get a covariance term.
    correlated_stages: ClassVar[bool] = False

    @property
    def variance_sources(self) -> tuple[str, ...]:
        """The parts of :meth:`decompose`'s variance, each with a ``<part>_share`` column."""
        return ("loss", "parameter", "noise", "extrapolation") + (
            ("covariance",) if self.correlated_stages else ())

    def _new(self, new: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
        new = as_rows(new)
        if not isinstance(new, pd.DataFrame):
            raise BayescaleError(f"new rows must be a DataFrame or dict, got {type(new).__name__}.")
        return new.reset_index(drop=True)

    @staticmethod
    def _with_index(out: pd.DataFrame, new: pd.DataFrame | Mapping[str, Any]) -> pd.DataFrame:
        """``out`` (rows of ``new`` in order) with ``new``'s own index, as ``Fit.predict``."""
        if isinstance(new, pd.DataFrame):
            out.index = new.index
        return out

    def _stage2_frame(self, new: pd.DataFrame, placeholder: np.ndarray) -> pd.DataFrame:
        acc = self.accuracy_fit
        col = acc.spec.x.get(self.loss_input, self.loss_input)
        rows = new.copy()
        rows[col] = placeholder
        try:
            return acc._frame(rows)
        except DataError as err:  # say which stage, and that the loss is not the user's
            raise DataError(
                f"Stage 2 ({acc.law.name!r}) cannot use the new rows: {err} (Its column "
                f"{col!r} is stage 1's forecast loss, filled in by the chain: the new rows "
                "need not have it.)"
            ) from None

    def _paired(
        self,
        new: pd.DataFrame,
        *,
        loss_kind: str,
        random_seed: int | None,
        extrapolation: bool | str,
        shared_noise: bool = False,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], pd.DataFrame, np.random.Generator, np.ndarray]:
        """Stage 1's loss draws paired with stage 2's parameter draws.

        Returns ``(loss, params, frame, rng, i2)``: ``frame`` is stage 2's rows with each
        row's median loss, ``i2`` the stage-2 draws used (for its noise parameters).
        """
        from .fit import KINDS

        if loss_kind not in KINDS:
            raise BayescaleError(
                f"loss_kind (the stage-1 loss draws pushed through stage 2) must be one of "
                f"{KINDS}, got {loss_kind!r}."
            )
        with np.errstate(over="ignore"):
            # a heavy-tailed (Student-t, small nu) predictive draw can overflow exp() to
            # +inf loss; stage 2 maps it to its chance-level end, quantiles are unaffected
            loss = self.loss_fit.draws(
                new, kind=loss_kind, random_seed=random_seed, extrapolation=extrapolation,
                shared_noise=shared_noise,
            ).values
        acc = self.accuracy_fit
        frame = self._stage2_frame(new, np.median(loss, axis=0))
        # its own stream: with stage 1's (the same seed: a joint fit, or two fits seeded
        # alike) both stages drew the same normals for new levels and drifts, and a higher
        # loss met a higher accuracy offset: the chained interval was far too narrow
        rng = acc._rng(random_seed, stream=2)
        from .model import param_draws

        params = param_draws(acc.spec, acc.posterior, frame, rng=rng)
        from .fit import n_samples

        s2 = n_samples(acc.posterior, params)
        s1 = loss.shape[0]
        s = min(s1, s2)
        # pair draw i of stage 1 with draw i of stage 2 (both are exchangeable
        # posterior samples); thin the longer one evenly when the counts differ
        i1 = np.linspace(0, s1 - 1, s).round().astype(int)
        i2 = np.linspace(0, s2 - 1, s).round().astype(int)
        params = {k: (v[i2] if v.shape[0] > 1 else v) for k, v in params.items()}
        return loss[i1], params, frame, rng, i2

    def _stage2_mean(self, frame: pd.DataFrame, loss: np.ndarray,
                     params: Mapping[str, np.ndarray]) -> np.ndarray:
        """Stage 2's law at ``loss`` draws ``(samples, rows)`` with paired ``params``."""
        acc = self.accuracy_fit
        args = [loss if inp == self.loss_input else frame[inp].to_numpy(dtype=float)[None, :]
                for inp in acc.law.inputs]
        return np.broadcast_to(np.asarray(acc.law(*args, **params), dtype=float), loss.shape)

    def _stage2_noise(self, mu: np.ndarray, frame: pd.DataFrame, rng: np.random.Generator,
                      i2: np.ndarray, *, shared: bool = False) -> np.ndarray:
        """Stage 2's likelihood draws around its law's values ``mu``.

        As :meth:`Fit.draws` draws them, with the paired draws ``i2`` of the noise
        parameters and run offsets (a fresh one for a run stage 2 never saw); ``shared``
        draws one noise quantile per sample for all rows.
        """
        acc = self.accuracy_fit
        return acc._predictive(mu, frame, rng, shared=shared, idx=i2,
                               data={"frame": frame, "train": acc.data, "spec": acc.spec})

    def stage_draws(
        self,
        new: pd.DataFrame | Mapping[str, Any],
        *,
        loss_kind: str | None = None,
        kind: str = "predictive",
        random_seed: int | None = None,
        extrapolation: bool | str = "auto",
        shared_noise: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Paired draws ``(loss, accuracy)``, each of shape ``(samples, rows)``.

        ``shared_noise`` as in :meth:`Fit.draws`, in both stages.
        """
        if not isinstance(shared_noise, (bool, np.bool_)):
            raise BayescaleError(f"shared_noise must be True or False, got {shared_noise!r}.")
        loss_kind = loss_kind or self.default_loss_kind
        new = self._new(new)
        loss, params, frame, rng, i2 = self._paired(
            new, loss_kind=loss_kind, random_seed=random_seed, extrapolation=extrapolation,
            shared_noise=shared_noise,
        )
        acc = self.accuracy_fit
        mu = self._stage2_mean(frame, loss, params)
        if kind == "mean":
            out = np.clip(mu, 0.0, 1.0)
        elif kind == "predictive":
            out = self._stage2_noise(mu, frame, rng, i2, shared=shared_noise)
        else:
            raise BayescaleError(f"kind must be 'predictive' or 'mean', got {kind!r}.")
        if acc._use_extrapolation(extrapolation):
            # stage 2's own drift, at the distance of each row's median loss beyond the
            # losses stage 2 was fitted on
            from .calibration import add_drift

            out = add_drift(acc, frame, out, rng)
        return loss, out

    def plot(self, **kwargs: Any):
        """The chained forecast against stage 1's scale (:func:`bayescale.plots.plot_chain`)."""
        from .plots import plot_chain

        return plot_chain(self, **kwargs)

    def report(self, target: pd.DataFrame | Mapping[str, Any] | None = None, **kwargs: Any):
        """Paper-ready report: the chained forecast and each stage's tables.

        See :func:`bayescale.report.report`.
        """
        from .report import report

        return report(self, target, **kwargs)

    def decompose(
        self,
        new: pd.DataFrame | Mapping[str, Any],
        *,
        loss_kind: str | None = None,
        extrapolation: bool | str = "auto",
    ) -> pd.DataFrame:
        """Split each row's predictive variance of stage 2 (accuracy: logit scale) by source.

        Columns:

        * ``loss``: stage 1's uncertainty about the loss (its parameters, noise and
          drift), pushed through stage 2's law: the spread of ``logit f(L_i)`` around
          ``logit f(median L)`` under paired draws.
          ``chain.loss_fit.decompose(new)`` splits it further on the log-loss scale;
        * ``parameter``: stage 2's parameters at the median loss;
        * ``noise``: stage 2's likelihood (Binomial sampling of ``n`` questions, ...);
        * ``extrapolation``: stage 2's drift at the distance of the median loss below
          its fitted losses (0 inside them);

        * ``covariance`` (a :class:`JointFit` only): the two stages' parameters come from
          one posterior and are correlated, so ``loss`` and ``parameter`` do not add up to
          the spread of the law's values; this term (usually negative) is what they miss,
          ``robust variance of logit f(L_i) - loss - parameter``;

        their ``total`` and each one's share. Variances are robust (squared normal-scaled
        IQR, :func:`bayescale.calibration.robust_variance`) of accuracies clipped to
        ``[0.001, 0.999]``, as :meth:`Fit.decompose` does for one stage.

        Examples
        --------
        >>> ch = bs.chain(loss_fit, acc_fit, loss_input="L")  # doctest: +SKIP
        >>> ch.decompose({"C": [1e23]})[["loss_share", "noise_share"]]  # doctest: +SKIP
        """
        from .calibration import (
            add_shares,
            drift_scale,
            extrapolation_variance,
            robust_variance,
            scale_decades,
            to_scale,
        )

        new_df = self._new(new)
        loss, params, frame, rng, i2 = self._paired(
            new_df, loss_kind=loss_kind or self.default_loss_kind, random_seed=None,
            extrapolation=extrapolation,
        )
        acc = self.accuracy_fit
        mu = self._stage2_mean(frame, loss, params)
        at_median = np.broadcast_to(np.median(loss, axis=0), loss.shape)
        mu_med = self._stage2_mean(frame, at_median, params)
        noisy = self._stage2_noise(mu, frame, rng, i2)

        scale = drift_scale(acc.law)

        def z(a: np.ndarray) -> np.ndarray:  # accuracies clipped to [LOGIT_EPS, 1 - LOGIT_EPS]
            return to_scale(a, scale, clip=True) if scale else a

        out = new_df.copy()
        out["loss"] = robust_variance(z(mu) - z(mu_med))
        out["parameter"] = robust_variance(z(mu_med))
        out["noise"] = robust_variance(z(noisy) - z(mu))
        drift = acc._use_extrapolation(extrapolation) and (scale_decades(acc, frame) > 0).any()
        out["extrapolation"] = extrapolation_variance(acc, frame) if drift else 0.0
        if self.correlated_stages:
            # one posterior: a steeper loss curve meets a stage 2 fitted to it (correlations
            # of -0.5 between the stages' parameters), so loss + parameter overstate the
            # law's spread; the covariance (negative) brings their sum to it
            out["covariance"] = robust_variance(z(mu)) - out["loss"] - out["parameter"]
        return self._with_index(add_shares(out, self.variance_sources), new)

    def draws(
        self,
        new: pd.DataFrame | Mapping[str, Any],
        *,
        loss_kind: str | None = None,
        kind: str = "predictive",
        random_seed: int | None = None,
        extrapolation: bool | str = "auto",
        shared_noise: bool = False,
    ) -> xr.Dataset:
        """Paired posterior draws of stage 1's loss and the chained accuracy.

        Returns an xarray Dataset with variables ``loss`` and ``accuracy``, dims
        ``("sample", "row")``. ``shared_noise`` as in :meth:`Fit.draws`, in both stages.
        """
        loss, acc = self.stage_draws(
            new,
            loss_kind=loss_kind,
            kind=kind,
            random_seed=random_seed,
            extrapolation=extrapolation,
            shared_noise=shared_noise,
        )
        rows = new.index if isinstance(new, pd.DataFrame) else np.arange(loss.shape[1])
        return xr.Dataset({"loss": (("sample", "row"), loss), "accuracy": (("sample", "row"), acc)},
                          coords={"row": np.asarray(rows)})

    def predict(
        self,
        new: pd.DataFrame | Mapping[str, Any],
        *,
        prob: float = 0.9,
        loss_kind: str | None = None,
        kind: str = "predictive",
        random_seed: int | None = None,
        extrapolation: bool | str = "auto",
        shared_noise: bool = False,
    ) -> pd.DataFrame:
        """Chained accuracy forecast with both stages' uncertainty.

        Parameters
        ----------
        new : DataFrame or dict
            Rows with stage 1's inputs (e.g. ``N``, ``D`` or ``C``) plus whatever
            stage 2 needs besides the loss (``chance``, group columns, ``n``).
        prob : float
            Central interval probability.
        loss_kind, kind : {"predictive", "mean"}
            Stage 1 and stage 2 draws with or without observation noise
            (``loss_kind`` defaults to ``default_loss_kind``: ``"predictive"`` for a
            chain, ``"mean"`` for a :class:`~bayescale.JointFit`).
        extrapolation : bool or "auto"
            Add each stage's calibrated discrepancy that grows beyond its fitted range
            (``"auto"``: on for loss and accuracy laws; computing it refits each stage
            at a few cutoffs, once per fit). Stage 2's distance is how far the median
            forecast loss falls below the smallest loss stage 2 was fitted on.
        shared_noise : bool
            Draw one noise quantile per sample for all rows, in both stages (as
            :meth:`Fit.predict`): each row's interval is unchanged, a band along a grid
            comes without Monte Carlo jitter (:meth:`plot` uses it).

        Returns
        -------
        DataFrame
            ``new`` plus ``loss_median``, ``loss_lower``, ``loss_upper`` (stage 1),
            ``mean``, ``median``, ``lower``, ``upper`` of the accuracy and
            ``extrapolation`` (stage 1's target scale / its largest fitted scale, as in
            :meth:`~bayescale.Fit.predict`).

        Examples
        --------
        >>> ch = bs.chain(loss_fit, acc_fit, loss_input="L")  # doctest: +SKIP
        >>> ch.predict({"N": [7e9], "D": [1.4e11], "chance": [0.25]})  # doctest: +SKIP
        """
        from .fit import _check_prob

        prob = _check_prob(prob)
        new_df = self._new(new)
        # Fit.predict's warnings: a group level either stage never saw (often a typo), a
        # target a million times beyond stage 1's data (often other units)
        for f in (self.loss_fit, self.accuracy_fit):
            f._warn_new_levels(new_df)
        ratio = self.loss_fit.extrapolation_ratio(new_df)
        labels = list(new.index) if isinstance(new, pd.DataFrame) else list(new_df.index)
        self.loss_fit._warn_far_beyond(ratio, "Row(s) of the new rows", labels)
        loss, acc = self.stage_draws(
            new_df,
            loss_kind=loss_kind,
            kind=kind,
            random_seed=random_seed,
            extrapolation=extrapolation,
            shared_noise=shared_noise,
        )
        qs = [0.5, (1 - prob) / 2, (1 + prob) / 2]
        ql = np.quantile(loss, qs, axis=0)
        qa = np.quantile(acc, qs, axis=0)
        out = new_df.copy()
        out["loss_median"], out["loss_lower"], out["loss_upper"] = ql
        out["mean"] = acc.mean(axis=0)
        out["median"], out["lower"], out["upper"] = qa
        out["extrapolation"] = ratio
        return self._with_index(out, new)


def chain(loss_fit: Fit, accuracy_fit: Fit, *, loss_input: str = "L") -> Chain:
    """Compose a loss fit and an accuracy-of-loss fit into a two-stage forecaster.

    Parameters
    ----------
    loss_fit : Fit
        Stage 1: loss as a function of scale (``power_law``, ``chinchilla``, ...).
    accuracy_fit : Fit
        Stage 2: accuracy as a function of that loss (``sigmoid_of_loss``,
        ``exp_error_of_loss``, ``onset_hinge_loss``).
    loss_input : str
        The input of stage 2's law that receives stage 1's loss (``"L"``).

    Returns
    -------
    Chain
        ``.predict(new, prob=0.9)`` and ``.draws(new)``.

    Examples
    --------
    >>> ch = chain(loss_fit, acc_fit)  # doctest: +SKIP
    >>> ch.predict({"C": [1e22], "chance": [0.25]}, prob=0.9)  # doctest: +SKIP
    """
    from .law import Law

    for what, f in (("loss_fit", loss_fit), ("accuracy_fit", accuracy_fit)):
        if not isinstance(getattr(f, "law", None), Law):
            raise BayescaleError(
                f"chain takes two fits (results of bs.fit: the loss law's, then the accuracy "
                f"law's); {what} is a {type(f).__name__}."
            )
    if loss_input not in accuracy_fit.law.inputs:
        raise BayescaleError(
            f"loss_input {loss_input!r} is not an input of the accuracy law "
            f"{accuracy_fit.law.name!r} (inputs {list(accuracy_fit.law.inputs)})."
        )
    if loss_fit.law.link != "log" and loss_fit.law.response != "loss":
        raise BayescaleError(
            f"Stage 1 should be a loss law; law {loss_fit.law.name!r} predicts "
            f"{loss_fit.law.response!r}."
        )
    if accuracy_fit.law.response != "accuracy":  # a loss pushed into a loss law, unsaid
        raise BayescaleError(
            f"Stage 2 should be an accuracy law of the loss (e.g. sigmoid_of_loss); law "
            f"{accuracy_fit.law.name!r} predicts {accuracy_fit.law.response!r}."
        )
    return Chain(loss_fit=loss_fit, accuracy_fit=accuracy_fit, loss_input=loss_input)
