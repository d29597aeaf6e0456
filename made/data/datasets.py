"""Data sets by name: the built-in ``digits`` and the paper's sets, read from a folder, the cache, or
downloaded once (checked by shape and, where known, by content)."""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .formats import load_file
from .splits import SPLITS, DataError, Splits

__all__ = ["DatasetInfo", "DATASETS", "BUILTIN", "cache_dir", "load_dataset", "load_data"]

_GITHUB = "https://raw.githubusercontent.com/mgermain/MADE/master/datasets"
_RELEASE = "https://github.com/mgermain/MADE/releases/download/ICML2015"


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


def _digits() -> Splits:
    """scikit-learn's 8x8 digits, binarized at pixel >= 8, split 1197/300/300 by RandomState(0), with labels."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    binary = (digits.data >= 8).astype(np.float32)
    order = np.random.RandomState(0).permutation(len(binary))
    train, valid, test = order[:1197], order[1197:1497], order[1497:]
    labels = (digits.target[train], digits.target[valid], digits.target[test])
    return Splits("digits", binary[train], binary[valid], binary[test], image_shape=(8, 8), labels=labels)


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
    header: bool | None = None,
) -> Splits:
    """Load either a named data set or a user file (exactly one of the two).

    ``binary=False`` accepts any finite numbers in a user file (for categorical and
    real columns, see :mod:`made.data.columns`); ``header`` overrides a CSV's header guess.
    """
    if (dataset is None) == (path is None):
        raise DataError("give either a data set name or a data file, not both or neither")
    if path is not None:
        return load_file(path, split_seed, binary, header)
    assert dataset is not None  # exactly one of the two is given (checked above)
    return load_dataset(dataset, data_dir)
