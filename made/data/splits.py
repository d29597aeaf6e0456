"""Data as made reads it: train/valid/test splits at the file's own precision, their checks, and the
errors and warnings that name the file and the row.

Bad input raises :class:`DataError` naming the file and the line (CSV) or row.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .precision import EXACT_INTEGERS, inexact_cell

__all__ = [
    "DataError",
    "DataWarning",
    "Splits",
    "SPLITS",
    "SPLIT_FRACTIONS",
    "format_value",
    "check_exact",
    "check_values",
    "validate_splits",
    "split_order",
]

SPLITS = ("train", "valid", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)


class DataError(ValueError):
    """Bad or unreadable data; the message names the file and the problem."""


class DataWarning(UserWarning):
    """Data that was read, but maybe not as meant (a numeric header line read as data)."""


@dataclass(frozen=True)
class Splits:
    """Train, validation and test arrays ``[N, D]`` of one data set, at the file's precision.

    ``labels`` holds the class label of every row (train, valid, test) where the
    data set has them (digits), for class-conditional models. ``lines`` holds, per
    split, where each row sits in the file (``unit`` says line or row), so that an
    error about a shuffled split names the row as the user sees it.
    """

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    image_shape: tuple[int, int] | None = None
    labels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    lines: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    unit: str = "row"
    source: str = ""  # the file, for messages ("" for the built-in and paper sets: the name says it)

    def where(self, split: str) -> Callable[[int], str]:
        """Row index of ``split`` -> where that row is in the file (``line 7``, ``the test split, row 3``)."""
        if self.lines is None:
            return lambda row: f"the {split} split, row {row + 1}"
        lines = self.lines[SPLITS.index(split)]
        return lambda row: f"{self.unit} {lines[row]}"

    @property
    def num_inputs(self) -> int:
        return self.train.shape[1]

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)


def format_value(value: float) -> str:
    """A number as it would be written in a data file: whole numbers without a decimal
    point (``-0`` for a negative zero, which reads back as one), other floats in the shortest form that
    reads back to the same value."""
    if float(value).is_integer() and abs(float(value)) < 2**63:
        return "-0" if value == 0 and math.copysign(1.0, float(value)) < 0 else str(int(value))
    return str(value) if isinstance(value, np.floating) else repr(float(value))


def check_exact(array: np.ndarray, source: str, where: Callable[[int], str]) -> None:
    """Refuse a value of a 2-D ``array`` that float64, made's precision, would change (an integer beyond
    2**53), naming its row (``where``) and column."""
    cell = inexact_cell(array)
    if cell is None:
        return
    row, col = cell
    raise DataError(
        f"{source}: {where(row)}, column {col + 1}: {array[row, col]} cannot be represented exactly in "
        f"float64, the precision made computes in (integers beyond 2**53 = {EXACT_INTEGERS} lose digits), "
        "so it would come back changed; drop the column (an id?) or shift its values"
    )


def check_values(array: np.ndarray, source: str, where: Callable[[int], str], binary: bool = True) -> None:
    """Refuse a missing or infinite value, one float64 would change, and (if asked) one outside {0, 1},
    naming its place in the file."""
    check_exact(array, source, where)
    finite = np.isfinite(array)
    if not finite.all():
        row, col = np.argwhere(~finite)[0]
        what = "a missing value (every value must be given)" if np.isnan(array[row, col]) else "not a finite number"
        raise DataError(f"{source}: {where(row)}, column {col + 1}: {array[row, col]} is {what}")
    if binary:
        bad = (array != 0) & (array != 1)
        if bad.any():
            row, col = np.argwhere(bad)[0]
            raise DataError(
                f"{source}: {where(row)}, column {col + 1}: {format_value(array[row, col])} is not binary "
                "(a Bernoulli MADE needs 0/1 values; --schema auto models categorical and real columns)"
            )


def validate_splits(splits: Splits, source: str, binary: bool = True) -> Splits:
    """Check that the splits are non-empty, equally wide, finite and (if asked) binary."""
    width = splits.train.shape[1] if splits.train.ndim == 2 else None
    for name in SPLITS:
        array = splits.split(name)
        if array.shape[0] == 0:
            raise DataError(f"{source}: the {name} split is empty")
        if array.shape[1] != width:
            raise DataError(f"{source}: the {name} split has {array.shape[1]} columns, train has {width}")
        if array.shape[1] == 0:
            raise DataError(f"{source}: the data has no columns")
        check_values(array, source, splits.where(name), binary)
    return splits


def split_order(n: int, seed: int, source: str = "data") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of train, valid and test: rows shuffled with ``RandomState(seed)``, cut 80% / 10% / 10%."""
    if n < 3:
        raise DataError(f"{source}: need at least 3 rows to make train/valid/test splits, got {n}")
    order = np.random.RandomState(seed).permutation(n)
    n_valid = max(1, int(round(n * SPLIT_FRACTIONS[1])))
    n_test = max(1, int(round(n * SPLIT_FRACTIONS[2])))
    n_train = n - n_valid - n_test
    return order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :]
