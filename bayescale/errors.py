"""Exceptions and warnings raised by bayescale.

Every error a user can trigger with bad input is a :class:`BayescaleError` (a
``ValueError``) whose message names the offending column, row, value or
parameter and says what to do.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import logging
import os
import sys
import warnings
from collections.abc import Iterable, Iterator

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep
#: Where :func:`warn` puts bayescale's warnings instead of saying them, inside
#: :func:`collected` (a context variable: each thread, task or coroutine has its own).
_COLLECTOR: contextvars.ContextVar[list | None] = contextvars.ContextVar(
    "bayescale_warnings", default=None
)


class BayescaleError(ValueError):
    """Base class for user-facing errors (bad data, unknown law, bad option)."""


class DataError(BayescaleError):
    """The input DataFrame does not satisfy the law's requirements."""


class LawError(BayescaleError):
    """Unknown law, malformed law definition or unknown parameter/prior name."""


class DatasetError(BayescaleError):
    """A dataset could not be resolved locally, from the cache or its source."""


class SamplingWarning(UserWarning):
    """NUTS reported a problem: divergences, r_hat > 1.01 or low effective sample size."""


class PoolingWarning(UserWarning):
    """A pooling choice the data barely support (e.g. a group with very few rows)."""


class PriorWarning(UserWarning):
    """A default prior was adapted to the data, e.g. an input that looks like other units."""


class DataWarning(UserWarning):
    """Data that pass validation but look like a mistake, e.g. rows repeated exactly."""


class ExtrapolationWarning(UserWarning):
    """A forecast so far beyond the data (a million times its scale) that units may differ."""


def close_names(name: object, options: Iterable[object]) -> list[str]:
    """The options close to a misspelt ``name`` (at most two), as :func:`did_you_mean` names.

    Examples
    --------
    >>> close_names("Loss", ["N", "D", "loss"])
    ['loss']
    """
    opts = [o for o in options if isinstance(o, str)]
    if not isinstance(name, str) or not opts:
        return []

    def key(text: str) -> str:
        return text.lower().replace("-", "_").replace(" ", "_")

    same = [o for o in opts if key(o) == key(name) and o != name]
    close = same or difflib.get_close_matches(name, opts, n=2, cutoff=0.6)
    if not close:
        lowered = {key(o): o for o in opts}
        close = [lowered[k] for k in difflib.get_close_matches(key(name), list(lowered), n=2,
                                                               cutoff=0.6)]
    return close


def did_you_mean(name: object, options: Iterable[object], *, name_it: bool = False) -> str:
    """A ``" Did you mean 'x'?"`` hint for a misspelt name, or ``""`` when none is close.

    A name that differs only in case, or in ``-``/``_``/spaces, wins; otherwise
    :func:`difflib.get_close_matches` (ratio 0.6 or more) names up to two candidates.
    ``name_it=True`` says which name the hint is for (``" For 'alpah', did you mean
    'alpha'?"``), for messages that list several unknown names.

    Examples
    --------
    >>> did_you_mean("chinchila", ["chinchilla", "kaplan"])
    " Did you mean 'chinchilla'?"
    >>> did_you_mean("Loss", ["N", "D", "loss"])
    " Did you mean 'loss'?"
    >>> did_you_mean("xyz", ["chinchilla"])
    ''
    """
    close = close_names(name, options)
    if not close:
        return ""
    which = " or ".join(repr(c) for c in close)
    return f" For {name!r}, did you mean {which}?" if name_it else f" Did you mean {which}?"


def hints_for(names: Iterable[object], options: Iterable[object]) -> str:
    """:func:`did_you_mean` for each of several unknown names (each named when more than one).

    Examples
    --------
    >>> hints_for(["alpah", "bta"], ["alpha", "beta"])
    " For 'alpah', did you mean 'alpha'? For 'bta', did you mean 'beta'?"
    """
    names, options = list(names), list(options)
    return "".join(did_you_mean(n, options, name_it=len(names) > 1) for n in names)


def warn(message: str, category: type[Warning]) -> None:
    """:func:`warnings.warn` attributed to the user's line, not to bayescale's internals.

    The warning's file and line are those of the first caller outside the package (the
    notebook cell or script line that called ``bs.fit``), whatever the call depth inside
    it, so a warning says where it came from and a filter on the user's module applies.

    Examples
    --------
    >>> warn("a group has one row", PoolingWarning)  # doctest: +SKIP
    """
    kept = _COLLECTOR.get()
    if kept is not None:  # inside collected(): kept for the caller to say
        kept.append((category, message))
        return
    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


@contextlib.contextmanager
def collected() -> Iterator[list[tuple[type[Warning], str]]]:
    """Keep bayescale's warnings said in the ``with`` block as ``(category, message)`` pairs.

    Unlike :func:`warnings.catch_warnings` (one filter list per process, not safe on
    threads) the list is local to the calling thread or task, so fits overlapping on a
    thread pool each keep their own warnings, for the caller to say after their label.
    Other libraries' warnings are not kept.

    Examples
    --------
    >>> with collected() as got:
    ...     warn("a group has one row", PoolingWarning)
    >>> got == [(PoolingWarning, "a group has one row")]
    True
    """
    kept: list[tuple[type[Warning], str]] = []
    token = _COLLECTOR.set(kept)
    try:
        yield kept
    finally:
        _COLLECTOR.reset(token)


@contextlib.contextmanager
def quiet_logger(name: str) -> Iterator[None]:
    """Hold back a logger's INFO lines (``"pymc"``, ``"bayescale"``) for the ``with`` block.

    Examples
    --------
    >>> with quiet_logger("pymc"):
    ...     logging.getLogger("pymc").info("not shown")
    """
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)
