"""Moved to :mod:`made.data.context`; kept so 0.2 code works."""

from .data.context import *  # noqa: F401,F403
from .data.context import __all__  # noqa: F401
