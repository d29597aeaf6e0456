"""Moved to :mod:`made.inference.sampling`; kept so 0.2 code works."""

from .inference.sampling import IncrementalSampler, sample_incremental, sample_naive

__all__ = ["sample_naive", "sample_incremental", "IncrementalSampler"]
