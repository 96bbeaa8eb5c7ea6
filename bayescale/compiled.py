"""Compile once, refit many: cached samplers keyed by the model *structure*.

A bayescale model's graph depends only on its structure: the law, the priors,
the pooling, the likelihood, the run column and the number of levels of each
group. Everything else (law inputs, ``y``, group indices, bounds, data centres)
is a ``pm.Data`` array (see :func:`bayescale.model.build_model`), so a compiled
sampler can be reused for new data by swapping those arrays.

Two compiled paths share one cache entry per structure:

``"nutpie"``
    nutpie's numba backend (``nutpie.compile_pymc_model`` once, then
    ``compiled.with_data(**arrays)``, which takes about 0.1 ms). Fastest on CPU
    for the small models of scaling-law work.
``"jax"``
    PyMC's JAX export of the log density with the data as *arguments*
    (``pymc.sampling.jax.get_jaxified_graph`` on a graph whose shared variables
    are replaced by symbolic inputs), sampled by NumPyro's NUTS kernel
    (``numpyro.infer.hmc.hmc(potential_fn_gen=...)``) inside one jitted program.
    Rows are padded to a bucket size (a power of two) and masked in the
    likelihood, so a refit with another number of rows reuses the same XLA
    program. The same program vmapped over series gives :func:`fit_batch`.

Across processes, the JAX path keeps its compiled XLA programs in JAX's persistent
compilation cache (:func:`compilation_cache_dir`: ``$BAYESCALE_JAX_CACHE``, else
``$XDG_CACHE_HOME/bayescale/jax`` or ``~/.cache/bayescale/jax``; ``BAYESCALE_JAX_CACHE=0``
turns it off; a cache directory the user configured in JAX is left alone), so a new
process that fits a structure fitted before skips the XLA compilation.

The JAX path's programs (initial point, NUTS, posterior and log-likelihood functions) are
also exported with :mod:`jax.export` and stored on disk (:mod:`bayescale.programs`), so a
new process loads them without PyTensor's rewrites or JAX's tracing.

``COMPILE_COUNTS`` counts the expensive steps (nutpie compilations, JAX graph
exports, XLA program traces, and programs loaded from disk as ``jax_load``), so tests can
check that a refit recompiles nothing.
"""

from __future__ import annotations

import os
import threading
import time
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import BayescaleError

#: Number of expensive compilations per kind since import (or :func:`clear_cache`).
COMPILE_COUNTS: Counter = Counter()

_CACHE: dict[tuple, CompiledStructure] = {}
_LOCK = threading.Lock()
#: held while a structure compiles (re-entrant: a program builds the JAX functions)
_COMPILE_LOCK = threading.RLock()

#: Samplers served from the cache (``bs.fit(sampler=...)``).
COMPILED_SAMPLERS = ("nutpie", "jax")

#: Smallest row bucket of the JAX path (rows are padded up to a power of two).
MIN_BUCKET = 16

#: Key of NUTS's target acceptance rate among the JAX programs' data arguments (a traced
#: value, so every rate runs one compiled program).
TARGET_ACCEPT = "__target_accept__"


def structure_key(spec) -> tuple:
    """Hashable key of everything that shapes the model graph apart from data values.

    Law (by its code where it can be read, else by identity: a copy of a law with other
    priors, or the same law defined again, reuses the compiled model), priors, pooling,
    likelihood, run column, group scales,
    correlation flag and the *number* of levels of each group. Data values, the
    number of rows, centres, reference scales, bounds and level labels are not
    part of it: they are ``pm.Data`` and swapped at refit time.

    Examples
    --------
    >>> import bayescale as bs
    >>> from bayescale.model import make_spec
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x": [1.0, 2, 4, 8, 16], "y": [3.0, 2.5, 2.2, 2.0, 1.9]})
    >>> law = bs.get_law("power_law")
    >>> k1 = structure_key(make_spec(df, law, priors=None, pooled={}, likelihood=None,
    ...                              x={}, y="loss"))
    >>> k2 = structure_key(make_spec(df.iloc[:4] * 2, law, priors=None, pooled={},
    ...                              likelihood=None, x={}, y="loss"))
    >>> k1 == k2
    True
    """
    d = spec.to_dict()
    for k in ("log_centres", "log_refs", "bounds", "x", "y", "trials"):
        d.pop(k, None)  # (the trials column's name only labels it)
    d["levels"] = {g: len(v) for g, v in spec.levels.items()}
    d["law"] = _law_key(spec.law)
    d["bounds_keys"] = sorted(spec.bounds)
    return _freeze(d)


def _law_key(law) -> tuple:
    """The law as :func:`structure_key` sees it: what shapes its graph, not its priors."""
    code = _code_id(law.func)
    if code is None:
        # no readable source (a REPL, exec) or a value of unknown kind: the law's identity
        # (the cache entry holds the law, so its id stays unique) and what it reads that
        # can be pinned down, so that a changed global number, array or dict builds anew
        return (law.name, id(law), _captured_ids(law.func, strict=False,
                                                  stack=(id(law.func),)))
    return (law.name, code, _freeze({
        "inputs": law.inputs, "params": law.params, "terms": law.terms,
        "locations": law.locations, "log10_positions": law.log10_positions,
        "link": law.link, "positive_inputs": law.positive_inputs,
    }))


#: packages whose functions a user's law may call: named, not hashed (their versions or,
#: for bayescale, its source are part of every stored program's key)
_LIBRARIES = {"bayescale", "numpy", "pytensor", "pymc", "jax", "scipy", "math", "builtins"}


#: how deep the user's functions calling functions are followed (law -> helper -> ...)
CODE_DEPTH = 4


