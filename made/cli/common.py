"""What several ``made`` commands share: the device, the data and the run to infer with."""

from __future__ import annotations

import argparse
import math

import torch

from ..pipeline import RunModel, data_spec
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


def load_for_inference(args: argparse.Namespace) -> tuple[RunModel, dict]:
    """The run of ``args.run_dir`` on ``args.device``, in its evaluation dtype and eval mode, with its config."""
    return pipeline_load(args.run_dir, pick_device(args.device))
