r"""Data sets: the built-in ``digits``, the paper's sets by name, and user files.

Every loader returns :class:`Splits` (train, valid, test as float32 arrays) and
raises :class:`DataError` with the file and the problem for bad input.
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

__all__ = [
    "DataError",
    "Splits",
    "DatasetInfo",
    "DATASETS",
    "load_dataset",
    "load_file",
    "load_data",
    "read_array",
    "validate_splits",
    "cache_dir",
]

SPLITS = ("train", "valid", "test")
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
_GITHUB = "https://raw.githubusercontent.com/mgermain/MADE/master/datasets"
_RELEASE = "https://github.com/mgermain/MADE/releases/download/ICML2015"


class DataError(ValueError):
    """Bad or unreadable data; the message names the file and the problem."""


@dataclass(frozen=True)
class Splits:
    """Train, validation and test arrays ``[N, D]`` (float32) of one data set.

    ``labels`` holds the class label of every row (train, valid, test) where the
    data set has them (digits), for class-conditional models.
    """

    name: str
    train: np.ndarray
    valid: np.ndarray
    test: np.ndarray
    image_shape: tuple[int, int] | None = None
    labels: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    @property
    def num_inputs(self) -> int:
        return self.train.shape[1]

    def split(self, name: str) -> np.ndarray:
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {name!r}")
        return getattr(self, name)


@dataclass(frozen=True)
class DatasetInfo:
    """A paper data set: where to get it and what it must look like.

    ``content_sha256`` hashes the 0/1 values (as uint8, train then valid then
    test), so the float32 originals and uint8 re-saves of the same data agree.
    It is known for the sets we could inspect; the others are checked by shape.
    """

    url: str
    num_inputs: int
    sizes: tuple[int, int, int]
    content_sha256: str | None = None
    image_shape: tuple[int, int] | None = None


DATASETS: dict[str, DatasetInfo] = {
    "adult": DatasetInfo(f"{_GITHUB}/adult.npz", 123, (5000, 1414, 26147)),
    "binarized_mnist": DatasetInfo(
        f"{_RELEASE}/binarized_mnist.npz",
        784,
        (50000, 10000, 10000),
        "07ad6da6ba6894a550cb68ae290ff3deb006a01f6b6ce1b3123edec502f1fce8",
        (28, 28),
    ),
    "connect4": DatasetInfo(f"{_GITHUB}/connect4.npz", 126, (16000, 4000, 47557)),
    "dna": DatasetInfo(
        f"{_GITHUB}/dna.npz",
        180,
        (1400, 600, 1186),
        "8f65d8ffdfff0d7fbd88c69e5fb90b05e0a671fbac59900c4fe607a8be3c1b41",
    ),
    "mushrooms": DatasetInfo(
        f"{_GITHUB}/mushrooms.npz",
        112,
        (2000, 500, 5624),
        "c129bab9732f4a35900d99cfc0c259e2cc6efd950292a4eaa193bbc88cc7c092",
    ),
    "nips": DatasetInfo(
        f"{_GITHUB}/nips.npz",
        500,
        (400, 100, 1240),
        "21d5556732ab50d51830c7c6bae988d0f7ba42dd586ec9df38915c5b955f6f1f",
    ),
    "ocr_letters": DatasetInfo(f"{_GITHUB}/ocr_letters.npz", 128, (32152, 10000, 10000)),
    "rcv1": DatasetInfo(f"{_RELEASE}/rcv1.npz", 150, (40000, 10000, 150000)),
    "web": DatasetInfo(f"{_GITHUB}/web.npz", 300, (14000, 3188, 32561)),
}
BUILTIN = ("digits",)


def cache_dir() -> Path:
    """Where downloads are kept: ``$MADE_CACHE_DIR`` or ``~/.cache/made``."""
    return Path(os.environ.get("MADE_CACHE_DIR", Path.home() / ".cache" / "made"))


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


def _npy_header(handle: BinaryIO, path: Path, member: str = "") -> tuple[int, int]:
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
        raise DataError(f"{where}: the header announces {claimed:,} bytes of data, the file holds {holds:,}: "
                        "truncated or corrupt")
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
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, KeyError, RuntimeError,
            NotImplementedError, zlib.error) as err:
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


def _parse_cell(cell: str) -> float:
    text = cell.strip()
    if text == "" or text.lower() in ("nan", "na", "?"):
        return math.nan
    return float(text)


def _read_csv(path: Path) -> np.ndarray:
    """Numbers separated by commas; an optional header line; empty or NaN cells become NaN.

    Rows are parsed one at a time into float arrays, so memory stays a small
    multiple of the file's size.
    """
    rows: list[np.ndarray] = []
    first = True
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                try:
                    values = [_parse_cell(cell) for cell in row]
                except ValueError:
                    if first:
                        first = False
                        continue  # a header line
                    column = next(j for j, cell in enumerate(row) if not _is_number(cell))
                    raise DataError(f"{path}: line {reader.line_num}, column {column + 1}: "
                                    f"{row[column]!r:.40} is not a number") from None
                if rows and len(values) != rows[0].size:
                    raise DataError(f"{path}: line {reader.line_num} has {len(values)} columns, expected {rows[0].size}")
                rows.append(np.array(values, dtype=np.float64))
                first = False
    except UnicodeDecodeError:
        raise DataError(f"{path}: not a text CSV file") from None
    except csv.Error as err:
        raise DataError(f"{path}: not a readable CSV file ({err})") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    if not rows:
        raise DataError(f"{path}: the file holds no data rows")
    return np.stack(rows)


def _is_number(cell: str) -> bool:
    try:
        _parse_cell(cell)
    except ValueError:
        return False
    return True


def read_array(path: str | Path) -> np.ndarray:
    """One 2-D array from a ``.npy`` or ``.csv`` file (NaN marks missing values)."""
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        array = _read_npy(path)
    elif suffix == ".csv":
        array = _read_csv(path)
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r} (use .npy or .csv)")
    return _as_matrix(array, path, "data")


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if not path.is_file():
        raise DataError(f"{path}: is not a file")


def _as_matrix(array: np.ndarray, path: Path, split: str) -> np.ndarray:
    if not isinstance(array, np.ndarray):
        raise DataError(f"{path}: {split} is not an array")
    if array.dtype.kind not in "biuf":
        raise DataError(f"{path}: {split} has type {array.dtype}; expected real numbers (bool, integer or float)")
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2:
        raise DataError(f"{path}: {split} must be a 2-D array [examples, dimensions], got shape {array.shape}")
    with np.errstate(over="ignore"):  # a value beyond float32 becomes inf and is reported by validation
        return array.astype(np.float32)


# --------------------------------------------------------------- validation
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
        finite = np.isfinite(array)
        if not finite.all():
            row, col = np.argwhere(~finite)[0]
            raise DataError(f"{source}: the {name} split has {array[row, col]} at row {row + 1}, column {col + 1}")
        if binary:
            bad = (array != 0) & (array != 1)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                raise DataError(
                    f"{source}: the {name} split is not binary: {array[row, col]:g} at row {row + 1}, "
                    f"column {col + 1} (a Bernoulli MADE needs 0/1 values; --schema auto models categorical "
                    "and real columns)"
                )
    return splits


def split_rows(array: np.ndarray, seed: int, source: str = "data") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shuffle rows with ``RandomState(seed)`` and cut 80% / 10% / 10% (train, valid, test)."""
    n = array.shape[0]
    if n < 3:
        raise DataError(f"{source}: need at least 3 rows to make train/valid/test splits, got {n}")
    order = np.random.RandomState(seed).permutation(n)
    n_valid = max(1, int(round(n * SPLIT_FRACTIONS[1])))
    n_test = max(1, int(round(n * SPLIT_FRACTIONS[2])))
    n_train = n - n_valid - n_test
    return array[order[:n_train]], array[order[n_train : n_train + n_valid]], array[order[n_train + n_valid :]]