def _code_id(func: Any, stack: tuple = ()) -> Any:
    """Where ``func`` lives, plus, outside bayescale and the libraries, what it computes with.

    For a user's function: a hash of its source, the values its closure captured and the
    module globals it names (numbers, strings, arrays, and other functions of the user's,
    followed :data:`CODE_DEPTH` levels deep: a global read by a helper's helper counts;
    ``stack`` holds the functions being keyed around this one, and one of them met again
    counts by name: recursion). None when any of
    that cannot be pinned down (no source, an object of another kind, deeper calls): its
    programs then stay in memory.
    """
    import hashlib
    import inspect

    module = getattr(func, "__module__", None) or ""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", "")
    if module.split(".")[0] in _LIBRARIES:
        return (module, name)
    if id(func) in stack:
        return (module, name, "recursive")
    if len(stack) > CODE_DEPTH or inspect.ismethod(func):
        return None  # a bound method reads its object's state (self.scale): not pinned
    try:
        src = inspect.getsource(func)
    except (OSError, TypeError):
        return None
    inner = (*stack, id(func))
    captured = _captured_ids(func, stack=inner)
    # default arguments (def slope(x, s=S)) are values it computes with too
    defaults = _value_id([list(getattr(func, "__defaults__", None) or ()),
                          dict(getattr(func, "__kwdefaults__", None) or {})], inner)
    if captured is None or defaults is None:
        return None
    # the code as loaded besides its file's text: a file edited but not reloaded (or
    # reloaded after a fit) has new text and old code, and the two keyed alike
    loaded = _bytecode_digest(func.__code__) if hasattr(func, "__code__") else ""
    return (module, name, hashlib.sha256(src.encode()).hexdigest(), loaded, defaults,
            *captured)


def _bytecode_digest(code: Any) -> str:
    """A hash of a code object as loaded: its bytecode, names and constants, nested code too.

    Line numbers are left out (moving a function changes nothing it computes); constants
    are hashed by type and value, sets in sorted order (the same in every process).

    Examples
    --------
    >>> def f(x):
    ...     return 2.0 * x
    >>> def g(x):
    ...     return 3.0 * x
    >>> _bytecode_digest(f.__code__) == _bytecode_digest(g.__code__)
    False
    """
    import hashlib
    import types

    h = hashlib.sha256()

    def const_text(c: Any) -> str:
        if isinstance(c, (frozenset, set)):
            return f"{type(c).__name__}({sorted(const_text(v) for v in c)})"
        if isinstance(c, tuple):
            return f"tuple({[const_text(v) for v in c]})"
        return f"{type(c).__name__}:{c!r}"

    def feed(co: types.CodeType) -> None:
        h.update(co.co_code)
        h.update(repr((co.co_names, co.co_varnames, co.co_freevars, co.co_cellvars,
                       co.co_argcount, co.co_kwonlyargcount, co.co_flags)).encode())
        for c in co.co_consts:
            if isinstance(c, types.CodeType):
                feed(c)
            else:
                h.update(const_text(c).encode())

    feed(code)
    return h.hexdigest()


def _captured_ids(func: Any, strict: bool = True, stack: tuple = ()) -> tuple | None:
    """The values ``func`` captured in its closure and the module globals it names.

    ``strict``: None when one of them cannot be pinned down, else that one counts by its
    identity.
    """
    code = getattr(func, "__code__", None)
    if code is None:
        return None if strict else ()
    cells = [c.cell_contents for c in (func.__closure__ or ())]
    read = _names_read(code)
    names = [n for n in read if n in getattr(func, "__globals__", {})]
    values = cells + [func.__globals__[n] for n in names]
    parts: list = []
    for v in values:
        vid = _value_id(v, stack)
        if vid is not None and vid[0] == "module" and vid[1].split(".")[0] not in _LIBRARIES:
            # a user's module: the values the function may read from it (cfg.SCALE)
            attrs = [_value_id(getattr(v, a), stack) if hasattr(v, a) else "-"
                     for a in read]
            vid = None if any(a is None for a in attrs) else (*vid, tuple(attrs))
        if vid is None:
            if strict:
                return None
            vid = ("object", id(v))
        parts.append(vid)
    return tuple(parts)


def _names_read(code: Any) -> tuple[str, ...]:
    """The global and attribute names ``code`` reads, nested functions included.

    Lambdas, functions and comprehensions defined inside it are code objects among its
    constants; the names they read count as its own.

    Examples
    --------
    >>> def f(x):
    ...     scaled = lambda v: v * X_SCALE
    ...     return sum(w * cfg.B for w in scaled(x))
    >>> sorted(set(_names_read(f.__code__)) - {"sum"})
    ['B', 'X_SCALE', 'cfg']
    """
    import types

    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names += _names_read(const)
    return tuple(dict.fromkeys(names))


def _value_id(v: Any, stack: tuple = ()) -> Any:
    import hashlib
    import types

    if v is None or isinstance(v, (bool, int, float, complex, str, bytes, np.generic)):
        return repr(v)
    if isinstance(v, (tuple, list)):
        ids = [_value_id(x, stack) for x in v]
        return None if any(i is None for i in ids) else tuple(ids)
    if isinstance(v, dict):  # a configuration read by the law (CFG["p"])
        ids = [(repr(k), _value_id(x, stack)) for k, x in v.items()]
        return None if any(i is None for _, i in ids) else ("dict", tuple(sorted(ids)))
    if isinstance(v, np.ndarray):
        digest = hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
        return (str(v.dtype), v.shape, digest)
    if isinstance(v, types.ModuleType):
        return ("module", v.__name__)
    from .law import Law

    if isinstance(v, Law):  # a law calling another user law: by that law's code
        code = _code_id(v.func, stack)
        return None if code is None else ("law", v.name, code)
    if callable(v):
        return _code_id(v, stack)
    return None


