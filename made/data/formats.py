r"""User files: ``.npz``, ``.npy`` and ``.csv`` read at their own precision, with where each row is.

Every loader returns :class:`Splits` (train, valid, test) at the file's own
precision (float64 for CSV, the array's dtype for ``.npy``/``.npz``): values are
checked and schemas fitted before anything is converted to the model's dtype.
Bad input raises :class:`DataError` naming the file and the line (CSV) or row.
"""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from .precision import EXACT_INTEGERS
from .splits import (
    SPLITS,
    DataError,
    DataWarning,
    Splits,
    check_values,
    format_value,
    split_order,
    validate_splits,
)

__all__ = ["Table", "available_memory", "read_table", "load_file"]


# ------------------------------------------------------------------ reading
def available_memory() -> int:
    """Bytes of memory this machine can still hand out (Linux ``MemAvailable``, else total RAM)."""
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def _npy_header(handle: IO[bytes], path: Path, member: str = "") -> tuple[int, int]:
    """Data bytes and header length that an ``.npy`` header announces, read
    without touching the data, so a header's claim can be checked before anything
    is allocated."""
    where = f"{path}{f' ({member})' if member else ''}"
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            raise DataError(f"{where}: unsupported .npy format version {version}")
    except DataError:
        raise
    except Exception as err:  # numpy parses the header with ast and tokenize: any of their errors
        raise DataError(f"{where}: not a readable .npy array ({err.__class__.__name__}: {err})") from None
    if dtype.hasobject:
        raise DataError(f"{where}: holds Python objects, which would need unpickling; refused")
    return math.prod(shape) * dtype.itemsize, handle.tell()