# ------------------------------------------------------------------ sources
def load_file(path: str | Path, split_seed: int = 0, binary: bool = True) -> Splits:
    """A user file: ``.npz`` with train/valid/test (the MADE keys ``train_data`` ...
    or plain ``train`` ...) or one array, ``.npy`` or ``.csv``. A single array is
    split 80/10/10 after shuffling with ``split_seed``.
    """
    path = Path(path)
    _check_file(path)
    suffix = path.suffix.lower()
    if suffix == ".npz":
        arrays = _read_npz(path)
        for keys in (("train_data", "valid_data", "test_data"), SPLITS):
            if all(k in arrays for k in keys):
                parts = [_as_matrix(arrays[k], path, s) for k, s in zip(keys, SPLITS)]
                break
        else:
            matrices = [k for k, v in arrays.items() if v.ndim == 2]
            if len(matrices) != 1:
                raise DataError(
                    f"{path}: expected keys train_data/valid_data/test_data, train/valid/test, "
                    f"or a single 2-D array; found {sorted(arrays)}"
                )
            parts = split_rows(_as_matrix(arrays[matrices[0]], path, "data"), split_seed, str(path))
    elif suffix in (".npy", ".csv"):
        parts = split_rows(read_array(path), split_seed, str(path))
    else:
        raise DataError(f"{path}: unsupported file type {suffix!r} (use .npz, .npy or .csv)")
    return validate_splits(Splits(path.stem, *parts), str(path), binary)


