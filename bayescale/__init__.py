"""bayescale: Bayesian scaling laws with calibrated extrapolation intervals."""

import logging as _logging
import warnings as _warnings

from .errors import (
    BayescaleError,
    DataError,
    DatasetError,
    DataWarning,
    ExtrapolationWarning,
    LawError,
    PoolingWarning,
    PriorWarning,
    SamplingWarning,
)
from .law import Law, get_law, law, list_laws
from .priors import Prior

# PyTensor's C backend warns, the first time it compiles, that it found no BLAS library (a
# pip install); bayescale samples through numba (nutpie) or JAX, which do not use it, and
# its few C-compiled helpers have no matrix products: the warning would only alarm users.
_warnings.filterwarnings(
    "ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning
)

# Progress of long steps that start on their own (the calibration of a forecast beyond the
# data) is logged at INFO to the "bayescale" logger; shown on stderr, as PyMC does with its
# "pymc" logger, unless the application configured logging itself.
_log = _logging.getLogger(__name__)
if not _logging.root.handlers:
    _log.setLevel(_logging.INFO)
    if not _log.handlers:
        _log.addHandler(_logging.StreamHandler())

__version__ = "0.1.0"

__all__ = [
    "BayescaleError",
    "DataError",
    "DatasetError",
    "DataWarning",
    "ExtrapolationWarning",
    "Law",
    "LawError",
    "PoolingWarning",
    "PriorWarning",
    "Prior",
    "SamplingWarning",
    "get_law",
    "law",
    "list_laws",
]

from . import laws  # noqa: E402,F401  (registers the built-in laws)
from .batch import fit_batch  # noqa: E402
from .fit import Fit, fit, load_fit  # noqa: E402

__all__ += ["Fit", "fit", "fit_batch", "laws", "load_fit"]

from . import datasets  # noqa: E402

__all__ += ["datasets"]

from .chain import Chain, chain  # noqa: E402
from .joint import JointFit, fit_joint  # noqa: E402
from .onset import onset, onset_draws, prob_emerged, prob_inverse  # noqa: E402

__all__ += [
    "Chain",
    "JointFit",
    "chain",
    "fit_joint",
    "onset",
    "onset_draws",
    "prob_emerged",
    "prob_inverse",
]

from .data import filter_checkpoints, parse_counts  # noqa: E402

__all__ += ["filter_checkpoints", "parse_counts"]

from .backtest import Backtest, backtest  # noqa: E402
from .compare import Averaged, average, compare  # noqa: E402
from .parallel import fit_many  # noqa: E402
from .report import Report, report  # noqa: E402
from .sbc import SBCResult, sbc  # noqa: E402

__all__ += [
    "Averaged",
    "Backtest",
    "Report",
    "SBCResult",
    "average",
    "backtest",
    "compare",
    "fit_many",
    "report",
    "sbc",
]
from .calibration_pooling import pool_calibration  # noqa: E402

__all__ += ["pool_calibration"]
