"""Moved to :mod:`made.training.mixture` and :mod:`made.io.run`; kept so 0.2 code works."""

from .io.run import MEMBERS_DIR, load_mixture, load_run_model
from .training.mixture import MAX_MEMBERS, Mixture, em_weights

__all__ = ["Mixture", "em_weights", "load_mixture", "load_run_model", "MEMBERS_DIR", "MAX_MEMBERS"]
