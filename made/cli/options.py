"""Option types, limits and the argument groups several ``made`` commands share."""

from __future__ import annotations

import argparse

from ..config import ENSEMBLE, NON_NEGATIVE, POSITIVE, SEED, DataSettings, add_options, masks_arg

__all__ = [
    "ENSEMBLE",
    "NON_NEGATIVE",
    "POSITIVE",
    "SEED",
    "masks_arg",
    "add_header_arg",
    "add_data_args",
    "add_drawing_args",
]


def add_header_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--header``, whether a .csv starts with a header line."""
    add_options(parser, DataSettings, only={"header"})


def add_data_args(parser: argparse.ArgumentParser, default: str | None, split_seed: int | None = 0) -> None:
    """Add the options naming the data: ``--dataset`` or ``--data``, ``--data-dir``, ``--split-seed``, ``--header``."""
    add_options(parser, DataSettings, defaults={"dataset": default, "split_seed": split_seed})


def add_drawing_args(parser: argparse.ArgumentParser, batch: str, batch_size: int) -> None:
    """Add the options of commands that draw from a model: ``--batch-size``, ``--seed``, ``--device``, ``--quiet``."""
    parser.add_argument("--batch-size", type=POSITIVE, default=batch_size, help=f"{batch} (default: {batch_size})")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the random draws (default: 0)")
    parser.add_argument("--device", default="auto", help="(default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
