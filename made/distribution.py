"""Moved to :mod:`made.model.distribution`; kept so 0.2 code works."""

from .model.distribution import MADEDistribution, family_support

__all__ = ["MADEDistribution", "family_support"]