def stable_structure_key(spec, key: tuple | None = None) -> tuple | None:
    """:func:`structure_key` with the law and likelihood named by their code, not identity.

    The same in every process, so it can key programs stored on disk
    (:mod:`bayescale.programs`). None when a law or likelihood function cannot be pinned
    down (:func:`_code_id`: no readable source, say, or a captured object of unknown
    kind): its programs then stay in memory.
    """
    from .likelihoods import get_likelihood

    key = structure_key(spec) if key is None else key
    law = spec.law
    lik = get_likelihood(spec.likelihood)
    parts = [_code_id(law.func)] + [_code_id(f) for f in (lik.build, lik.draw, lik.logpdf) if f]
    if any(p is None for p in parts):
        return None
    law_desc = _freeze({
        "name": law.name, "inputs": law.inputs, "params": law.params, "terms": law.terms,
        "locations": law.locations, "link": law.link, "code": parts,
    })
    return tuple((k, law_desc) if k == "law" else (k, v) for k, v in key)


def _freeze(o: Any) -> Any:
    if isinstance(o, Mapping):
        return tuple(sorted((k, _freeze(v)) for k, v in o.items()))
    if isinstance(o, (list, tuple)):
        return tuple(_freeze(v) for v in o)
    if isinstance(o, np.ndarray):  # a prior's mu=np.array(-1.2): hashable, by value
        return o.item() if o.ndim == 0 else ("array", o.shape, _freeze(o.tolist()))
    if isinstance(o, np.generic):
        o = o.item()
    if isinstance(o, float) and np.isnan(o):
        return "nan"
    return o


_ACCELERATORS = {"gpu", "tpu", "cuda", "rocm"}


def choose_sampler(*, batch: bool = False, one_shot: bool = False) -> str:
    """Pick the sampler for ``sampler="auto"`` (measurements in ``docs/throughput.md``).

    * One fit, CPU or GPU machine: ``"nutpie"`` (``"jax"`` if nutpie is missing). On the
      2-core CPU machine nutpie was faster than every JAX path at every size measured
      (less compile time, fewer gradient evaluations per draw, 1-1.5 s refits). On an
      H100 host, NUTS on the GPU is latency-bound: a 240-row Chinchilla refit took
      14-16 s there against about 1 s with nutpie on the host's CPU, and nutpie
      stayed ahead up to the largest size measured (100,000 rows: the same wall time,
      5x the effective sample size).
    * Many series at once (``batch=True``: :func:`bayescale.fit_batch`,
      :func:`bayescale.sbc`) on a GPU/TPU: ``"jax"``, one vectorised program for all
      series and chains (the cost per series falls with their number: 12, 4.7 and
      1.0 s for 1, 10 and 92 learning curves on an H100). On CPU: ``"nutpie"``.
    * One job in a new process (``one_shot=True``: the command line, whose every call is
      a new process) on CPU: ``"jax"``. nutpie compiles its model afresh in every process
      (about 20 s: its numba wrappers cannot be cached), while the JAX path stores its
      programs on disk (:mod:`bayescale.programs`) and loads them in the next process: the
      README's command (a fit and a calibrated forecast with three inner fits) took 27 s
      on a fresh machine and 16 s afterwards, against 35 s every time with nutpie and
      54 / 41 s with ``pm.sample(nuts_sampler="numpyro")`` (with the six inner fits of
      ``cut_by="worst"``: 38 s and 22 s on the JAX path). On a GPU machine: ``"nutpie"``
      (the JAX path would run on the latency-bound GPU).

    Examples
    --------
    >>> choose_sampler() in {"nutpie", "jax"}
    True
    """
    import pymc.sampling.jax  # noqa: F401  (host device count is set before JAX starts)

    from .sampling import jax_platform

    platform = jax_platform()
    if batch and platform in _ACCELERATORS:
        return "jax"
    if one_shot and platform not in _ACCELERATORS:
        return "jax"
    return "nutpie" if _nutpie_installed() else "jax"


@contextmanager
def numba_compile_context():
    """Compile a model for nutpie reproducibly and quietly.

    * PyTensor's numba disk cache is off. With it warm, nutpie's wrapper calls the cached
      log density instead of compiling it along with the wrapper, numba builds different
      machine code, and the floating-point results differ: the same seed gave other draws
      (8 divergences instead of 0 on a real learning curve; ``tests/test_throughput.py``)
      depending on whether an earlier process had compiled the same graph. Compiling
      afresh keeps the draws of a seed the same from process to process on one machine
      (numba compiles for the host CPU, so another CPU may still differ), for about 4 s
      more per structure (``benchmarks/results/throughput_cpu_compile.md``), more for
      models compiled at every fit (``correlated=True``). ``BAYESCALE_NUMBA_CACHE=1``
      leaves the cache to PyTensor's settings: faster compiles, but the draws of a seed
      then depend on what the cache held (the test suite opts in for speed; its
      reproducibility test runs the default).
    * Numba's performance warnings about PyTensor's generated code are not shown: nothing
      a user can act on.
    """
    import pytensor
    from numba.core.errors import NumbaPerformanceWarning

    flags = {} if os.environ.get("BAYESCALE_NUMBA_CACHE") == "1" else {"numba__cache": False}
    with pytensor.config.change_flags(**flags), warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaPerformanceWarning)
        yield


def _nutpie_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("nutpie") is not None


def clear_cache() -> None:
    """Forget every compiled structure (and its programs) and reset :data:`COMPILE_COUNTS`.

    Programs stored on disk (:mod:`bayescale.programs`) stay and are loaded again.
    """
    with _LOCK:
        _CACHE.clear()
        COMPILE_COUNTS.clear()


def model_arrays(model) -> dict[str, np.ndarray]:
    """Return the current values of every ``pm.Data`` container of ``model``, by name."""
    return {v.name: np.asarray(v.get_value()) for v in model.data_vars}


def bucket(n: int) -> int:
    """Return the padded row count of the JAX path: the next power of two, at least 16.

    Examples
    --------
    >>> bucket(240), bucket(256), bucket(3)
    (256, 256, 16)
    """
    return max(MIN_BUCKET, 1 << (max(int(n), 1) - 1).bit_length())


