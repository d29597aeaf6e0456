"""Moved to :mod:`made.training.memory`; kept so 0.2 code works."""

from .training.memory import available_memory, check_memory

__all__ = ["check_memory", "available_memory"]
