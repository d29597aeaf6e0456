"""Moved to :mod:`made.training.distributed`; kept so 0.2 code works."""

from .training.distributed import *  # noqa: F401,F403
from .training.distributed import __all__  # noqa: F401