@dataclass
class CompiledStructure:
    """Compiled samplers and helpers for one model structure (one cache entry)."""

    key: tuple
    template: Any  # pm.Model built on the first data seen
    obs_data: tuple[str, ...]  # names of pm.Data arrays with the "obs" dim
    data_names: tuple[str, ...]
    value_names: tuple[str, ...]
    #: ``key`` with the law and likelihood described by their code instead of their
    #: identity (the same in every process), or None when their code cannot be read
    stable_key: Any = None
    #: the law the model was built with: held, so that a key by its identity stays unique
    law: Any = None
    _nutpie: Any = None
    _jax: dict[str, Any] | None = None
    _programs: dict[tuple, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------- nutpie
    def nutpie_model(self):
        """Return the nutpie-compiled model (numba backend), compiling it on first use."""
        if self._nutpie is None:
            with _COMPILE_LOCK:  # fits on threads (fit_many on a ThreadPoolExecutor): once
                if self._nutpie is None:
                    import nutpie

                    COMPILE_COUNTS["nutpie"] += 1
                    with numba_compile_context():
                        self._nutpie = nutpie.compile_pymc_model(self.template,
                                                                 backend="numba")
        return self._nutpie

    def sample_nutpie(
        self,
        arrays: Mapping[str, np.ndarray],
        *,
        draws: int,
        tune: int,
        chains: int,
        random_seed: int | None,
        target_accept: float,
        progress_bar: bool = False,
        **kwargs: Any,
    ):
        """Sample with nutpie after swapping the data; returns nutpie's InferenceData."""
        import nutpie

        compiled = self.nutpie_model()
        # a low-rank correction of the diagonal mass matrix captures the (E, alpha, A)
        # correlation of saturating laws: measured on a power law, 20 -> 6 leapfrog
        # steps per draw, ESS 240 -> 1320 per 2000 draws, r_hat 1.013 -> 1.005
        kwargs.setdefault("low_rank_modified_mass_matrix", True)
        with _LOCK:
            # the template's initial-point function reads the shared variables: set them
            # too, so that a swapped refit starts where a fresh compile would.
            for v in self.template.data_vars:
                v.set_value(np.array(arrays[v.name], dtype=v.dtype, copy=True))
            # writeable copies: pandas' copy-on-write hands out read-only arrays, which
            # nutpie's initial-point function cannot use
            swapped = compiled.with_data(
                **{k: np.array(arrays[k], copy=True) for k in compiled.shared_data}
            )
            try:
                idata = nutpie.sample(
                    swapped,
                    draws=draws,
                    tune=tune,
                    chains=chains,
                    seed=random_seed,
                    save_warmup=False,
                    progress_bar=progress_bar,
                    target_accept=target_accept,
                    **kwargs,
                )
            except (AttributeError, TypeError) as exc:
                from .sampling import nutpie_option_error

                err = nutpie_option_error(exc, kwargs)
                if err is None:
                    raise
                raise err from None
        return idata

    # -------------------------------------------------------------------- JAX
    def jax_functions(self) -> dict[str, Any]:
        """Jaxified log density, initial point, posterior and log-likelihood functions.

        Each takes ``(values: dict, data: dict)`` (data: the model arrays by name plus
        ``"__mask__"``, 1.0 for real rows and 0.0 for padding).
        """
        if self._jax is None:
            with _COMPILE_LOCK:
                if self._jax is None:
                    self._jax = _jaxify(self)
        return self._jax

    def program(self, kind: str, **static: Any):
        """Jitted sampling program for fixed settings (traced once per settings/shape)."""
        key = (kind, tuple(sorted(static.items())))
        prog = self._programs.get(key)
        if prog is None:
            with _COMPILE_LOCK:
                prog = self._programs.get(key)
                if prog is None:
                    prog = _make_program(self, kind, **static)
                    self._programs[key] = prog
        return prog


def get_structure(spec, model, frame=None) -> CompiledStructure:
    """Return the cache entry for ``spec``'s structure, created from ``model`` if absent.

    With ``frame`` the entry gets its own copy of the model (``build_model(spec,
    frame)``), so that swapping data into the template never alters ``model``.
    """
    key = structure_key(spec)
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            return hit
        if frame is not None:
            from .model import build_model

            model = build_model(spec, frame)
        dims = model.named_vars_to_dims
        obs = tuple(v.name for v in model.data_vars if dims.get(v.name) == ("obs",))
        entry = CompiledStructure(
            key=key,
            stable_key=stable_structure_key(spec, key),
            law=spec.law,
            template=model,
            obs_data=obs,
            data_names=tuple(v.name for v in model.data_vars),
            value_names=tuple(v.name for v in model.value_vars),
        )
        _CACHE[key] = entry
        return entry


# ------------------------------------------------------------------------------------------
# JAX export


def _enable_x64() -> None:
    # PyMC's JAX module asks XLA for 100 host devices, read when JAX starts: imported
    # first, the chains of sampler="jax" run on devices (pmap) whichever JAX call of
    # bayescale comes first (a batch once started JAX with one device: vmap, other draws)
    import jax
    import pymc.sampling.jax  # noqa: F401

    jax.config.update("jax_enable_x64", True)
    enable_compilation_cache()


def compilation_cache_dir() -> str | None:
    """Directory of the persistent XLA compilation cache used by the JAX path.

    ``$BAYESCALE_JAX_CACHE`` if set (``"0"`` or ``""``: no cache), else
    ``$XDG_CACHE_HOME/bayescale/jax`` (default ``~/.cache/bayescale/jax``).

    Examples
    --------
    >>> import os
    >>> os.environ["BAYESCALE_JAX_CACHE"] = "/tmp/bs-jax"
    >>> compilation_cache_dir()
    '/tmp/bs-jax'
    >>> del os.environ["BAYESCALE_JAX_CACHE"]
    """
    import os
    from pathlib import Path

    env = os.environ.get("BAYESCALE_JAX_CACHE")
    if env is not None:
        return None if env.strip() in {"", "0"} else env
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(base) / "bayescale" / "jax")


