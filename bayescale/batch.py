"""Many independent fits of one model structure as one vectorised JAX program.

:func:`fit_batch` fits K series (tasks, cutoffs, simulated datasets, ...) of the
same law with the same priors. The K log densities are the same jitted JAX
export of the PyMC model (data as arguments), and NumPyro's NUTS kernel runs
``vmap`` over series and chains in one XLA program; series with fewer rows are
padded and the padding is masked out of the likelihood. Each series gets the
answer of a separate ``bs.fit(..., sampler="jax", random_seed=seed_k)`` within
Monte Carlo error (not bit for bit: padding changes floating-point sums, and
vectorised chains advance in lock-step).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .compiled import choose_sampler, sample_batch
from .data import series_frames
from .errors import BayescaleError
from .fit import MODEL_ARGS, Fit, _prepare, check_series
from .law import Law
from .sampling import (
    SEED_LIMIT,
    accept_record,
    accept_steps,
    check_settings,
    check_tree_depth,
    diagnose,
    raise_if_never_started,
    seed_or_chosen,
    warn_problems,
)


def _frames_by_key(func: Callable[..., list[Fit]]) -> Callable[..., Any]:
    """Let ``func`` take its series as :func:`bayescale.fit_many` does.

    A dict of frames, a ``DataFrameGroupBy`` or one DataFrame with ``by=`` give a dict of
    fits with the same keys (:func:`bayescale.data.series_frames`); anything but
    DataFrames is refused with an error that says what to pass.
    """

    @functools.wraps(func)
    def wrapper(frames: Any, *args: Any, by: str | Sequence[str] | None = None,
                **kwargs: Any) -> Any:
        keys, items = series_frames(frames, func.__name__, by)
        if keys is not None and items and (args or "law" in kwargs):
            # each series' data checked first, its error named by its key, as fit_many's
            # (the fits below know the series by position only)
            law = args[0] if args else kwargs["law"]
            check_series(items, law, [f"series {k!r}" for k in keys],
                         **{k: v for k, v in kwargs.items() if k in MODEL_ARGS})
        fits = func(items, *args, **kwargs)
        return dict(zip(keys, fits, strict=True)) if keys is not None else fits

    return wrapper


@_frames_by_key
def fit_batch(
    frames: Sequence[pd.DataFrame] | Mapping[Any, pd.DataFrame],
    law: str | Law,
    *,
    y: str | None = None,
    x: Mapping[str, str] | None = None,
    priors: Mapping[str, Any] | None = None,
    pooled: Any = None,
    run: str | None = None,
    likelihood: str | None = "auto",
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | Sequence[int] | None = None,
    target_accept: float | str = "auto",
    max_tree_depth: int = 10,
    group_scale: Mapping[str, float] | None = None,
    trials: str | None = None,
    sampler: str = "jax",
    warn: bool = False,
    levels: Mapping[str, Sequence[Any]] | None = None,
    _index: Sequence[int] | None = None,
) -> list[Fit]:
    """Fit one law to each of several independent data frames in one JAX program.

    Parameters
    ----------
    frames : list of DataFrame, dict of them, a ``DataFrameGroupBy``, or one DataFrame
        One tidy frame per series (each as :func:`bayescale.fit` takes it). The
        frames may have different numbers of rows; pooled models need the same
        number of group levels in every frame. A dict (name -> frame), ``df.groupby(col)``
        or one DataFrame with ``by=col`` (keyword) gives a dict of fits keyed by name or
        label.
    law, y, x, priors, pooled, run, likelihood, group_scale, trials
        As in :func:`bayescale.fit`, shared by every series. ``likelihood="auto"``
        (default) chooses per series, as :func:`bayescale.fit` does: on the JAX path one batch
        with the law's likelihood, then one batch of ``"ar1"`` refits for the series
        whose residuals are autocorrelated.
    draws, tune, chains, target_accept, max_tree_depth
        NUTS settings, shared by every series. ``target_accept="auto"`` (default), as in
        :func:`bayescale.fit`: the series whose fit has divergent transitions are sampled
        again at 0.95, then 0.99 (:data:`bayescale.sampling.TARGET_ACCEPT_STEPS`), with
        their own seeds; on the JAX path as one smaller batch per step (the rate is an
        argument of the program: a batch of another size is a new XLA program, another
        rate is not). Each fit's ``settings`` record ``target_accept_used`` and,
        after a retry, ``target_accept_steps``.
    random_seed : int or list of int, optional
        Seed of each series; an int ``s`` gives series ``k`` the seed ``s + k``, so
        ``bs.fit(frames[k], law, sampler="jax", random_seed=s + k)`` is its separate
        counterpart. Without one a base seed is chosen and recorded, as in :func:`fit`.
    sampler : {"jax", "nutpie", "auto"}
        ``"jax"`` (default): one vmapped JAX program for all series. ``"nutpie"``:
        one nutpie compilation, then a data swap and a sequential fit per series
        (faster on a CPU, where vmapped NUTS advances all chains in lock-step and
        every iteration costs as much as the longest trajectory of any series).
        ``"auto"``: ``"jax"`` on a GPU (where the batch pays), ``"nutpie"`` on CPU.
    warn : bool
        Warn about sampling problems of each series (default off: K warnings).
    levels : dict, optional
        ``{column: labels}``: every level of a ``run`` or ``pooled`` column, as in
        :func:`bayescale.fit`. Series share one program only when they have the same
        number of levels; declaring the union of their runs lets series with different
        runs share it (a series' absent runs take the population's offsets).

    Returns
    -------
    list of Fit
        One :class:`Fit` per frame, in order (a dict of them for a dict of frames), with
        ``settings["sampler"]`` ``"jax-batch"`` on the JAX path and ``"nutpie"`` on nutpie's
        (``sampler="nutpie"``, or ``"auto"`` on a CPU).

    Examples
    --------
    >>> import bayescale as bs
    >>> fits = bs.fit_batch([df_a, df_b], "power_law", x={"x": "N"},
    ...                     random_seed=0)  # doctest: +SKIP
    >>> [f.summary().loc["alpha", "mean"] for f in fits]  # doctest: +SKIP
    """
    check_tree_depth(max_tree_depth)
    one_seed = random_seed is None or np.ndim(random_seed) == 0
    for s in [random_seed] if one_seed else random_seed:
        check_settings(draws, tune, chains, target_accept, s, auto_ok=True)
    frames = list(frames)
    if not frames:
        raise BayescaleError("fit_batch needs at least one data frame, got an empty list.")
    if one_seed:  # no seed: one is chosen and recorded, as bs.fit does
        base = int(seed_or_chosen(random_seed))
        seeds = [base + k for k in range(len(frames))]
        if seeds[-1] >= SEED_LIMIT:
            raise BayescaleError(
                f"random_seed={base} gives series k the seed {base} + k, which passes 2**64 "
                f"for {len(frames)} series; give a smaller seed or one seed per frame."
            )
    else:
        if any(s is None for s in random_seed):  # int(None): a bare TypeError
            raise BayescaleError(
                f"random_seed lists one int per frame, got {list(random_seed)!r}; give every "
                "frame a seed, or one int (series k gets it + k), or None to choose one."
            )
        seeds = [int(s) for s in random_seed]
        if len(seeds) != len(frames):
            raise BayescaleError(
                f"random_seed has {len(seeds)} seeds for {len(frames)} frames; give one per "
                "frame or a single int."
            )
    # each series' position in the user's frames (the refits of likelihood="auto" are a
    # batch of some of them), for warnings and errors
    index = list(_index) if _index is not None else list(range(len(frames)))
    if sampler == "auto":
        sampler = choose_sampler(batch=True)
    if sampler not in ("jax", "nutpie"):
        raise BayescaleError(
            f"fit_batch sampler must be 'jax', 'nutpie' or 'auto', got {sampler!r}."
        )
    # what defines each series' model (the same for every series)
    model_kw = dict(y=y, x=x, priors=priors, pooled=pooled, run=run, likelihood=likelihood,
                    group_scale=group_scale, trials=trials, levels=levels)
    if likelihood == "auto" and sampler == "jax":
        kw = {k: v for k, v in model_kw.items() if k != "likelihood"}
        kw.update(draws=draws, tune=tune, chains=chains, target_accept=target_accept,
                  max_tree_depth=max_tree_depth, sampler="jax", warn=warn)
        return _batch_auto(frames, law, seeds, kw)
    if sampler == "nutpie":
        from .fit import fit

        check_series(frames, law, [f"series {k}" for k in range(len(frames))], **model_kw)
        return [
            fit(df, law, **model_kw, sampler="nutpie", draws=draws, tune=tune, chains=chains,
                random_seed=seed, target_accept=target_accept, warn=warn,
                max_tree_depth=max_tree_depth)
            for df, seed in zip(frames, seeds)
        ]
    prepared = []
    for k, df in enumerate(frames):
        try:
            prepared.append(_prepare(df, law, **model_kw, correlated=False))
        except BayescaleError as e:
            raise type(e)(f"series {index[k]}: {e}") from e
    specs, fdata, models = (list(t) for t in zip(*prepared))
    idatas, diags, records, timing = _sample_stepping_down(
        specs, models, fdata, seeds, target_accept,
        dict(draws=draws, tune=tune, chains=chains, max_tree_depth=max_tree_depth), index,
    )
    out = []
    for k, (spec, frame, idata, diag) in enumerate(zip(specs, fdata, idatas, diags)):
        if warn:
            warn_problems(diag, f"batched fit {index[k]} of law {spec.law.name!r}")
        settings = {
            "sampler": "jax-batch",
            "draws": draws,
            "tune": tune,
            "chains": chains,
            "random_seed": seeds[k],
            "target_accept": target_accept,
            "sampler_kwargs": {"max_tree_depth": max_tree_depth},  # refits repeat it
            **records[k],
            "batch_size": len(frames),
            "timing": dict(timing),  # each fit its own (the batch's totals)
        }
        out.append(Fit(spec=spec, data=frame, idata=idata, settings=settings, diagnostics=diag))
    return out


def _sample_stepping_down(
    specs: list, models: list, frames: list, seeds: list, target_accept: float | str,
    nuts: dict[str, Any], index: list[int],
) -> tuple[list, list, list[dict[str, Any]], dict[str, Any]]:
    """One batch at the first rate, then one batch per rate of the series still divergent.

    The batched counterpart of :func:`bayescale.sampling.sample_stepping_down`: each
    series ends with the draws of ``bs.fit(..., target_accept="auto")``'s loop (within
    Monte Carlo error). Returns per series the InferenceData, its diagnostics and the
    settings to record, and the timings summed over the batches.
    """
    idatas: list = [None] * len(specs)
    diags: list = [None] * len(specs)
    tries: list[list[tuple[float, int]]] = [[] for _ in specs]
    timing: dict[str, Any] = {}
    todo = list(range(len(specs)))
    for accept in accept_steps(target_accept):
        got, t = sample_batch(
            [specs[k] for k in todo], [models[k] for k in todo], [frames[k] for k in todo],
            random_seeds=[seeds[k] for k in todo], target_accept=accept, **nuts,
        )
        for name, v in t.items():
            timing[name] = timing.get(name, 0.0) + v
        for k, idata in zip(todo, got):
            spec = specs[k]
            names = [p for p in spec.law.params if spec.priors[p].dist != "Fixed"]
            diag = diagnose(idata, names + list(spec.noise_params))
            raise_if_never_started(models[k], idata,
                                   f"series {index[k]} of law {spec.law.name!r}",
                                   spec.law.link)
            idatas[k], diags[k] = idata, diag
            tries[k].append((accept, diag["divergences"]))
        todo = [k for k in todo if diags[k]["divergences"]]
        if not todo:
            break
    records = [accept_record(t) for t in tries]
    return idatas, diags, records, timing


def _batch_auto(frames: list[pd.DataFrame], law: Any, seeds: list, kw: dict[str, Any]) -> list[Fit]:
    """``likelihood="auto"`` on the JAX path, in two batches.

    One batch with the law's likelihood, then one of ``"ar1"`` refits for the series
    whose residuals call for it.
    """
    from .autocorr import auto_choice
    from .fit import auto_priors, unused_note

    first_priors, later = auto_priors(law, kw.get("priors"))
    warn = kw.pop("warn", False)  # once, below, for the fits returned (not those replaced)
    fits = fit_batch(frames, law, likelihood=None, random_seed=seeds, warn=False,
                     **dict(kw, priors=first_priors))
    why = [auto_choice(f) for f in fits]
    if later:
        why = [(c, w if c == "ar1" else w + unused_note(later)) for c, w in why]
    redo = [k for k, f in enumerate(fits) if why[k][0] != f.spec.likelihood]
    if redo:  # auto_choice only ever moves a Student-t fit to "ar1"
        refits = fit_batch([frames[k] for k in redo], law, likelihood="ar1",
                           random_seed=[seeds[k] for k in redo], warn=False, _index=redo, **kw)
        for k, f in zip(redo, refits):
            fits[k] = f
    for k, f in enumerate(fits):
        f.settings["likelihood_choice"] = f"auto -> {why[k][1]}"
        if warn:
            warn_problems(f.diagnostics, f"batched fit {k} of law {f.law.name!r}")
    return fits
