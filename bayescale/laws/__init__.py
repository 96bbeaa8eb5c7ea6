"""Built-in laws. Importing this package registers them by name."""

from .loss import broken_power_law, chinchilla, data_constrained, kaplan, power_law

__all__ = ["broken_power_law", "chinchilla", "data_constrained", "kaplan", "power_law"]