def _digits() -> Splits:
    """scikit-learn's 8x8 digits, binarized at pixel >= 8, split 1197/300/300 by RandomState(0), with labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    binary = (digits.data >= 8).astype(np.float32)
    order = np.random.RandomState(0).permutation(len(binary))
    parts = (order[:1197], order[1197:1497], order[1497:])
    return Splits(
        "digits", *(binary[p] for p in parts), image_shape=(8, 8), labels=tuple(digits.target[p] for p in parts)
    )


def _content_sha256(parts: list[np.ndarray]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(np.ascontiguousarray(part.astype(np.uint8)).tobytes())
    return digest.hexdigest()


def _download(name: str, info: DatasetInfo, target: Path) -> None:
    """Fetch ``info.url`` into ``target`` atomically, refusing content that fails its checks."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{name}.", suffix=".part.npz")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                with urllib.request.urlopen(info.url, timeout=60) as response:
                    while chunk := response.read(1 << 20):
                        out.write(chunk)
            except (urllib.error.URLError, OSError) as err:
                raise DataError(
                    f"could not download {name} from {info.url} ({err}); with no network, put "
                    f"{name}.npz in a folder and pass --data-dir (or set MADE_DATA_DIR)"
                ) from None
            out.flush()
            os.fsync(out.fileno())
        _check_paper_file(name, info, Path(tmp), verify_content=True)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _check_paper_file(name: str, info: DatasetInfo, path: Path, verify_content: bool) -> Splits:
    splits = load_file(path)
    sizes = tuple(splits.split(s).shape[0] for s in SPLITS)
    if splits.num_inputs != info.num_inputs or sizes != info.sizes:
        raise DataError(
            f"{path}: {name} should have {info.num_inputs} columns and {info.sizes} rows, "
            f"found {splits.num_inputs} and {sizes}"
        )
    if verify_content and info.content_sha256:
        digest = _content_sha256([splits.train, splits.valid, splits.test])
        if digest != info.content_sha256:
            raise DataError(f"{path}: checksum mismatch for {name} (got {digest}, expected {info.content_sha256})")
    return Splits(name, splits.train, splits.valid, splits.test, info.image_shape)


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = True) -> Splits:
    """A data set by name: ``digits`` (built in) or one of the paper's :data:`DATASETS`.

    Paper sets are read from ``data_dir`` (or ``$MADE_DATA_DIR``) when the file is
    there, else from the cache, else downloaded once into the cache.
    """
    if name == "digits":
        return _digits()
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; known: {', '.join(BUILTIN + tuple(DATASETS))}")
    info = DATASETS[name]
    folder = data_dir or os.environ.get("MADE_DATA_DIR")
    if folder:
        local = Path(folder) / f"{name}.npz"
        if local.exists():
            return _check_paper_file(name, info, local, verify_content=False)
        if data_dir:
            raise DataError(f"{local}: no such file (the data folder given has no {name}.npz)")
    cached = cache_dir() / f"{name}.npz"
    if not cached.exists():
        if not download:
            raise DataError(f"{name} is not in {cache_dir()} and downloading is off")
        _download(name, info, cached)
    return _check_paper_file(name, info, cached, verify_content=False)


def load_data(
    dataset: str | None = None,
    path: str | Path | None = None,
    data_dir: str | Path | None = None,
    split_seed: int = 0,
    binary: bool = True,
) -> Splits:
    """Load either a named data set or a user file (exactly one of the two).

    ``binary=False`` accepts any finite numbers in a user file (for categorical and
    real columns, see :mod:`made.columns`).
    """
    if (dataset is None) == (path is None):
        raise DataError("give either a data set name or a data file, not both or neither")
    if path is not None:
        return load_file(path, split_seed, binary)
    return load_dataset(dataset, data_dir)