def enable_compilation_cache() -> str | None:
    """Point JAX's persistent compilation cache at :func:`compilation_cache_dir`.

    Programs that took over a second to compile are written there and loaded by later
    processes (about 6 s saved on the first Chinchilla fit of a process on 2 CPU cores,
    ``docs/throughput.md``). Does nothing when the user already set
    ``jax_compilation_cache_dir`` or turned the cache off. Returns the directory in use.
    """
    import jax

    current = jax.config.jax_compilation_cache_dir
    if current:
        return current
    path = compilation_cache_dir()
    if path is None:
        return None
    try:
        jax.config.update("jax_compilation_cache_dir", path)
    except Exception:  # pragma: no cover - an old or locked JAX config: run without
        return None
    return path


def _jaxify(entry: CompiledStructure) -> dict[str, Any]:
    import pytensor.tensor as pt
    from pymc.initial_point import make_initial_point_expression
    from pymc.sampling.jax import get_jaxified_graph
    from pytensor.graph.replace import graph_replace

    _enable_x64()
    COMPILE_COUNTS["jax_export"] += 1
    model = entry.template
    if len(model.observed_RVs) != 1:
        raise BayescaleError(
            f"The JAX path needs exactly one observed variable, got "
            f"{[v.name for v in model.observed_RVs]}; use sampler='nutpie'."
        )
    obs_rv = model.observed_RVs[0]
    sym = {
        v: pt.tensor(name=v.name, dtype=v.dtype, shape=(None,) * v.ndim) for v in model.data_vars
    }
    mask = pt.vector("__mask__", dtype="float64")
    data_inputs = [*sym.values(), mask]
    value_vars = list(model.value_vars)

    free_lp = model.logp(vars=model.free_RVs, jacobian=True)
    obs_lp = model.logp(vars=[obs_rv], sum=False)[0]
    pot = [model.logp(vars=[p]) for p in model.potentials]
    lp = free_lp + pt.sum(obs_lp * mask) + sum(pot, pt.constant(0.0))
    # posterior variables (constrained) and deterministics, as functions of values
    post_vars = list(model.free_RVs) + list(model.deterministics)
    post_names = [v.name for v in post_vars]
    post_graph = model.replace_rvs_by_values(post_vars)
    init_graph = make_initial_point_expression(
        free_rvs=model.free_RVs,
        rvs_to_transforms=model.rvs_to_transforms,
        initval_strategies={},
        default_strategy="support_point",
        return_transformed=True,
    )
    lp, obs_lp_r, *rest = graph_replace([lp, obs_lp, *post_graph, *init_graph], sym, strict=False)
    post_g = rest[: len(post_graph)]
    init_g = rest[len(post_graph) :]
    names = list(entry.value_names)
    dnames = [v.name for v in sym] + ["__mask__"]

    f_lp = get_jaxified_graph(inputs=value_vars + data_inputs, outputs=[lp])
    f_ll = get_jaxified_graph(inputs=value_vars + data_inputs, outputs=[obs_lp_r])
    f_post = get_jaxified_graph(inputs=value_vars + data_inputs, outputs=post_g)
    f_init = get_jaxified_graph(inputs=data_inputs, outputs=init_g)
    # initial-point expressions are ordered like free_RVs; map to value var names
    init_names = [model.rvs_to_values[rv].name for rv in model.free_RVs]

    def _args(values, data):
        return [values[n] for n in names] + [data[d] for d in dnames]

    def logp(values, data):
        return f_lp(*_args(values, data))[0]

    def loglik(values, data):
        return f_ll(*_args(values, data))[0]

    def post(values, data):
        return dict(zip(post_names, f_post(*_args(values, data))))

    def init(data):
        return dict(zip(init_names, f_init(*[data[d] for d in dnames])))

    return {"logp": logp, "loglik": loglik, "post": post, "init": init, "post_names": post_names}


def _make_program(entry: CompiledStructure, kind: str, **static: Any):
    """Build the jitted NUTS program.

    ``kind="fit"``: arguments ``(keys (chains, 2), z0 {name: (chains, ...)}, data)``.
    ``kind="batch"``: the same with a leading series axis on all three.
    """
    import jax
    from jax import lax
    from numpyro.infer.hmc import hmc

    fns = entry.jax_functions()
    logp = fns["logp"]
    tune, draws = int(static["tune"]), int(static["draws"])
    max_tree_depth = int(static["max_tree_depth"])
    dense_mass = bool(static.get("dense_mass", False))
    init_kernel, sample_kernel = hmc(potential_fn_gen=_potential_gen(logp), algo="NUTS")

    def one_chain(key, z0, data):
        COMPILE_COUNTS["jax_trace"] += 1  # runs at trace time only
        state = init_kernel(
            z0,
            num_warmup=tune,
            # an argument, not a constant: the retries at 0.95 and 0.99 of
            # target_accept="auto" run the same XLA program (:data:`TARGET_ACCEPT`)
            target_accept_prob=data[TARGET_ACCEPT],
            max_tree_depth=max_tree_depth,
            dense_mass=dense_mass,
            model_args=(data,),
            rng_key=key,
        )

        def body(s, _):
            s = sample_kernel(s, model_args=(data,))
            stats = {
                "diverging": s.diverging,
                "n_steps": s.num_steps,
                "energy": s.energy,
                "acceptance_rate": s.accept_prob,
                "step_size": s.adapt_state.step_size,
                "lp": -s.potential_energy,
            }
            return s, (s.z, stats)

        # one scan over warmup and draws (one copy of the NUTS kernel to compile)
        _, (zs, stats) = lax.scan(body, state, None, length=tune + draws)
        zs = {k: v[tune:] for k, v in zs.items()}
        stats = {k: v[tune:] for k, v in stats.items()}
        return zs, stats

    if kind == "fit":
        if _chains_on_devices(static):
            return jax.pmap(one_chain, in_axes=(0, 0, None))
        return jax.jit(jax.vmap(one_chain, in_axes=(0, 0, None)))
    if kind == "batch":
        per_series = jax.vmap(one_chain, in_axes=(0, 0, None))
        return jax.jit(jax.vmap(per_series, in_axes=(0, 0, 0)))
    raise BayescaleError(f"unknown program kind {kind!r}")


