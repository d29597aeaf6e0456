"""Moved to :mod:`made.data.columns`; kept so 0.2 code works."""

from ..data.columns import *  # noqa: F401,F403
from ..data.columns import __all__  # noqa: F401
