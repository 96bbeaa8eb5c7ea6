"""Exceptions and warnings raised by bayescale.

Every error a user can trigger with bad input is a :class:`BayescaleError` (a
``ValueError``) whose message names the offending column, row, value or
parameter and says what to do.
"""

from __future__ import annotations


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
