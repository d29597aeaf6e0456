"""Moved to :mod:`made.inference.evaluate`; kept so 0.2 code works."""

from .inference.evaluate import NLLResult, evaluate_nll, per_dimension_nll, per_example_nll

__all__ = ["NLLResult", "per_example_nll", "per_dimension_nll", "evaluate_nll"]
