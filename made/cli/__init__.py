"""The ``made`` command line: one module per command (train, eval, sample, impute, masks, tune)."""

from .main import build_parser, main

__all__ = ["main", "build_parser"]
