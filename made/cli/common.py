"""What several ``made`` commands share: the device, the data, the run to infer with, and rows written out."""

from __future__ import annotations

import argparse
import math
import warnings
from pathlib import Path

import numpy as np
import torch

from ..data import format_value
from ..io.atomic import atomic_write
from ..model import MADE
from ..model.mixture import Mixture
from ..pipeline import data_spec
from ..pipeline import load_for_inference as pipeline_load


def pick_device(name: str) -> torch.device:
    """The device of ``--device``, refused in one line unless this machine has it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: unknown device {name!r}") from None
    if device.type == "meta":
        raise ValueError(
            "--device meta holds no values, so nothing can be trained or evaluated on it; use cpu or a GPU"
        )
    if device.type != "cpu" and not _device_available(device):
        raise ValueError(f"--device {name}: this machine has no such device")
    return device


def _device_available(device: torch.device) -> bool:
    """Whether torch can reach ``device`` here: its backend is built in, finds hardware and has that index."""
    if device.type == "mps":
        return torch.backends.mps.is_available() and device.index in (None, 0)
    backend = getattr(torch, device.type, None)  # torch.cuda, torch.xpu, torch.hpu, torch.mtia ...
    if backend is None or not callable(getattr(backend, "is_available", None)) or not backend.is_available():
        return False
    count = getattr(backend, "device_count", None)
    return device.index is None or count is None or device.index < count()


def nats(value: float | None) -> str:
    """An NLL for a report line: four decimals, or ``inf`` where it is infinite (JSON keeps that as null)."""
    return "inf" if value is None or not math.isfinite(value) else f"{value:.4f}"


def args_data_spec(args: argparse.Namespace) -> dict:
    """The data named by ``--dataset`` or ``--data``, ``--data-dir``, ``--split-seed`` and ``--header``."""
    return data_spec(args.dataset, args.data, args.data_dir, args.split_seed, args.header)


def load_for_inference(args: argparse.Namespace) -> tuple[MADE | Mixture, dict]:
    """The run of ``args.run_dir`` on ``args.device``, in its evaluation dtype and eval mode, with its config."""
    return pipeline_load(args.run_dir, pick_device(args.device))


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
