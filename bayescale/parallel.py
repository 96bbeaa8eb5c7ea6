"""Scale-out: run many independent fits on any ``concurrent.futures.Executor``.

Backtests, leave-future-out refits and :func:`fit_many` submit one task per fit:
a picklable ``(data frame, law, fit keyword arguments)`` triple, and get a
picklable :class:`~bayescale.Fit` back. Every fit is seeded by its own
``random_seed``, so the results are identical whichever executor runs them.

Executors
---------
``executor=None`` (default)
    A local :class:`~concurrent.futures.ProcessPoolExecutor` with two workers and
    the ``"spawn"`` start method (JAX is multithreaded and deadlocks after ``fork``).
    One fit, or up to ``SERIAL_MAX_TASKS`` fits whose models are already compiled in
    this process (:func:`compiled_here`; e.g. the leave-future-out refits of laws just
    fitted), run in this process instead: a worker would compile them again.
``executor="processes"``
    The local process pool, always.
``executor="serial"``
    Run in this process, one fit after the other.
any ``concurrent.futures.Executor``
    Used as is (and not shut down). For a Dask cluster::

        from dask.distributed import Client
        client = Client("tcp://scheduler:8786")      # or Client(LocalCluster(...))
        fits = bs.fit_many(frames, "power_law", executor=client.get_executor())

    For Ray, wrap remote tasks in a four-line Executor (``ObjectRef.future()``
    returns a ``concurrent.futures.Future``)::

        import ray
        from concurrent.futures import Executor

        class RayExecutor(Executor):
            def submit(self, fn, /, *args, **kwargs):
                return ray.remote(fn).remote(*args, **kwargs).future()

        ray.init(address="auto")
        fits = bs.fit_many(frames, "power_law", executor=RayExecutor())

    Any executor whose ``submit`` returns a future with ``.result()`` works; the
    workers need bayescale installed and custom laws importable by module.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pandas as pd

from .data import series_frames
from .errors import BayescaleError
from .law import Law, get_law

#: Workers of the default local process pool.
DEFAULT_WORKERS = 2
#: With ``executor=None``, at most this many fits whose models are already compiled in this
#: process run here instead of in new workers, which would compile them again: nutpie's
#: compile (about 20 s a structure on 2 cores) costs as much as 15-30 refits (about 1 s),
#: so a pool of 2 workers only pays off for more fits than that.
SERIAL_MAX_TASKS = 8
#: Why the local pool fails when a script calls it at top level (Python's "spawn" start method).
UNGUARDED_SCRIPT = (
    "The local process pool starts each worker by running the calling script again (Python's "
    "'spawn' start method), so a script that calls bs.backtest, bs.compare(..., lfo=...), "
    "bs.fit_many, bs.sbc or bs.average at its top level must do so under "
    "`if __name__ == \"__main__\":`; or pass "
    "executor='serial' to fit in this process."
)


class SerialExecutor(Executor):
    """An executor that runs each task immediately in the calling process.

    Examples
    --------
    >>> SerialExecutor().submit(pow, 2, 10).result()
    1024
    """

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future:
        """Run ``fn(*args, **kwargs)`` now and return a finished future."""
        fut: Future = Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller via the future
            fut.set_exception(exc)
        return fut


def env_workers() -> int:
    """The local pool's size: ``BAYESCALE_WORKERS`` (a positive integer), else the default.

    Examples
    --------
    >>> env_workers() >= 1
    True
    """
    raw = os.environ.get("BAYESCALE_WORKERS")
    if raw is None or not raw.strip():
        return DEFAULT_WORKERS
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise BayescaleError(
            f"BAYESCALE_WORKERS (the number of local worker processes) must be a positive "
            f"integer, got {raw!r}; set it to e.g. 2, or unset it for the default "
            f"({DEFAULT_WORKERS})."
        )
    return n


@contextlib.contextmanager
def executor_context(executor: Executor | str | None) -> Iterator[Executor]:
    """Resolve ``executor=`` to an Executor; pools created here are shut down after.

    ``None`` -> local spawn process pool (``DEFAULT_WORKERS`` workers, or
    ``BAYESCALE_WORKERS``), ``"serial"`` -> :class:`SerialExecutor`, an Executor
    -> itself.
    """
    check_executor(executor)
    if executor is None or executor == "processes":
        if getattr(multiprocessing.current_process(), "_inheriting", False):
            # a worker re-running the caller's script while it starts: say why, at once
            raise BayescaleError(UNGUARDED_SCRIPT)
        workers = env_workers()
        pool = ProcessPoolExecutor(
            max_workers=workers, mp_context=multiprocessing.get_context("spawn")
        )
        try:
            yield pool
        except BrokenProcessPool as err:
            raise BayescaleError(
                f"A worker of the local process pool stopped before its fit was done ({err}). "
                f"{UNGUARDED_SCRIPT} Otherwise the machine may be short of memory: set "
                "BAYESCALE_WORKERS=1."
            ) from err
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
    elif executor == "serial":
        yield SerialExecutor()
    else:
        yield executor  # type: ignore[misc]


def check_executor(executor: Any) -> None:
    """Raise a clear error for an ``executor=`` that :func:`executor_context` cannot use.

    Valid: None, ``"processes"``, ``"serial"`` or an Executor (anything with ``submit``).
    """
    if executor is None or executor in ("processes", "serial"):
        return
    if isinstance(executor, str):
        raise BayescaleError(
            f"executor must be None (local processes), 'serial' or a "
            f"concurrent.futures.Executor, got {executor!r}."
        )
    if not hasattr(executor, "submit"):
        raise BayescaleError(
            f"executor must be None, 'serial' or a concurrent.futures.Executor (e.g. "
            f"dask's client.get_executor()); got {type(executor).__name__}."
        )


def _law_ref(law: str | Law) -> str | Law:
    """Send registered laws by name (cheap, always importable), others as objects."""
    obj = get_law(law)
    try:
        if get_law(obj.name) is obj:
            return obj.name
    except BayescaleError:
        pass
    return obj


_QUIET_LOCK = threading.Lock()
_quiet: dict[str, Any] = {"depth": 0, "saved": None}


@contextlib.contextmanager
def no_progress() -> Iterator[None]:
    """No progress bars inside (the nested fits of a task).

    The caller's setting is restored after: a task may run in the caller's own process
    (``executor="serial"``, or few fits already compiled there). Tasks overlapping on
    threads (a ThreadPoolExecutor) share one setting: the last to leave restores it.
    """
    with _QUIET_LOCK:
        if _quiet["depth"] == 0:
            _quiet["saved"] = os.environ.get("BAYESCALE_NO_PROGRESS")
            os.environ["BAYESCALE_NO_PROGRESS"] = "1"
        _quiet["depth"] += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _quiet["depth"] -= 1
            if _quiet["depth"] == 0:
                if _quiet["saved"] is None:
                    os.environ.pop("BAYESCALE_NO_PROGRESS", None)
                else:
                    os.environ["BAYESCALE_NO_PROGRESS"] = _quiet["saved"]


def fit_task(data: pd.DataFrame, law: str | Law, kwargs: Mapping[str, Any], *,
             relay: bool = False):
    """One fit, run in a worker: ``bayescale.fit(data, law, **kwargs)`` without warnings.

    Sampling problems are kept in ``fit.diagnostics["problems"]`` and re-raised as
    warnings in the calling process by :func:`run_fits`. ``relay``: return
    ``(fit, warnings)`` instead, the fit's own data, prior and pooling warnings as
    ``(category, message)`` pairs, for the caller to say (a worker process's warnings
    would be lost; the refits of a comparison repeat the user's fit's and keep quiet).
    """
    from .errors import (
        DataWarning,
        ExtrapolationWarning,
        PoolingWarning,
        PriorWarning,
        collected,
    )
    from .fit import fit

    kw = dict(kwargs)
    kw["warn"] = False
    kw.setdefault("progressbar", False)
    # bayescale's own warnings are kept in a list local to this thread (collected), so
    # tasks overlapping on a thread pool keep theirs apart; other libraries' warnings are
    # ignored on the main thread only: the warning filters are one per process, and a
    # task on a thread that set and reset them could leave the caller's warnings off
    on_main = threading.current_thread() is threading.main_thread()
    said = (DataWarning, PriorWarning, PoolingWarning, ExtrapolationWarning)
    with warnings.catch_warnings() if on_main else contextlib.nullcontext(), \
            collected() as got, no_progress():
        if on_main:
            warnings.simplefilter("ignore")
        if relay:  # what warn=False leaves out besides the sampling problems
            from .fit import warn_one_ratio, warn_repeated_rows

            warn_repeated_rows(data, law, y=kw.get("y"), x=kw.get("x"),
                               pooled=kw.get("pooled"), run=kw.get("run"))
        out = fit(data, law, **kw)
        if relay:  # once the data passed the validation
            warn_one_ratio(data, law, x=kw.get("x"))
    if not relay:
        return out
    kept = [(c, m) for c, m in got if issubclass(c, said)]
    return out, list(dict.fromkeys(kept))  # each once, in order


_SPEC_KEYS = ("y", "x", "priors", "pooled", "run", "likelihood", "group_scale", "correlated",
              "trials", "levels")


def compiled_here(tasks: Sequence[tuple[pd.DataFrame, str | Law, Mapping[str, Any]]]) -> bool:
    """Whether every task's model is already compiled in this process for its sampler.

    Such fits cost only their sampling here (a data swap), while a new worker process
    would compile the model again. ``False`` when in doubt (a sampler that compiles at
    every call, a likelihood still to be chosen, data the validation refuses).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1.0, 2, 4, 8, 16, 32], "loss": [3, 2.6, 2.3, 2.1, 2.0, 1.9]})
    >>> compiled_here([(df, "power_law", {"sampler": "pymc"})])
    False
    """
    from .compiled import _CACHE, choose_sampler, structure_key
    from .fit import prepare_spec

    for data, law, kw in tasks:
        sampler = kw.get("sampler", "auto")
        if sampler == "auto":
            sampler = choose_sampler()
        if sampler not in ("nutpie", "jax") or kw.get("likelihood") in (None, "auto"):
            return False
        spec_kw = {"y": None, "x": None, "priors": None}
        spec_kw.update({k: kw[k] for k in _SPEC_KEYS if k in kw})
        try:
            with warnings.catch_warnings():  # the fit itself warns, once
                warnings.simplefilter("ignore")
                spec, _ = prepare_spec(data, law, **spec_kw)
        except Exception:  # noqa: BLE001 - the fit itself will report it
            return False
        entry = _CACHE.get(structure_key(spec))
        if entry is None:
            return False
        ready = (entry._nutpie is not None if sampler == "nutpie"
                 else entry._jax is not None or bool(entry._programs))  # built or loaded
        if not ready:
            return False
    return True


def run_fits(
    tasks: Sequence[tuple[pd.DataFrame, str | Law, Mapping[str, Any]]],
    *,
    executor: Executor | str | None = None,
    warn: bool = True,
    labels: Sequence[str] | None = None,
    relay: bool = False,
) -> list:
    """Run ``fit_task`` for every ``(data, law, kwargs)`` and return the fits in order.

    ``relay``: say each fit's data, prior and pooling warnings here, after its label (as
    :func:`bayescale.fit` would have said them; :func:`fit_many`'s series).
    """
    from .errors import warn as say
    from .sampling import warn_problems

    if not tasks:
        return []
    if executor is None and (
        len(tasks) == 1 or (len(tasks) <= SERIAL_MAX_TASKS and compiled_here(tasks))
    ):
        executor = "serial"  # a process pool only pays off for several fits to compile
    with executor_context(executor) as ex:
        futures = [ex.submit(fit_task, d, _law_ref(law), dict(kw), relay=relay)
                   for d, law, kw in tasks]
        fits = [f.result() for f in futures]
    if relay:
        fits, told = [f for f, _ in fits], [w for _, w in fits]
        for i, said in enumerate(told):
            what = labels[i] if labels is not None else f"fit {i} ({fits[i].law.name})"
            for category, message in said:
                say(f"{what}: {message}", category)
    if warn:
        for i, f in enumerate(fits):
            what = labels[i] if labels is not None else f"fit {i} ({f.law.name})"
            warn_problems(dict(f.diagnostics), what)
    return fits


def fit_many(
    frames: Mapping[Any, pd.DataFrame] | Sequence[pd.DataFrame] | pd.DataFrame | Any,
    law: str | Law,
    *,
    by: str | Sequence[str] | None = None,
    executor: Executor | str | None = None,
    warn: bool = True,
    **fit_kwargs: Any,
):
    """Fit one law to many independent series (per curve, per task) in parallel.

    Parameters
    ----------
    frames : dict or list of DataFrame, a ``DataFrameGroupBy``, or one DataFrame with ``by``
        One tidy frame per series: ``{name: frame}``, ``[frame, ...]``,
        ``df.groupby("curve")`` or ``df`` with ``by="curve"`` (a dict of fits keyed by the
        labels; several columns: tuples).
    law : str or Law
        The law fitted to every frame.
    by : str or list of str, optional
        Column(s) of a single ``frames`` DataFrame whose labels split it into series.
    executor : None, "serial", "processes" or concurrent.futures.Executor
        Where the fits run. None: here for one fit, or for up to 8 whose models this
        process has compiled already (a new worker would compile again), else a local
        2-process spawn pool; ``"processes"``: always that pool; ``"serial"``: always
        here. Any Executor (``dask.distributed.Client(...).get_executor()``, Ray's
        executor) scales out.
    warn : bool
        Emit a :class:`~bayescale.SamplingWarning` per fit with sampling problems, and
        each fit's data, prior and pooling warnings (repeated rows, priors moved to the
        data's units) in this process, after its series' label (on any executor, a
        thread pool too); ``False``: none of them.
    **fit_kwargs
        Passed to :func:`bayescale.fit` (``y=``, ``x=``, ``sampler=``, ``draws=``,
        ``random_seed=``...). Every fit uses the same ``random_seed``.

    Returns
    -------
    dict or list of Fit
        Same keys (or order) as ``frames``. Identical to a serial run for a fixed seed.

    Examples
    --------
    >>> fits = bs.fit_many({"a": df_a, "b": df_b}, "power_law", x={"x": "C"},
    ...                    sampler="nutpie", random_seed=1)  # doctest: +SKIP
    >>> fits = bs.fit_many(curves, "power_law", by="curve")  # doctest: +SKIP
    """
    keys, items = series_frames(frames, "fit_many", by)
    if not items:  # as fit_batch: an empty result would hide a selection that kept nothing
        raise BayescaleError("fit_many needs at least one data frame, got none.")
    labels = [f"series {k!r}" for k in (keys if keys is not None else range(len(items)))]
    from .fit import check_series

    check_executor(executor)
    check_series(items, law, labels, **fit_kwargs)  # before any series is sampled
    fits = run_fits(
        [(d, law, fit_kwargs) for d in items], executor=executor, warn=warn, labels=labels,
        relay=warn,
    )
    return dict(zip(keys, fits)) if keys is not None else fits
