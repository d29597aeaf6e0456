"""Moved to :mod:`made.model.layers` (``MaskedLinear``) and :mod:`made.fast.dispatch` (``fast_path``);
kept so 0.2 code works."""

from .fast.dispatch import FastPath, fast_path, get_fast_path
from .model.layers import MaskedLinear

__all__ = ["MaskedLinear", "FastPath", "fast_path", "get_fast_path"]
