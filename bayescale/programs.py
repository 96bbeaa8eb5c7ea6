"""Disk cache of the JAX path's programs, exported with :mod:`jax.export`.

A first fit in a fresh process spends most of its fixed cost before XLA starts: PyTensor
rewrites the model's graphs and translates them to JAX (about 1.5 s for Chinchilla on 2
CPU cores), then JAX traces NumPyro's NUTS around the log density (about 1 s); JAX's own
persistent cache (:func:`bayescale.compiled.enable_compilation_cache`) only saves the XLA
compile that follows. Here each program of a fit (the initial point, the NUTS program, the
posterior and log-likelihood functions) is exported to StableHLO once, serialized to disk,
and a later process with the same model structure, settings and array shapes loads it
instead of rebuilding it: no PyTensor, no tracing, and the XLA compile from JAX's cache.

The same exported program runs in the process that wrote it, so a seed gives the same
draws whether the program was built or loaded. Programs are keyed on the process-stable
structure key of the model (:func:`bayescale.compiled.stable_structure_key`), the
program's settings, the shapes and dtypes of its arguments, the platform, and the versions
of bayescale's source and of the libraries that built it; a change to any of them builds a
new program.

``$BAYESCALE_JAX_PROGRAMS`` sets the folder (``"0"`` or ``""``: no disk cache); by default
``programs/`` inside :func:`bayescale.compiled.compilation_cache_dir` (none when that
cache is off). Each program is a small file (about 70 KB for Chinchilla's NUTS program);
a new bayescale or library version writes new ones beside the old: :func:`clear_disk`
removes them all.
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["programs_dir", "cached_program", "clear_disk"]

_LOCK = threading.RLock()


def programs_dir() -> Path | None:
    """Folder of the exported programs, or ``None`` when the disk cache is off.

    Examples
    --------
    >>> import os
    >>> os.environ["BAYESCALE_JAX_PROGRAMS"] = "0"
    >>> programs_dir() is None
    True
    >>> del os.environ["BAYESCALE_JAX_PROGRAMS"]
    """
    env = os.environ.get("BAYESCALE_JAX_PROGRAMS")
    if env is not None:
        return None if env.strip() in {"", "0"} else Path(env)
    from .compiled import compilation_cache_dir

    base = compilation_cache_dir()
    return None if base is None else Path(base) / "programs"


@functools.lru_cache(maxsize=1)
def _fingerprint() -> str:
    """Library versions and a hash of bayescale's own source (a changed model, a new key)."""
    from importlib.metadata import PackageNotFoundError, version

    h = hashlib.sha256()
    for dist in ("jax", "jaxlib", "numpyro", "pymc", "pytensor"):
        try:
            h.update(f"{dist}={version(dist)};".encode())
        except PackageNotFoundError:  # pragma: no cover - a required dependency
            h.update(f"{dist}=?;".encode())
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _signature(args: tuple) -> str:
    import jax
    import numpy as np

    leaves, tree = jax.tree_util.tree_flatten(args)
    shapes = [(tuple(np.shape(x)), str(getattr(x, "dtype", None) or np.result_type(x)))
              for x in leaves]
    return f"{tree}|{shapes}"


def _disk_key(stable_key: Any, name: str, static: tuple, signature: str) -> str:
    import jax

    text = repr((
        _fingerprint(),
        stable_key,
        name,
        static,
        signature,
        jax.default_backend(),
        jax.local_device_count(),  # decides between pmap and vmap over chains
        bool(jax.config.jax_enable_x64),
    ))
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _caller(exported) -> Callable:
    """A jitted call of ``exported``; multi-device programs run on a mesh of that size."""
    import jax

    if exported.nr_devices == 1:
        return jax.jit(exported.call)
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    # a pmap over chains exports as one program for that many devices; its inputs are
    # placed on all of them and the program splits the chains itself
    mesh = Mesh(np.array(jax.devices()[: exported.nr_devices]), ("chain",))
    return jax.jit(exported.call, in_shardings=NamedSharding(mesh, PartitionSpec()))


