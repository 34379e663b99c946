"""The paper's methods and the registry through which the harness finds every method."""

from bench.methods.base import HParam, Steerer
from bench.methods.registry import METHODS, method_class

__all__ = ["METHODS", "HParam", "Steerer", "method_class"]