def _difference(specs: Sequence[Any]) -> str:
    """Where the first series whose structure differs from series 0's differs from it."""
    first = dict(structure_key(specs[0]))
    for k, spec in enumerate(specs[1:], 1):
        other = dict(structure_key(spec))
        fields = sorted(f for f in first.keys() | other.keys() if first.get(f) != other.get(f))
        if not fields:
            continue
        if fields == ["priors"]:
            names = [p for p in specs[0].priors if specs[0].priors[p] != spec.priors.get(p)]
            shown = "; ".join(f"{p}: {specs[0].priors[p]} vs {spec.priors.get(p)}"
                              for p in names)
            return (f"series 0 and {k} differ in the priors of {names} ({shown}): a default "
                    "prior stated at a reference scale moves with each series' data when "
                    "they look like other units (PriorWarning); give those priors "
                    "explicitly, priors={name: ...}, to share them")
        return f"series 0 and {k} differ in {fields}"
    return "the series differ"


def _chains_on_devices(static: Mapping[str, Any]) -> bool:
    """Whether a fit's chains run one per device (pmap) rather than vectorised (vmap).

    The two give other draws for one seed (other floating-point rounding), so a fit
    records which it ran (``Fit.settings["timing"]["chain_method"]``).
    """
    import jax

    return (static.get("chain_method") == "parallel"
            and jax.local_device_count() >= int(static["chains"]))


def _dense(z0: Mapping[str, np.ndarray]) -> bool:
    """Dense mass matrix for small models (as on the pm.sample NumPyro path).

    ``z0`` holds one initial point per chain (leading chain axis).
    """
    from .sampling import DENSE_MASS_MAX

    n = sum(int(np.prod(np.shape(v)[1:])) for v in z0.values())
    return n <= DENSE_MASS_MAX


def _potential_gen(logp):
    def gen(data):
        def potential(z):
            return -logp(z, data)

        return potential

    return gen


def _pad(arrays: Mapping[str, np.ndarray], obs: Sequence[str], n: int, n_pad: int):
    out = {}
    for k, v in arrays.items():
        v = np.asarray(v)
        if k in obs and n_pad > n:
            v = np.concatenate([v, np.repeat(v[-1:], n_pad - n, axis=0)])
        out[k] = v
    mask = np.zeros(n_pad)
    mask[:n] = 1.0
    out["__mask__"] = mask
    return out


def _program(entry: CompiledStructure, name: str, static: dict, args: tuple, build):
    """``name``'s program for ``args``, from :func:`bayescale.programs.cached_program`."""
    from .programs import cached_program

    _enable_x64()
    return cached_program(
        entry._programs, name, static, args, build, COMPILE_COUNTS, stable_key=entry.stable_key
    )


