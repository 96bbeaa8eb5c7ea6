"""Built-in laws. Importing this package registers them by name."""

from .accuracy import exp_error_of_loss, sigmoid_compute, sigmoid_of_loss
from .emergence import onset_hinge, onset_hinge_loss, onset_logistic, u_shaped
from .loss import broken_power_law, chinchilla, data_constrained, kaplan, m4, power_law

__all__ = [
    "broken_power_law",
    "chinchilla",
    "data_constrained",
    "exp_error_of_loss",
    "kaplan",
    "m4",
    "onset_hinge",
    "onset_hinge_loss",
    "onset_logistic",
    "power_law",
    "sigmoid_compute",
    "sigmoid_of_loss",
    "u_shaped",
]
