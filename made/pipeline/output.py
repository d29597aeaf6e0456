"""Write what the commands make: rows (.npy or .csv, losslessly), sample grids, per-dimension NLLs and
inpainting pictures, each file written whole or not at all (:func:`made.io.atomic.atomic_write`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from ..data import format_value
from ..data.columns import dimension_names
from ..io.atomic import atomic_write
from ..io.run import samples_file
from ..plots import save_image_grid, save_inpainting

__all__ = ["save_rows", "samples_path", "write_samples", "write_per_dim", "write_inpainting"]


def _exact_dtype(rows: np.ndarray, preferred: np.dtype | None) -> np.dtype:
    """The first of ``preferred`` (the data's own dtype), uint8, int64 and float64 that holds every value exactly."""
    for dtype in ([preferred] if preferred is not None else []) + [np.uint8, np.int64]:
        with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # casts that wrap or overflow are what is tested
            if np.array_equal(rows.astype(dtype), rows):
                return np.dtype(dtype)
    return np.dtype(np.float64)


def save_rows(path: Path, rows: np.ndarray, dtype: np.dtype | None = None, header: list[str] | None = None) -> None:
    """Write rows losslessly: .npy in the first exact dtype (see :func:`_exact_dtype`), .csv with whole
    numbers as integers and other values in the shortest form that reads back the same (and ``header``)."""
    rows = rows.astype(_exact_dtype(rows, dtype))
    if path.suffix == ".npy":
        atomic_write(path, lambda tmp: np.save(tmp, rows))
        return
    lines = [",".join(header)] if header else []
    lines += [",".join(format_value(v) for v in row) for row in rows]
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))


def samples_path(run_dir: str | Path, out: str | Path | None, image: bool) -> Path:
    """Where ``made sample`` writes: ``out``, else the run folder's samples file (a picture for image data)."""
    return Path(out) if out else samples_file(run_dir, image)


def write_samples(path: Path, samples: np.ndarray, image_shape: tuple[int, int] | None) -> None:
    """Samples as a picture grid (.png, image data only) or as rows (.npy, .csv)."""
    if path.suffix == ".png":
        if image_shape is None:
            raise ValueError(f"{path}: a .png needs image-shaped data; write .npy or .csv instead")
        atomic_write(path, lambda tmp: save_image_grid(samples, image_shape, tmp))
    else:
        save_rows(path, samples)


def write_per_dim(path: Path, nll: np.ndarray, schema: list[dict], worst: int = 5) -> list[tuple[str, float]]:
    """Per-dimension NLL ``[N, D]`` to .npy, or .csv with a header naming each dimension's data columns;
    returns the ``worst`` dimensions by mean NLL, as (columns, mean) pairs."""
    names = [f"col{n}" for n in dimension_names(schema)]
    if path.suffix == ".npy":
        atomic_write(path, lambda tmp: np.save(tmp, nll))
    else:
        header = ",".join(names)
        atomic_write(path, lambda tmp: np.savetxt(tmp, nll, fmt="%.6g", delimiter=",", header=header, comments=""))
    return [(names[d], float(nll[:, d].mean())) for d in np.argsort(-nll.mean(0))[:worst]]


def write_inpainting(
    path: Path, shown: np.ndarray, given: np.ndarray, completions: np.ndarray, image_shape: tuple[int, int]
) -> None:
    """The inpainting picture: each shown image, its ``given`` half, and its completions."""
    atomic_write(path, lambda tmp: save_inpainting(shown, given, completions, image_shape, tmp))
