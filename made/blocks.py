"""Moved to :mod:`made.fast.blocks`; kept so 0.2 code works."""

from .fast.blocks import *  # noqa: F401,F403
from .fast.blocks import __all__  # noqa: F401
