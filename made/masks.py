"""Moved to :mod:`made.model.masks`; kept so 0.2 code works."""

from .model.masks import *  # noqa: F401,F403
from .model.masks import __all__  # noqa: F401
