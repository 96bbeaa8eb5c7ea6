"""bayescale: Bayesian scaling laws with calibrated extrapolation intervals."""

from .errors import BayescaleError, DataError, DatasetError, LawError, SamplingWarning
from .law import Law, get_law, law, list_laws
from .priors import Prior

__version__ = "0.1.0"

__all__ = [
    "BayescaleError",
    "DataError",
    "DatasetError",
    "Law",
    "LawError",
    "Prior",
    "SamplingWarning",
    "get_law",
    "law",
    "list_laws",
]

from . import laws  # noqa: E402,F401  (registers the built-in laws)
from .fit import Fit, fit, load_fit  # noqa: E402

__all__ += ["Fit", "fit", "laws", "load_fit"]
from .backtest import Backtest, backtest  # noqa: E402
from .compare import Averaged, average, compare  # noqa: E402
from .parallel import fit_many  # noqa: E402
from .report import Report, report  # noqa: E402

__all__ += [
    "Averaged",
    "Backtest",
    "Report",
    "average",
    "backtest",
    "compare",
    "fit_many",
    "report",
]
