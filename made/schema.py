"""Moved to :mod:`made.io.schema`; kept so 0.2 code works."""

from .io.schema import *  # noqa: F401,F403
from .io.schema import __all__  # noqa: F401
