"""Option types, limits and the argument groups several ``made`` commands share."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from ..checkpoint import MAX_POOL
from ..data import DATASETS

DATASET_NAMES = ["digits", *DATASETS]
MAX_ENSEMBLE = 100_000  # masks an ensemble may average: beyond it one evaluation runs for days
MAX_SEED = 2**63 - 1


def int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An option type: an integer from ``low`` (to ``high``); argparse names the option when it refuses one."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            allowed = f"from {low} to {high:,}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {allowed}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def float_in(low: float, high: float = math.inf, open_low: bool = True) -> Callable[[str], float]:
    """An option type: a finite number above ``low`` (or from it, with ``open_low=False``) up to ``high``."""
    allowed = (f"above {low:g}" if open_low else f"of at least {low:g}") + (
        f" and at most {high:g}" if math.isfinite(high) else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > low if open_low else value >= low) and value <= high):
            raise argparse.ArgumentTypeError(f"expected a finite number {allowed}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


POSITIVE, NON_NEGATIVE, SEED = int_in(1), int_in(0), int_in(0, MAX_SEED)
ENSEMBLE = int_in(1, MAX_ENSEMBLE)
POSITIVE_FLOAT, NON_NEGATIVE_FLOAT = float_in(0.0), float_in(0.0, open_low=False)
FRACTION = float_in(0.0, 1.0, open_low=False)
DROPOUT = float_in(0.0, 0.95, open_low=False)


def masks_arg(text: str) -> int | str:
    """The type of ``--masks``: a pool size from 1 to ``MAX_POOL``, or 'unlimited'."""
    if text == "unlimited":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'unlimited', got {text!r}") from None
    if not 1 <= value <= MAX_POOL:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {MAX_POOL:,} or 'unlimited', got {text!r}")
    return value


def add_header_arg(parser: argparse.ArgumentParser) -> None:
    """Add ``--header``, whether a .csv starts with a header line."""
    parser.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                        help="whether the first line of a .csv is a header (default: a header when none of its "
                        "cells is a number; a numeric header such as pandas' 0,1,2 needs --header)")


def add_data_args(parser: argparse.ArgumentParser, default: str | None, split_seed: int | None = 0) -> None:
    """Add the options naming the data: ``--dataset`` or ``--data``, ``--data-dir``, ``--split-seed``, ``--header``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        choices=DATASET_NAMES,
        default=default,
        help=f"a named data set{' (default: %(default)s)' if default else ''}: digits is built in, "
        "the paper's sets are read from --data-dir or downloaded once into ~/.cache/made",
    )
    source.add_argument(
        "--data",
        metavar="FILE",
        help="your own data: .npz (train_data/valid_data/test_data or train/valid/test), .npy or .csv; "
        "a single array is split 80/10/10 with --split-seed",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="folder holding NAME.npz for the paper's sets (or MADE_DATA_DIR)")
    default_text = "the run's" if split_seed is None else str(split_seed)
    parser.add_argument("--split-seed", type=SEED, default=split_seed,
                        help=f"seed of the 80/10/10 split of a single array (default: {default_text})")
    add_header_arg(parser)


def add_drawing_args(parser: argparse.ArgumentParser, batch: str, batch_size: int) -> None:
    """Add the options of commands that draw from a model: ``--batch-size``, ``--seed``, ``--device``, ``--quiet``."""
    parser.add_argument("--batch-size", type=POSITIVE, default=batch_size, help=f"{batch} (default: {batch_size})")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the random draws (default: 0)")
    parser.add_argument("--device", default="auto", help="(default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
