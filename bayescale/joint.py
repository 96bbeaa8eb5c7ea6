"""Joint two-stage model: scale -> loss -> accuracy fitted as ONE PyMC model.

:func:`fit_joint` is the joint counterpart of :func:`bayescale.chain`. The chain
fits stage 1 (a loss law of ``N``, ``D`` or ``C``) and stage 2 (an accuracy law of
the loss) separately and composes their posteriors draw by draw; here both laws
live in one ``pm.Model`` and are sampled together, so

* accuracy-only rows (a model whose task loss was not recorded) inform stage 1's
  loss curve, and loss-only rows inform the loss scale at which stage 2 is fitted;
* stage 2's input is stage 1's *latent* loss, not a noisy measured one, so the
  posterior carries the correlation between the two stages' parameters.

Why ``fit_joint`` and not ``chain(..., joint=True)``
----------------------------------------------------
``bs.chain`` takes two *fitted* stages and only composes them; a joint model
cannot be made from fits, it has to be sampled from data. So the joint option is a
fitting function, named like the other fitting entry points (``bs.fit``,
``bs.fit_batch``, ``bs.fit_many``) and taking data and two laws, as a PyMC user
would write one model with two likelihoods. It returns a :class:`JointFit`, a
:class:`~bayescale.Chain` whose two stages are views of the one joint posterior,
so ``predict`` / ``draws`` / ``stage_draws`` behave exactly as on a chain
(draw *i* of stage 1 is pushed through draw *i* of stage 2: here those are the
same joint posterior draw).

The latent loss (decision)
--------------------------
Stage 2 receives the stage-1 law's **mean** loss at each row, ``L_i = f1(N_i, D_i)``,
without stage 1's observation noise. The loss likelihood's noise (Student-t on log
loss) is treated as noise of the *measured* loss (evaluation sampling, seeds) that
the accuracy does not share. Adding the noise would need one latent loss per row
(an errors-in-variables model with ``rows`` extra parameters) and would be
equivalent, for rows whose loss is observed, to the chain's use of the observed
loss. Prediction is consistent with the fit: :meth:`JointFit.predict` pushes the
mean loss (``loss_kind="mean"``, the default here; ``"predictive"`` is allowed but
adds noise the model never saw between the stages). The latent loss of every
accuracy row is stored as ``accuracy::latent_loss`` in the posterior.

Model layout
------------
PyMC sub-models ``loss`` and ``accuracy`` prefix every variable (``loss::E``,
``accuracy::k``); each stage is built by :func:`bayescale.model.add_law` /
:func:`~bayescale.model.add_likelihood` from the stage's
:class:`~bayescale.model.ModelSpec` (the same priors, centring and likelihoods as
``bs.fit``). Stage 1's law is evaluated on every row (dim ``loss_row``: the loss
rows first, then the accuracy-only rows); its likelihood uses the loss rows
(``loss_obs``), stage 2's the accuracy rows (``acc_obs``). Stage 2's likelihood is
the accuracy law's own, as in ``bs.fit`` (Binomial for ``sigmoid_of_loss``,
beta-binomial for ``onset_hinge_loss``, Beta for ``exp_error_of_loss``), Beta in place
of a count likelihood when no trial counts are given; ``accuracy_likelihood=`` overrides.

Not supported yet: pooling (``pooled=``), ``run=`` offsets and the compiled-sampler
cache (the joint model has two row dimensions; it is sampled by
:func:`bayescale.sampling.sample`: nutpie, or NumPyro where nutpie is missing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from . import data as _data
from .chain import Chain
from .errors import BayescaleError, DataError, LawError, did_you_mean
from .law import Law, get_law
from .model import ModelSpec, add_law, add_likelihood

#: Prefixes of the two PyMC sub-models.
STAGES = ("loss", "accuracy")


def _as_fit_group(da: Any) -> Any:
    """A stage's variable of the joint InferenceData as a fit's: ``y_obs`` over ``obs``."""
    import numpy as np

    last = da.dims[-1]
    da = da.rename({last: "obs"}) if last != "obs" else da
    return da.assign_coords(obs=np.arange(da.sizes["obs"])).to_dataset(name="y_obs")


@dataclass(frozen=True)
class JointFit(Chain):
    """Result of :func:`fit_joint`: a :class:`~bayescale.Chain` from one joint posterior.

    ``loss_fit`` and ``accuracy_fit`` are :class:`~bayescale.Fit` views of the
    joint posterior (their ``summary``, ``predict`` and ``draws`` work as usual;
    stage 2's training ``L`` column holds the posterior median latent loss).
    ``idata`` is the joint InferenceData (variables prefixed ``loss::`` and
    ``accuracy::``).
    """

    correlated_stages: ClassVar[bool] = True  # decompose's covariance term
    idata: Any = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    diagnostics: Mapping[str, Any] = field(default_factory=dict)
    layout: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("model", None)
        return state

    @cached_property
    def model(self):
        """The joint ``pm.Model`` (rebuilt from the stored specs and rows)."""
        return build_joint_model(
            self.loss_fit.spec,
            self.loss_fit.data,
            self.layout["frame_all"],
            self.accuracy_fit.spec,
            self.accuracy_fit.data,
            np.asarray(self.layout["acc_pos"]),
            loss_input=self.loss_input,
        )

    @property
    def posterior(self):
        """The joint posterior group (xarray Dataset)."""
        return self.idata.posterior

    @property
    def var_names(self) -> list[str]:
        """Free population parameters of both stages, with their ``stage::`` prefix."""
        return _free_names(self.loss_fit.spec, "loss") + _free_names(
            self.accuracy_fit.spec, "accuracy"
        )

    @property
    def ok(self) -> bool:
        """True when sampling reported no problem."""
        return not self.diagnostics["problems"]

    def __repr__(self) -> str:
        from .sampling import problems_text, rhat_text

        d = self.diagnostics
        status = "ok" if self.ok else "PROBLEMS: " + problems_text(d["problems"])
        return (
            f"<bayescale.JointFit loss_law={self.loss_fit.law.name!r} "
            f"accuracy_law={self.accuracy_fit.law.name!r} loss_rows={len(self.loss_fit.data)} "
            f"accuracy_rows={len(self.accuracy_fit.data)} chains={d['chains']} "
            f"draws={d['draws']} divergences={d['divergences']} "
            f"max_rhat={rhat_text(d['max_rhat'])} [{status}]>"
        )

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Posterior table of both stages' parameters (``arviz.summary``)."""
        import arviz as az

        from .fit import _check_prob

        return az.summary(self.idata, var_names=self.var_names, hdi_prob=_check_prob(prob),
                          round_to="none")  # as Fit.summary

    #: The joint model feeds stage 2 the latent *mean* loss, so that is the default
    #: stage-1 draw pushed through by ``stage_draws``/``draws``/``predict`` (a chain's
    #: default is the predictive loss). ``loss_kind="mean"`` makes the loss columns of
    #: ``predict`` describe that mean; ``jf.loss_fit.predict(new)`` gives a new model's
    #: measured loss.
    default_loss_kind: ClassVar[str] = "mean"


def _free_names(spec: ModelSpec, stage: str) -> list[str]:
    names = [p for p in spec.law.params if spec.priors[p].dist != "Fixed"]
    names += [p for p in spec.noise_params if spec.priors[p].dist != "Fixed"]
    return [f"{stage}::{p}" for p in names]


def build_joint_model(
    spec1: ModelSpec,
    frame1: pd.DataFrame,
    frame_all: pd.DataFrame,
    spec2: ModelSpec,
    frame2: pd.DataFrame,
    acc_pos: np.ndarray,
    *,
    loss_input: str = "L",
):
    """Build the joint ``pm.Model`` (see the module docstring for the layout).

    ``frame1``: validated loss rows (``y`` the loss); ``frame_all``: stage 1's inputs
    for the loss rows (first, same order) and then the accuracy-only rows;
    ``frame2``: validated accuracy rows; ``acc_pos``: position in ``frame_all`` of
    each accuracy row.
    """
    import pymc as pm

    n1 = len(frame1)
    coords = {
        "loss_row": np.arange(len(frame_all)),
        "loss_obs": np.arange(n1),
        "acc_obs": np.arange(len(frame2)),
    }
    with pm.Model(coords=coords) as model:
        with pm.Model(name=STAGES[0]):
            mu_all, idx1 = add_law(spec1, frame_all, dim="loss_row")
            add_likelihood(
                spec1, frame1, mu_all[:n1], {g: v[:n1] for g, v in idx1.items()},
                dim="loss_obs",
            )
        with pm.Model(name=STAGES[1]):
            latent = pm.Deterministic("latent_loss", mu_all[acc_pos], dims="acc_obs")
            mu2, idx2 = add_law(spec2, frame2, dim="acc_obs", inputs={loss_input: latent})
            add_likelihood(spec2, frame2, mu2, idx2, dim="acc_obs")
    return model


def _present(data: pd.DataFrame, col: str) -> np.ndarray:
    """Rows where ``col`` holds a value (NaN / None / empty string count as missing)."""
    s = data[col]
    text = s.dtype == object or pd.api.types.is_string_dtype(s.dtype)  # pandas 3: "str"
    blank = s.astype(str).str.strip().eq("").fillna(False).astype(bool) if text else False
    return (s.notna() & ~blank).to_numpy(dtype=bool)


def _stage_posterior(post: xr.Dataset, stage: str) -> xr.Dataset:
    prefix = f"{stage}::"
    keep = [v for v in post.data_vars if str(v).startswith(prefix)]
    return post[keep].rename({v: str(v)[len(prefix):] for v in keep})


#: bs.fit's arguments that fit_joint names per stage (or does not take), and what to use.
JOINT_NAMES = {
    "priors": "give loss_priors= and accuracy_priors=, one per stage",
    "likelihood": "give loss_likelihood= and accuracy_likelihood=, one per stage",
    "x": "give loss_x= and accuracy_x=, one per stage",
    "y": "give loss= (the loss column) and accuracy= (the accuracy column)",
    "extrapolation": "it is an argument of predict and draws, not of the fit",
}


def fit_joint(
    data: pd.DataFrame,
    loss_law: str | Law,
    accuracy_law: str | Law,
    *,
    loss: str = "loss",
    accuracy: str | None = None,
    loss_x: Mapping[str, str] | None = None,
    accuracy_x: Mapping[str, Any] | None = None,
    loss_priors: Mapping[str, Any] | None = None,
    accuracy_priors: Mapping[str, Any] | None = None,
    loss_likelihood: str | None = None,
    accuracy_likelihood: str | None = None,
    trials: str | None = None,
    loss_input: str = "L",
    sampler: str = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    target_accept: float | str = "auto",
    progressbar: bool | None = None,
    warn: bool = True,
    **sampler_kwargs: Any,
) -> JointFit:
    """Fit scale -> loss -> accuracy as one Bayesian model (both stages jointly).

    Parameters
    ----------
    data : DataFrame
        One row per model: stage 1's inputs (``N``, ``D`` or ``C``, mapped with
        ``loss_x``), the loss column, and the accuracy (an accuracy column, or
        ``correct`` and ``n`` counts) plus stage 2's other inputs (``chance``).
        A row may have a loss only, an accuracy only, or both (missing = NaN).
    loss_law : str or Law
        Stage 1: loss as a function of scale (``"power_law"``, ``"chinchilla"``...).
    accuracy_law : str or Law
        Stage 2: accuracy as a function of the loss (``"sigmoid_of_loss"``,
        ``"exp_error_of_loss"``, ``"onset_hinge_loss"``).
    loss : str
        Loss column (stage 1's response).
    accuracy : str, optional
        Accuracy column; default ``"accuracy"``, or counts from ``correct`` / ``n``.
    loss_x, accuracy_x : dict, optional
        ``{input: column}`` per stage, e.g. ``loss_x={"x": "C"}``,
        ``accuracy_x={"chance": 0.25}``. Stage 2's ``loss_input`` is latent and is
        not mapped.
    loss_priors, accuracy_priors : dict, optional
        Prior overrides by parameter name, as in :func:`bayescale.fit`.
    loss_likelihood : str, optional
        Stage 1's likelihood (default the law's: Student-t on log loss).
    accuracy_likelihood : str, optional
        Stage 2's likelihood: default the accuracy law's (as :func:`bayescale.fit`),
        ``"beta"`` in place of a count likelihood when there is no trials column
        (``n`` or ``trials=``).
    trials : str, optional
        Column with the number of trials (questions) per row (default ``"n"``).
    loss_input : str
        The input of the accuracy law that receives the latent loss (``"L"``).
    sampler : {"auto", "nutpie", "numpyro", "pymc", "blackjax"}
        Passed to :func:`bayescale.sampling.sample` (``"auto"``: nutpie, on a GPU
        machine too, where small fits run faster on the host's CPU; NumPyro if nutpie
        is not installed there).
    draws, tune, chains, random_seed, target_accept, progressbar
        As in :func:`bayescale.fit` (``target_accept="auto"``: sampled again with smaller
        steps while the fit has divergent transitions).
    warn : bool
        Emit a :class:`~bayescale.SamplingWarning` for sampling problems.

    Returns
    -------
    JointFit
        ``.predict(new, prob=0.9)``, ``.draws(new)``, ``.summary()``, ``.loss_fit``,
        ``.accuracy_fit``, ``.idata``.

    Examples
    --------
    >>> jf = bs.fit_joint(df, "power_law", "sigmoid_of_loss", loss_x={"x": "C"},
    ...                   accuracy_x={"chance": 0.25}, random_seed=1)  # doctest: +SKIP
    >>> jf.predict({"C": [1e23], "n": [1000]}, prob=0.9)  # doctest: +SKIP
    """
    from .compiled import choose_sampler
    from .fit import Fit, prepare_spec
    from .likelihoods import get_likelihood
    from .sampling import (
        SAMPLERS,
        check_settings,
        sample,
        sample_stepping_down,
        seed_or_chosen,
        warn_problems,
    )

    check_settings(draws, tune, chains, target_accept, random_seed, auto_ok=True)
    random_seed = seed_or_chosen(random_seed)  # recorded: forecasts repeat their draws
    per_stage = sorted(set(JOINT_NAMES) & set(sampler_kwargs))
    if per_stage:
        name = per_stage[0]
        raise BayescaleError(
            f"fit_joint has no {name}= (it went to the sampler, which ignored it): "
            f"{JOINT_NAMES[name]}."
        )
    unsupported = sorted({"pooled", "run", "correlated", "group_scale", "levels"}
                         & set(sampler_kwargs))
    if unsupported:
        raise BayescaleError(
            f"fit_joint does not support {unsupported} yet; fit the stages separately with "
            "bs.fit(..., pooled=...) and compose them with bs.chain(loss_fit, accuracy_fit)."
        )
    law1, law2 = get_law(loss_law), get_law(accuracy_law)
    if law1.link != "log" and law1.response != "loss":
        raise LawError(
            f"Stage 1 of fit_joint must be a loss law; law {law1.name!r} predicts "
            f"{law1.response!r}."
        )
    if law2.response != "accuracy":
        raise LawError(
            f"Stage 2 of fit_joint must be an accuracy law; law {law2.name!r} predicts "
            f"{law2.response!r}."
        )
    if loss_input not in law2.inputs:
        raise LawError(
            f"loss_input {loss_input!r} is not an input of the accuracy law {law2.name!r} "
            f"(inputs {list(law2.inputs)})."
        )
    if loss_input in (accuracy_x or {}):
        raise DataError(
            f"accuracy_x maps {loss_input!r}, but in the joint model stage 2's loss is latent "
            "(stage 1's curve), not a column; drop it from accuracy_x (use bs.chain to fit "
            "stage 2 on measured losses)."
        )
    if sampler != "auto" and sampler not in SAMPLERS:
        raise BayescaleError(f"sampler must be 'auto' or one of {SAMPLERS}, got {sampler!r}.")
    data = _data.as_frame(data)
    if len(data) == 0:
        raise DataError("The DataFrame is empty: there is nothing to fit.")
    if not data.index.is_unique:
        data = data.reset_index(drop=True)

    # ------------------------------------------------------------- which rows per stage
    if loss not in data.columns:
        raise DataError(
            f"Loss column {loss!r} (stage 1's response) is missing."
            f"{did_you_mean(loss, data.columns)} Available columns: "
            f"{list(data.columns)}. Pass loss='your_column'."
        )
    if accuracy is not None:
        acc_col = accuracy
    elif "accuracy" in data.columns:
        acc_col = "accuracy"
    else:
        acc_col = "correct"
    if acc_col not in data.columns:
        raise DataError(
            f"Accuracy column {accuracy or 'accuracy'!r} (stage 2's response) is missing, and "
            f"there is no 'correct' count column.{did_you_mean(acc_col, data.columns)} "
            f"Available columns: {list(data.columns)}. "
            "Pass accuracy='your_column', or give 'correct' and 'n'."
        )
    has_loss = _present(data, loss)
    has_acc = _present(data, acc_col)
    if not has_loss.any():
        raise DataError(
            f"No row has a loss in column {loss!r}: the joint model needs stage-1 rows. "
            "Fit the accuracy alone with bs.fit."
        )
    if not has_acc.any():
        raise DataError(
            f"No row has an accuracy in column {acc_col!r}: the joint model needs stage-2 "
            "rows. Fit the loss alone with bs.fit."
        )
    neither = ~(has_loss | has_acc)
    if neither.any():
        raise DataError(
            f"Rows with neither a loss ({loss!r}) nor an accuracy ({acc_col!r}): "
            f"{_data._rows(neither, data.index)}. Drop them (predict them with "
            ".predict() after fitting)."
        )

    # ------------------------------------------------------------- stage specs
    spec1, frame1 = prepare_spec(
        data.loc[has_loss], law1, y=loss, x=loss_x, priors=loss_priors,
        likelihood=loss_likelihood,
    )
    n_col = trials or "n"
    # the law's own likelihood, as bs.fit uses it (betabinomial for onset_hinge_loss, beta
    # for exp_error_of_loss); a count likelihood without trial counts fits the scores (beta)
    lik2 = accuracy_likelihood or law2.likelihood
    if (accuracy_likelihood is None and get_likelihood(lik2).needs_trials
            and n_col not in data.columns):
        lik2 = "beta"
    acc_rows = data.loc[has_acc].copy()
    # the latent loss enters as a tensor; a constant placeholder column at the geometric
    # mean of the observed losses passes validation and sets the centre of location
    # priors on the loss axis (e.g. sigmoid_of_loss's L0)
    acc_rows[loss] = float(np.exp(np.mean(np.log(frame1["y"].to_numpy()))))
    y2 = acc_col
    if acc_col == "correct":
        if n_col not in data.columns:
            raise DataError(
                f"Counts in 'correct' need the number of trials per row: column {n_col!r} is "
                f"missing.{did_you_mean(n_col, data.columns)} Available columns: "
                f"{list(data.columns)}. Add it or pass trials=."
            )
        if not get_likelihood(lik2).needs_trials:
            # a non-count likelihood (beta) is fitted to the fraction correct
            acc_rows, y2, _ = _data.prepare_counts(
                acc_rows, y="correct", trials=n_col, response="accuracy"
            )
    spec2, frame2 = prepare_spec(
        acc_rows,
        law2,
        y=y2,
        x={**dict(accuracy_x or {}), loss_input: loss},
        priors=accuracy_priors,
        likelihood=lik2,
        trials=trials,
    )
    only_acc = has_acc & ~has_loss
    frame_all = _data.validate(
        pd.concat([data.loc[has_loss], data.loc[only_acc]]),
        law1, y=None, x=loss_x, require_y=False,
    )
    pos = {lab: i for i, lab in enumerate(frame_all.index)}
    acc_pos = np.array([pos[lab] for lab in frame2.index], dtype=int)
    model = build_joint_model(
        spec1, frame1, frame_all, spec2, frame2, acc_pos, loss_input=loss_input
    )

    # ------------------------------------------------------------- sample
    chosen = sampler
    if sampler == "auto":
        chosen = "numpyro" if choose_sampler() == "jax" else "nutpie"
    settings = {
        "sampler": chosen,
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": random_seed,
        "target_accept": target_accept,
    }
    if chosen == "nutpie":
        # as on the compiled path: a low-rank mass-matrix correction captures the
        # (E, alpha, A) correlation of saturating loss laws
        nkw = dict(sampler_kwargs.pop("nuts_sampler_kwargs", {}))
        nkw.setdefault("low_rank_modified_mass_matrix", True)
        sampler_kwargs["nuts_sampler_kwargs"] = nkw
    def draw(accept: float):
        return sample(model, sampler=chosen, draws=draws, tune=tune, chains=chains,
                      random_seed=random_seed, target_accept=accept, progressbar=progressbar,
                      **sampler_kwargs)

    idata, diag, record = sample_stepping_down(
        draw, target_accept, model=model,
        names=_free_names(spec1, "loss") + _free_names(spec2, "accuracy"),
        what=f"the joint fit of {law1.name!r} -> {law2.name!r}", link=law1.link,
    )
    settings.update(record)
    if warn:
        warn_problems(diag, f"joint fit of {law1.name!r} -> {law2.name!r}")

    # ------------------------------------------------------------- stage views
    import arviz as az

    post = idata.posterior
    views = []
    for stage, spec, frame in ((STAGES[0], spec1, frame1), (STAGES[1], spec2, frame2)):
        sub = _stage_posterior(post, stage)
        if stage == STAGES[1]:
            frame = frame.copy()
            frame[loss_input] = sub["latent_loss"].median(("chain", "draw")).values
        # each stage's pointwise log-likelihood and observations, named as a fit's
        # (y_obs over obs), so that fit.loo() and bs.compare work on a view
        groups = {}
        for group in ("log_likelihood", "observed_data"):
            data = getattr(idata, group, None)
            var = f"{stage}::y_obs"
            if data is not None and var in data:
                groups[group] = _as_fit_group(data[var])
        view_idata = az.InferenceData(posterior=sub, sample_stats=idata.sample_stats, **groups)
        views.append(
            Fit(spec=spec, data=frame, idata=view_idata, settings=settings, diagnostics=diag)
        )
    result = JointFit(
        loss_fit=views[0],
        accuracy_fit=views[1],
        loss_input=loss_input,
        idata=idata,
        settings=settings,
        diagnostics=diag,
        layout={"frame_all": frame_all, "acc_pos": acc_pos.tolist()},
    )
    result.__dict__["model"] = model
    return result