def cached_program(
    memory: dict,
    name: str,
    static: dict,
    args: tuple,
    build: Callable[[], Callable],
    counts: dict | None = None,
    stable_key: Any = None,
) -> Callable:
    """The program ``name`` for these arguments: from memory, from disk, or built now.

    Parameters
    ----------
    memory : dict
        Where this process keeps the programs of one model structure (its
        :class:`bayescale.compiled.CompiledStructure`'s program table).
    name, static : str, dict
        Which program and its settings (part of the key).
    args : tuple
        Example arguments (their tree, shapes and dtypes are part of the key).
    build : callable
        Returns the jitted function to export when no stored program fits.
    counts : dict, optional
        Incremented at ``"jax_load"`` when a program is read from disk.
    stable_key : hashable, optional
        A key of the structure that is the same in every process
        (:func:`bayescale.compiled.stable_structure_key`). Without it the program is kept
        in memory only.

    Returns
    -------
    callable
        Call it with arguments shaped like ``args``.

    Examples
    --------
    >>> import jax, jax.numpy as jnp, numpy as np
    >>> f = cached_program({}, "double", {}, (np.ones(3),), lambda: jax.jit(lambda x: 2 * x))
    >>> np.asarray(f(np.arange(3.0))).tolist()
    [0.0, 2.0, 4.0]
    """
    static_items = tuple(sorted(static.items()))
    signature = _signature(args)
    key = ("exported", name, static_items, signature)
    with _LOCK:
        hit = memory.get(key)
        if hit is not None:
            return hit
        folder = programs_dir() if stable_key is not None else None
        if folder is None:
            fn = build()
            memory[key] = fn
            return fn
        from jax import export

        path = folder / f"{name}-{_disk_key(stable_key, name, static_items, signature)}.jaxexport"
        exported = None
        if path.is_file():
            try:
                exported = export.deserialize(bytearray(path.read_bytes()))
                if counts is not None:
                    counts["jax_load"] += 1
            except Exception:  # a truncated or foreign file: build it again
                exported = None
        if exported is not None:
            def rebuild() -> Callable:  # the file is gone: built and stored anew
                memory.pop(key, None)
                return cached_program(memory, name, static, args, build, counts, stable_key)

            fn = _checked_at_first_call(_caller(exported), path, rebuild)
            memory[key] = fn
            return fn
        fn = build()
        try:
            exported = export.export(fn)(*args)
        except Exception:  # e.g. a host callback, which jax.export cannot store
            memory[key] = fn
            return fn
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        try:
            blob = exported.serialize()
            folder.mkdir(parents=True, exist_ok=True)
            tmp.write_bytes(blob)
            os.replace(tmp, path)
        except (OSError, ImportError):  # a read-only or full disk, or no flatbuffers:
            _unlink(tmp)  # run from memory only, leaving no part of the file
        fn = _caller(exported)
        memory[key] = fn
        return fn


def _checked_at_first_call(fn: Callable, path: Path, rebuild: Callable[[], Callable]
                           ) -> Callable:
    """``fn``, a program loaded from ``path``, that is built anew if its first call fails.

    A file can deserialize and still not run: bytes damaged inside its StableHLO (XLA
    refuses it when compiling), or another program's file under this name (other
    arguments). Such a file is deleted and the program built and stored again, so that
    it does not fail every later fit of the structure.
    """
    state: dict[str, Any] = {"fn": None}

    def call(*a):
        if state["fn"] is not None:
            return state["fn"](*a)
        try:
            out = fn(*a)
        except Exception:  # noqa: BLE001 - any failure of a stored file: rebuild it
            _unlink(path)
            state["fn"] = rebuild()  # stores the new program under the same name
            return state["fn"](*a)
        state["fn"] = fn
        return out

    return call


def clear_disk() -> int:
    """Delete the stored programs (a new bayescale or library version leaves old ones).

    Returns the number of files removed.

    Examples
    --------
    >>> import os, tempfile
    >>> os.environ["BAYESCALE_JAX_PROGRAMS"] = tempfile.mkdtemp()
    >>> clear_disk()
    0
    >>> del os.environ["BAYESCALE_JAX_PROGRAMS"]
    """
    folder = programs_dir()
    if folder is None or not folder.is_dir():
        return 0
    removed = 0
    for pattern in ("*.jaxexport", "*.tmp"):  # .tmp: a write cut short (a killed process)
        for path in folder.glob(pattern):
            _unlink(path)
            removed += 1
    return removed


def _unlink(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # a read-only folder
        pass