def _initial_values(entry, data, chains: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """PyMC-style start: the support point plus U(-1, 1) jitter per chain."""
    import jax

    init = _program(entry, "init", {}, (data,), lambda: jax.jit(entry.jax_functions()["init"]))
    ip = init(data)
    out = {}
    for name in entry.value_names:
        base = np.asarray(ip[name], dtype=float)
        out[name] = base[None] + rng.uniform(-1.0, 1.0, size=(chains,) + base.shape)
    return out


def _seed_keys(random_seed: int | None, chains: int):
    import jax

    seed = int(np.random.SeedSequence(random_seed).generate_state(1)[0])
    return jax.random.split(jax.random.PRNGKey(seed), chains), np.random.default_rng(seed)


# ------------------------------------------------------------------------------------------
# InferenceData assembly


def observed_values(entry: CompiledStructure, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
    """What the model's ``y_obs`` observes, from the data ``arrays`` swapped in.

    The same ``observed_data`` as the ``pm.sample`` path: counts (``k_obs``) for the
    binomial likelihoods, the squeezed scores (``y_unit``) for Beta, ``y`` (log loss for
    a log-link law) otherwise; it held ``y``, the accuracy fraction, for all of them.
    """
    from pytensor.graph.traversal import ancestors

    model = entry.template
    value = model.rvs_to_values[model["y_obs"]]
    names = [v.name for v in ancestors([value]) if v.name in entry.data_names]
    out = np.asarray(arrays[names[0] if names else "y"])
    return out.astype(value.dtype) if names else out


def _to_idata(entry, model, spec, frame, zs, stats, data, n: int, y_obs: np.ndarray):
    """Posterior (constrained + deterministics), sample_stats, log_likelihood, observed_data."""
    import arviz as az

    chains, draws = np.shape(stats["diverging"])
    flat = {k: np.asarray(v).reshape((chains * draws,) + np.shape(v)[2:]) for k, v in zs.items()}
    post_fn = _program(entry, "post", {}, (flat, data), lambda: _post_fns(entry)[0])
    post = post_fn(flat, data)
    posterior = {
        k: np.asarray(v).reshape((chains, draws) + np.shape(v)[1:]) for k, v in post.items()
    }
    coords = {g: list(levs) for g, levs in spec.levels.items()}
    coords["obs"] = np.arange(n)
    dims_map = model.named_vars_to_dims
    dims = {k: list(dims_map.get(k, ())) for k in posterior}
    dims["y_obs"] = ["obs"]
    ss = {k: np.asarray(v) for k, v in stats.items()}
    ss["diverging"] = ss["diverging"].astype(bool)
    ss["tree_depth"] = np.floor(np.log2(np.maximum(ss["n_steps"], 1))).astype(int) + 1
    idata = az.from_dict(posterior=posterior, sample_stats=ss, coords=coords, dims=dims)
    ll = _loglik(entry, spec, idata.posterior, frame, flat, data, n)
    return az.from_dict(
        posterior=posterior,
        sample_stats=ss,
        log_likelihood={"y_obs": ll.reshape(chains, draws, n)},
        observed_data={"y_obs": y_obs},
        coords=coords,
        dims=dims,
    )


def _loglik(entry, spec, posterior, frame, flat_values, data, n: int) -> np.ndarray:
    """Compute the pointwise log-likelihood ``(samples, n)``.

    In numpy when the likelihood has a ``logpdf``, else with the jitted JAX export
    (``data`` padded to a bucket).
    """
    from .likelihoods import get_likelihood
    from .model import param_draws, run_offsets

    lik = get_likelihood(spec.likelihood)
    if lik.logpdf is not None and frame is not None:
        law = spec.law
        rng = np.random.default_rng(0)  # unused: every group level is a training level
        params = param_draws(spec, posterior, frame, rng=rng)
        args = [frame[i].to_numpy(dtype=float)[None, :] for i in law.inputs]
        mu = np.asarray(law(*args, **params), dtype=float)
        with np.errstate(invalid="ignore", divide="ignore"):  # a chain that never started:
            eta = np.log(mu) if law.link == "log" else mu  # NaN here, explained after
        off = run_offsets(spec, posterior, frame, rng)
        if off is not None:
            eta = eta + off
        noise = {k: posterior[k].values.reshape(-1)[:, None] for k in spec.noise_params}
        y = np.asarray(data["y"])[:n]
        s = max(v.shape[0] for v in noise.values()) if noise else eta.shape[0]
        lp = lik.logpdf(y[None, :], eta, noise, {"frame": frame, "spec": spec})
        return np.broadcast_to(lp, (s, n))
    ll_fn = _program(entry, "loglik", {}, (flat_values, data), lambda: _post_fns(entry)[1])
    return np.asarray(ll_fn(flat_values, data))[:, :n]


def _post_fns(entry):
    """Jitted, vmapped (over draws) posterior and log-likelihood functions."""
    cached = entry._programs.get(("post",))
    if cached is None:
        import jax

        fns = entry.jax_functions()
        post = jax.jit(jax.vmap(fns["post"], in_axes=(0, None)))
        ll = jax.jit(jax.vmap(fns["loglik"], in_axes=(0, None)))
        cached = (post, ll)
        entry._programs[("post",)] = cached
    return cached


def _nutpie_idata(entry, model, spec, frame, idata, arrays, n: int):
    """Bring nutpie's output to the layout of the JAX path (and of pm.sample)."""
    import arviz as az
    import xarray as xr

    keep = [v.name for v in model.free_RVs] + [v.name for v in model.deterministics]
    post = idata.posterior[[k for k in keep if k in idata.posterior]]
    # relabel group coordinates (labels are data; the compiled model keeps the first ones)
    for g, levs in spec.levels.items():
        if g in post.dims:
            post = post.assign_coords({g: list(levs)})
    chains, draws = post.sizes["chain"], post.sizes["draw"]
    flat = {}
    for name in entry.value_names:
        if name in idata.posterior:
            v = idata.posterior[name].values
            flat[name] = v.reshape((chains * draws,) + v.shape[2:])
    data = _pad(arrays, entry.obs_data, n, bucket(n))
    ll = _loglik(entry, spec, post, frame, flat, data, n).reshape(chains, draws, n)
    coords = {"chain": post.chain.values, "draw": post.draw.values, "obs": np.arange(n)}
    log_lik = xr.Dataset({"y_obs": (("chain", "draw", "obs"), ll)}, coords=coords)
    obs_ds = xr.Dataset(
        {"y_obs": (("obs",), observed_values(entry, arrays))}, coords={"obs": np.arange(n)}
    )
    return az.InferenceData(
        posterior=post,
        sample_stats=idata.sample_stats,
        log_likelihood=log_lik,
        observed_data=obs_ds,
    )


# ------------------------------------------------------------------------------------------
# public entry points


def sample_compiled(
    spec,
    model,
    frame=None,
    *,
    sampler: str,
    draws: int,
    tune: int,
    chains: int,
    random_seed: int | None,
    target_accept: float = 0.9,
    max_tree_depth: int = 10,
    chain_method: str | None = None,
    progressbar: bool | None = None,
    **kwargs: Any,
):
    """Sample ``model`` (built by ``build_model(spec, frame)``) with a cached compiled sampler.

    ``frame`` (the validated data) lets the log-likelihood be computed in numpy.
    ``max_tree_depth`` and ``chain_method`` are the JAX path's; nutpie's tree depth is
    its own ``maxdepth`` (:func:`bayescale.sampling.tree_depth_option` renames it).
    ``progressbar`` (default: in an interactive terminal) shows nutpie's; the JAX path
    runs as one compiled program and has none.

    Returns InferenceData with ``posterior``, ``sample_stats`` (with ``diverging``),
    ``log_likelihood`` (``y_obs``) and ``observed_data``, and a dict of timings.

    Examples
    --------
    >>> import bayescale as bs
    >>> f = bs.fit(df, "chinchilla", sampler="nutpie", random_seed=1)  # doctest: +SKIP
    >>> f2 = bs.fit(df2, "chinchilla", sampler="nutpie", random_seed=1)  # no recompile
    ... # doctest: +SKIP
    """
    t0 = time.perf_counter()
    entry = get_structure(spec, model, frame)
    arrays = model_arrays(model)
    n = len(arrays["y"])
    if sampler == "nutpie":
        if chain_method is not None or max_tree_depth != 10:
            raise BayescaleError(
                "sampler='nutpie' runs its chains in threads and calls its tree depth "
                "maxdepth: chain_method= and max_tree_depth= are options of sampler='jax' "
                "(bayescale.fit renames max_tree_depth for nutpie)."
            )
        before = COMPILE_COUNTS["nutpie"]
        from .sampling import default_progressbar

        raw = entry.sample_nutpie(
            arrays,
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=random_seed,
            target_accept=target_accept,
            progress_bar=bool(kwargs.pop("progress_bar", default_progressbar()
                                         if progressbar is None else progressbar)),
            **kwargs,
        )
        t1 = time.perf_counter()
        idata = _nutpie_idata(entry, model, spec, frame, raw, arrays, n)
        compiled = COMPILE_COUNTS["nutpie"] > before
    elif sampler == "jax":
        if kwargs:
            raise BayescaleError(f"sampler='jax' takes no extra options, got {sorted(kwargs)}.")
        import pymc.sampling.jax  # noqa: F401  (sets the host device count before JAX starts)

        from .sampling import check_tree_depth, jax_platform

        if chain_method is None:
            chain_method = "parallel" if jax_platform() == "cpu" else "vectorized"
        if chain_method not in ("parallel", "vectorized"):
            raise BayescaleError(
                "sampler='jax' runs its chains with chain_method='parallel' (one CPU device "
                f"each, the default on CPU) or 'vectorized' (vmap); got {chain_method!r}."
            )
        check_tree_depth(max_tree_depth)
        before = COMPILE_COUNTS["jax_trace"] + COMPILE_COUNTS["jax_export"]
        loads = COMPILE_COUNTS["jax_load"]
        n_pad = bucket(n)
        data = _pad(arrays, entry.obs_data, n, n_pad)
        data[TARGET_ACCEPT] = np.asarray(target_accept, dtype=np.asarray(data["y"]).dtype)
        keys, rng = _seed_keys(random_seed, chains)
        z0 = _initial_values(entry, data, chains, rng)
        static = dict(
            tune=tune,
            draws=draws,
            chains=chains,
            max_tree_depth=max_tree_depth,
            chain_method=chain_method,
            dense_mass=_dense(z0),
        )
        import jax

        prog = _program(
            entry, "fit", static, (keys, z0, data),
            lambda: jax.jit(entry.program("fit", **static)),
        )
        zs, stats = prog(keys, z0, data)
        zs = {k: np.asarray(v) for k, v in zs.items()}
        stats = {k: np.asarray(v) for k, v in stats.items()}
        t1 = time.perf_counter()
        idata = _to_idata(entry, model, spec, frame, zs, stats, data, n,
                          observed_values(entry, arrays))
        compiled = COMPILE_COUNTS["jax_trace"] + COMPILE_COUNTS["jax_export"] > before
        loaded = COMPILE_COUNTS["jax_load"] > loads
    else:
        raise BayescaleError(f"compiled samplers are 'nutpie' and 'jax', got {sampler!r}.")
    t2 = time.perf_counter()
    timing = {"sample_s": t1 - t0, "postprocess_s": t2 - t1, "compiled": bool(compiled)}
    if sampler == "jax":
        # programs read from disk (bayescale.programs): a first fit that compiled nothing
        timing["loaded"] = bool(loaded)
        timing["chain_method"] = "parallel" if _chains_on_devices(static) else "vectorized"
    return idata, timing


def sample_batch(
    specs: Sequence[Any],
    models: Sequence[Any],
    frames: Sequence[Any],
    *,
    draws: int,
    tune: int,
    chains: int,
    random_seeds: Sequence[int | None],
    target_accept: float = 0.9,
    max_tree_depth: int = 10,
    arrays: Sequence[Mapping[str, np.ndarray]] | None = None,
):
    """Sample K models of one structure as one vmapped JAX program.

    Rows are padded to the bucket of the longest series and masked. ``arrays``
    (one ``{pm.Data name: values}`` per series) replaces the models' own data, so
    one model can serve K simulated data sets (:func:`bayescale.sbc`). Returns a
    list of InferenceData (one per series) and a dict of timings.
    """
    t0 = time.perf_counter()
    _enable_x64()
    keys0 = {structure_key(s) for s in specs}
    if len(keys0) != 1:
        raise BayescaleError(
            "fit_batch needs series of one model structure (same law, priors, pooling and "
            f"number of group levels); {_difference(specs)}. Fit differing series "
            "separately, or declare every level of their run or group columns with "
            "levels={column: [...]}."
        )
    entry = get_structure(specs[0], models[0], frames[0])
    if arrays is None:
        arrays = [model_arrays(m) for m in models]
    arrays = [dict(a) for a in arrays]
    ns = [len(a["y"]) for a in arrays]
    n_pad = bucket(max(ns))
    datas = [_pad(a, entry.obs_data, n, n_pad) for a, n in zip(arrays, ns)]
    stacked = {k: np.stack([d[k] for d in datas]) for k in datas[0]}
    stacked[TARGET_ACCEPT] = np.full(len(datas), target_accept, dtype=stacked["y"].dtype)
    keys, z0s = [], []
    for d, seed in zip(datas, random_seeds):
        k, rng = _seed_keys(seed, chains)
        keys.append(np.asarray(k))
        z0s.append(_initial_values(entry, d, chains, rng))
    keys = np.stack(keys)
    z0 = {k: np.stack([z[k] for z in z0s]) for k in z0s[0]}
    static = dict(
        tune=tune,
        draws=draws,
        chains=chains,
        max_tree_depth=max_tree_depth,
        dense_mass=_dense({k: v[0] for k, v in z0.items()}),
    )
    prog = _program(
        entry, "batch", static, (keys, z0, stacked), lambda: entry.program("batch", **static)
    )
    zs, stats = prog(keys, z0, stacked)
    zs = {k: np.asarray(v) for k, v in zs.items()}
    stats = {k: np.asarray(v) for k, v in stats.items()}
    t1 = time.perf_counter()
    out = []
    for i, (spec, model, frame, d, n) in enumerate(zip(specs, models, frames, datas, ns)):
        out.append(
            _to_idata(
                entry,
                model,
                spec,
                frame,
                {k: v[i] for k, v in zs.items()},
                {k: v[i] for k, v in stats.items()},
                d,
                n,
                observed_values(entry, arrays[i]),
            )
        )
    t2 = time.perf_counter()
    return out, {"sample_s": t1 - t0, "postprocess_s": t2 - t1}