def _check_claim(path: Path, claimed: int, holds: int, member: str = "") -> None:
    """Refuse a header whose array size is not what the file holds, or more than memory can take."""
    where = f"{path}{f' ({member})' if member else ''}"
    if claimed != holds:
        raise DataError(
            f"{where}: the header announces {claimed:,} bytes of data, the file holds {holds:,}: truncated or corrupt"
        )
    if claimed > available_memory():
        raise DataError(f"{where}: the array takes {claimed / 2**30:.1f} GiB, more than the memory available")


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, each member's header checked against its size first."""
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
                    raise DataError(f"{path}: {info.filename} uses a compression numpy does not write")
                if info.compress_type == zipfile.ZIP_DEFLATED and info.file_size > 1100 * info.compress_size + 1024:
                    raise DataError(f"{path}: {info.filename} claims more data than its compressed size can hold")
                with archive.open(info) as member:
                    claimed, header = _npy_header(member, path, info.filename)
                _check_claim(path, claimed, info.file_size - header, info.filename)
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except DataError:
        raise
    except (
        zipfile.BadZipFile,
        zipfile.LargeZipFile,
        EOFError,
        ValueError,
        KeyError,
        RuntimeError,
        NotImplementedError,
        zlib.error,
    ) as err:
        raise DataError(f"{path}: not a readable .npz file ({err.__class__.__name__}: {err})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


def _read_npy(path: Path) -> np.ndarray:
    try:
        with open(path, "rb") as handle:
            claimed, header = _npy_header(handle, path)
            _check_claim(path, claimed, os.fstat(handle.fileno()).st_size - header)
        return np.load(path, allow_pickle=False)
    except DataError:
        raise
    except (EOFError, ValueError) as err:
        raise DataError(f"{path}: not a readable .npy file ({err})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None


MISSING = ("", "nan", "na", "n/a", "?")  # CSV cells that mark a missing value (any case)
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+(\.0*)?")  # a cell that writes a whole number in digits


@dataclass(frozen=True)
class Table:
    """One file's rows at its own precision, with where each row is in the file.

    ``lines[i]`` is the file line (CSV, 1-based, header counted) or row (``.npy``)
    of row ``i``; ``header`` the CSV's column names when it has a header line.
    """

    values: np.ndarray
    lines: np.ndarray
    unit: str
    header: list[str] | None = None

    def where(self, row: int) -> str:
        """Where row ``row`` is, as the user sees the file (``line 7``, ``row 7``)."""
        return f"{self.unit} {self.lines[row]}"


def _parse_cell(cell: str) -> float | None:
    """The number in a CSV cell, NaN for a missing-value marker, ``None`` for other text."""
    text = cell.strip()
    if text.lower() in MISSING:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return None


def _looks_like_names(row: list[str]) -> bool:
    """The header rule: a line is a header only when every cell is a name (no number, no missing marker)."""
    return all(_parse_cell(cell) is None for cell in row)


def _warn_numeric_header(path: Path, row: list[float]) -> None:
    """Say so when a first line read as data is 0, 1, ..., C-1: the header pandas writes for unnamed columns."""
    if len(row) >= 3 and row == list(range(len(row))):  # (0,1 is too common a binary row to say anything)
        warnings.warn(
            f"{path}: line 1 is 0,1,...,{len(row) - 1}, read as data; if it is a header (pandas writes "
            "one), pass --header (--no-header silences this)",
            DataWarning,
            stacklevel=2,
        )


def _read_csv(path: Path, header: bool | None = None, missing: bool = True) -> Table:
    """Numbers separated by commas, at float64, with the file line of every row.

    The first line is a header when ``header`` says so or, when it is ``None``, when
    none of its cells is a number. An empty cell or ``NA``/``N/A``/``nan``/``?`` is a
    missing value (NaN); ``missing=False`` refuses a trailing comma at once, as its
    empty last cell is not meant as a value. A blank line is a missing value in a
    one-column file and an error in a wider one. No row is ever skipped.
    """
    rows: list[np.ndarray] = []
    lines: list[int] = []
    blank: list[int] = []
    names: list[str] | None = None
    first = True
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for row in reader:
                if not row:
                    blank.append(reader.line_num)
                    continue
                if first and (header or (header is None and _looks_like_names(row))):
                    names, first = [cell.strip() for cell in row], False
                    continue
                width = rows[0].size if rows else len(names or row)
                _blank_rows(path, blank, width, rows, lines)
                values = _parse_row(path, row, reader.line_num, first and header is None)
                if len(values) != width:
                    raise DataError(f"{path}: line {reader.line_num} has {len(values)} columns, expected {width}")
                if not missing and width > 1 and not row[-1].strip():
                    raise DataError(
                        f"{path}: line {reader.line_num} has an empty last cell (column {width}): "
                        "a missing value, or a trailing comma?"
                    )
                if first and header is None:
                    _warn_numeric_header(path, values)
                rows.append(np.array(values, dtype=np.float64))
                lines.append(reader.line_num)
                first = False
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV file ({err})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if rows and rows[0].size == 1:
        _blank_rows(path, blank, 1, rows, lines)  # blank lines at the end of a one-column file are missing values
    if not rows:
        raise DataError(f"{path}: the file holds no data rows")
    return Table(np.stack(rows), np.array(lines), "line", names)


def _blank_rows(path: Path, blank: list[int], width: int, rows: list[np.ndarray], lines: list[int]) -> None:
    """Blank lines met before a data row: missing values of a one-column file, else an error."""
    if blank and width != 1:
        raise DataError(
            f"{path}: line {blank[0]} is blank, but the rows have {width} columns (write a row of "
            "missing values as empty cells)"
        )
    for line in blank:
        rows.append(np.array([math.nan]))
        lines.append(line)
    blank.clear()


def _parse_row(path: Path, row: list[str], line: int, guessed: bool) -> list[float]:
    """The numbers of one data line, or a one-line error naming the line and the cell."""
    values = [_parse_cell(cell) for cell in row]
    numbers = [value for value in values if value is not None]
    if len(numbers) < len(values):
        column = values.index(None)
        hint = (
            " (the first line holds numbers, so it is read as data; pass --header if it is a header)" if guessed else ""
        )
        raise DataError(f"{path}: line {line}, column {column + 1}: {row[column].strip()!r:.40} is not a number{hint}")
    for column, value in enumerate(numbers):  # every cell is a number here
        if math.isfinite(value) and abs(value) >= EXACT_INTEGERS and _rounded_integer(row[column], value):
            raise DataError(
                f"{path}: line {line}, column {column + 1}: {row[column].strip():.40} cannot be represented exactly "
                f"in float64, the precision made reads data in (integers beyond 2**53 = {EXACT_INTEGERS} lose "
                f"digits: it would be read as {format_value(value)}); drop the column (an id?) or shift its values"
            )
    return numbers


def _rounded_integer(text: str, value: float) -> bool:
    """Whether the cell ``text`` writes an integer in digits that float64 rounded to ``value``
    (``"9007199254740993"`` read as 9007199254740992); fractions and exponents (``1e300``) write real
    numbers, which reading rounds by design."""
    written = text.strip().replace("_", "")
    return INTEGER_TEXT.fullmatch(written) is not None and int(written.split(".")[0]) != int(value)


def read_table(path: str | Path, header: bool | None = None, missing: bool = True) -> Table:
    """One 2-D array from a ``.npy`` or ``.csv`` file at the file's precision, with row locations
    (NaN marks a missing value)."""
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        values = _as_matrix(_read_npy(path), path, "data")
        return Table(values, np.arange(1, len(values) + 1), "row")
    if suffix == ".csv":
        table = _read_csv(path, header, missing)
        return Table(_as_matrix(table.values, path, "data"), table.lines, table.unit, table.header)
    raise DataError(f"{path}: unsupported file type {suffix!r} (use .npy or .csv)")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: is not a file")


def _as_matrix(array: np.ndarray, path: Path, split: str) -> np.ndarray:
    """A 2-D array of real numbers in its own dtype (booleans as uint8), nothing rounded."""
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: {split} is not an array")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: {split} has type {array.dtype}; expected real numbers (bool, integer or float)")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{path}: {split} must be a 2-D array [examples, dimensions], got shape {array.shape}")
    return array.astype(np.uint8) if array.dtype.kind == "b" else array


def _split_table(table: Table, name: str, seed: int, source: str, binary: bool) -> Splits:
    """A single array checked where its rows are (file lines), then split 80/10/10."""
    if table.values.shape[1] == 0:
        raise DataError(f"{source}: the data has no columns")
    check_values(table.values, source, table.where, binary)
    train, valid, test = split_order(len(table.values), seed, source)
    return Splits(
        name,
        table.values[train],
        table.values[valid],
        table.values[test],
        lines=(table.lines[train], table.lines[valid], table.lines[test]),
        unit=table.unit,
        source=source,
    )


# ------------------------------------------------------------------ sources
def load_file(path: str | Path, split_seed: int = 0, binary: bool = True, header: bool | None = None) -> Splits:
    """A user file: ``.npz`` with train/valid/test (the MADE keys ``train_data`` ...
    or plain ``train`` ...) or one array, ``.npy`` or ``.csv``. A single array is
    checked, then split 80/10/10 after shuffling with ``split_seed``; ``header``
    overrides the CSV header guess.
    """
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(path)
        for keys in (("train_data", "valid_data", "test_data"), SPLITS):
            if all(k in arrays for k in keys):
                train, valid, test = (_as_matrix(arrays[k], path, s) for k, s in zip(keys, SPLITS))
                return validate_splits(Splits(path.stem, train, valid, test, source=str(path)), str(path), binary)
        matrices = [k for k, v in arrays.items() if v.ndim == 2]
        if len(matrices) != 1:
            raise DataError(
                f"{path}: expected keys train_data/valid_data/test_data, train/valid/test, "
                f"or a single 2-D array; found {sorted(arrays)}"
            )
        values = _as_matrix(arrays[matrices[0]], path, "data")
        table = Table(values, np.arange(1, len(values) + 1), f"{matrices[0]} row")
    elif suffix in (".npy", ".csv"):
        table = read_table(path, header, missing=False)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r} (use .npz, .npy or .csv)")
    return _split_table(table, path.stem, split_seed, str(path), binary)
