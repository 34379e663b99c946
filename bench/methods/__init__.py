"""The paper's methods and the registry through which the harness finds every method."""

from bench.methods.base import Steerer
from bench.methods.registry import METHODS, make_steerer, method_class

__all__ = ["METHODS", "Steerer", "make_steerer", "method_class"]
