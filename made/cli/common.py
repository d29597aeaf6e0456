"""What several ``made`` commands share: the device, the data, run folders, tensors and rows written out."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..data import format_value
from ..data.columns import check_fitted_schema
from ..data.context import CONTEXT_SPEC
from ..io.atomic import CheckpointError, atomic_write
from ..io.checkpoint import CONFIG_FILE
from ..io.schema import SchemaError, check_fields
from ..model import MADE
from ..pipeline import data_spec
from ..training.mixture import load_run_model
from .options import MAX_ENSEMBLE, MAX_SEED

ARGS_FILE = "args.json"  # the options of 'made train' in its run folder, for --resume
# The sections 'made train' adds to config.json, checked before 'eval' and 'sample' use them.
RUN_SECTIONS = {
    "data": {"dataset": str | None, "path": str | None, "data_dir": str | None, "split_seed": int,
             "header": bool | None, "precision": Literal["file"]},
    "eval": {"ensemble": int | None, "batch_size": int, "dtype": Literal["float32", "float64"]},
}
RUN_RANGES = {
    "data": {"split_seed": lambda v: 0 <= v <= MAX_SEED},
    "eval": {"ensemble": lambda v: v is None or 1 <= v <= MAX_ENSEMBLE, "batch_size": lambda v: v >= 1},
}


def pick_device(name: str) -> torch.device:
    """The device of ``--device``, refused in one line unless this machine has it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: unknown device {name!r}") from None
    if device.type == "meta":
        raise ValueError("--device meta holds no values, so nothing can be trained or evaluated on it; use cpu or a GPU")
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


def args_data_spec(args: argparse.Namespace) -> dict:
    """The data named by ``--dataset`` or ``--data``, ``--data-dir``, ``--split-seed`` and ``--header``."""
    return data_spec(args.dataset, args.data, args.data_dir, args.split_seed, args.header)


def all_binary(schema: list[dict]) -> bool:
    """Whether every column of ``schema`` is binary (the data is then read as 0/1)."""
    return all(c["type"] == "binary" for c in schema)


def run_schema(config: dict, model: MADE) -> list[dict]:
    """The run's column schema (all binary for runs that predate schemas)."""
    return config.get("schema") or [{"type": "binary"}] * model.num_inputs


def load_run(run_dir: str, device: torch.device) -> tuple[MADE, dict]:
    """The model and config of a run folder, with the sections ``made train`` adds checked too."""
    run = Path(run_dir)
    if (run / ARGS_FILE).is_file() and not (run / CONFIG_FILE).exists():
        raise CheckpointError(f"{run}: training did not finish (no {CONFIG_FILE}); "
                              f"continue it with made train --resume {run}")
    model, config = load_run_model(run_dir, device)
    try:
        for section, hints in RUN_SECTIONS.items():
            if section in config:  # header and precision: not in runs of made 0.2
                check_fields(config[section], hints, f"{Path(run_dir) / CONFIG_FILE}: {section}",
                             ranges=RUN_RANGES[section], optional=("header", "precision"))
        if config.get("schema") is not None:
            check_fitted_schema(config["schema"], model.family, f"{Path(run_dir) / CONFIG_FILE}: schema")
        if config.get("context") is not None:
            check_fields(config["context"], CONTEXT_SPEC, f"{Path(run_dir) / CONFIG_FILE}: context",
                         ranges={"classes": lambda v: v >= 1})
            if config["context"]["classes"] != model.context_size:
                raise SchemaError(f"{Path(run_dir) / CONFIG_FILE}: context has {config['context']['classes']} "
                                  f"classes, the model takes {model.context_size} context inputs")
        elif model.context_size:
            raise SchemaError(f"{Path(run_dir) / CONFIG_FILE}: the model takes a context but the config has none")
        shape = config.get("image_shape")
        if shape is not None and not (isinstance(shape, list) and len(shape) == 2 and
                                      all(type(v) is int and v > 0 for v in shape)):
            raise SchemaError(f"{Path(run_dir) / CONFIG_FILE}: image_shape must be two positive integers or null")
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    return model, config


def load_for_inference(args: argparse.Namespace) -> tuple[MADE, dict]:
    """The run of ``args.run_dir`` on ``args.device``, in its evaluation dtype and eval mode, with its config."""
    model, config = load_run(args.run_dir, pick_device(args.device))
    model = model.to(getattr(torch, config.get("eval", {}).get("dtype", "float32")))
    model.eval()
    return model, config


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


def batches(total: int, size: int, desc: str, quiet: bool) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(total)``, with a progress bar when there is more than one."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, disable=True if quiet or total <= size else None)
    for start in range(0, total, size):
        stop = min(start + size, total)
        yield start, stop
        bar.update(stop - start)
    bar.close()
