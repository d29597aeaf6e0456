"""Moved to :mod:`made.training.mixture`; kept so 0.2 code works."""

from .training.mixture import MAX_MEMBERS, MEMBERS_DIR, Mixture, em_weights, load_mixture, load_run_model

__all__ = ["Mixture", "em_weights", "load_mixture", "load_run_model", "MEMBERS_DIR", "MAX_MEMBERS"]
