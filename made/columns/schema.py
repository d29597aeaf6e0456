"""Moved to :mod:`made.data.columns.schema`; kept so 0.2 code works."""

from ..data.columns.schema import *  # noqa: F401,F403
from ..data.columns.schema import __all__  # noqa: F401
