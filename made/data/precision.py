r"""Values on their way through made's precision: refused when float64 would change them, and put back
in their own dtype on the way out.

made reads, compares and standardizes data values at float64. Every float of 64 bits or fewer and
every integer up to :math:`2^{53}` is exact there; a larger integer (an int64 id) or a long double may
not be, and would silently come back as a neighbour: :func:`inexact_cell` finds such a value
(:func:`made.data.splits.check_exact` refuses it). :func:`in_dtype` turns the model's float64 draws
into a column's own dtype: integers rounded, and every value clipped to the range the dtype can hold,
so a draw never wraps or overflows.
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["EXACT_INTEGERS", "inexact_cell", "in_dtype"]

EXACT_INTEGERS = 2**53  # every integer of at most this size is a float64 exactly


def inexact_cell(array: np.ndarray) -> tuple[int, ...] | None:
    """Index of the first value of ``array`` that float64 cannot hold exactly, or None (no such value;
    NaN, a missing value, is not one)."""
    kind, size = array.dtype.kind, array.dtype.itemsize
    if kind not in "iuf" or (kind in "iu" and size <= 4) or (kind == "f" and size <= 8):
        return None
    if kind == "f":  # a long double: any value but NaN may carry more digits
        suspect = ~np.isnan(array)
    else:  # integers: only those beyond 2**53 can be inexact, so the cast is tested on those alone
        suspect = (array > EXACT_INTEGERS) if kind == "u" else (array > EXACT_INTEGERS) | (array < -EXACT_INTEGERS)
    where = np.argwhere(suspect)
    values = array[suspect]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # casts that overflow are what is tested
        changed = values.astype(np.float64).astype(array.dtype) != values
    if not changed.any():
        return None
    return tuple(int(i) for i in where[int(np.argmax(changed))])


def in_dtype(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Float64 ``values`` (a model's draws) as ``dtype``: booleans and integers rounded, every value clipped
    to the range ``dtype`` holds (a uint8 column gives 0..255, never a wrapped 256); NaN stays NaN in a float
    dtype."""
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return np.round(values).clip(0, 1).astype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        # the largest float64 below the integer limits, so the cast cannot overflow
        high = np.nextafter(float(info.max) + 1.0, -np.inf) if info.bits >= 53 else float(info.max)
        return np.round(values).clip(float(info.min), high).astype(dtype)
    if dtype.kind == "f":
        limits = np.finfo(dtype)
        return values.clip(float(limits.min), float(limits.max)).astype(dtype)
    return values.astype(dtype)
