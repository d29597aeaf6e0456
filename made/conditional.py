"""Moved to :mod:`made.inference.conditional`; kept so 0.2 code works."""

from .inference.conditional import *  # noqa: F401,F403
from .inference.conditional import __all__  # noqa: F401
