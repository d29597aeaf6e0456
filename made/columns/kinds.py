"""Moved to :mod:`made.data.columns.kinds`; kept so 0.2 code works."""

from ..data.columns.kinds import *  # noqa: F401,F403
from ..data.columns.kinds import __all__  # noqa: F401
