r"""Run folders: weights in safetensors, settings and metrics in JSON, written atomically.

Loading reads tensors with safetensors and settings with ``json``: nothing is
ever unpickled, so a checkpoint from a stranger cannot run code.
"""

from __future__ import annotations

import inspect
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from . import __version__
from .model import MADE

__all__ = [
    "CheckpointError",
    "FORMAT_VERSION",
    "atomic_write",
    "write_json",
    "read_json",
    "save_model",
    "load_model",
]

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE = "config.json", "model.safetensors", "metrics.json"
MODEL_KEYS = set(inspect.signature(MADE).parameters)


class CheckpointError(ValueError):
    """A run folder or checkpoint that cannot be trusted or read."""


def atomic_write(path: str | Path, write: Any) -> None:
    """Call ``write(tmp_path)`` then fsync and rename over ``path``: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_json(path: str | Path, data: dict) -> None:
    """Write ``data`` as indented JSON, atomically."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def read_json(path: str | Path) -> dict:
    """Read a JSON object, with a clear error for a missing or corrupt file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def save_model(run_dir: str | Path, model: MADE, extra: dict | None = None) -> None:
    """Write ``model.safetensors`` and ``config.json`` (the model's config plus ``extra``)."""
    run_dir = Path(run_dir)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {"format_version": FORMAT_VERSION, "made_version": __version__, "model": model.config()}
    config.update(extra or {})
    atomic_write(run_dir / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp))
    write_json(run_dir / CONFIG_FILE, config)


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[MADE, dict]:
    """Rebuild the model of a run folder and return it with the folder's config.

    Refuses an unknown format version, unknown or missing settings, and weights
    or masks that do not match the architecture the config describes.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: not a run folder (no such directory)")
    config = read_json(run_dir / CONFIG_FILE)
    if config.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{run_dir / CONFIG_FILE}: unknown format_version {config.get('format_version')!r} "
            f"(this made reads {FORMAT_VERSION})"
        )
    settings = config.get("model")
    if not isinstance(settings, dict) or set(settings) != MODEL_KEYS:
        got = sorted(settings) if isinstance(settings, dict) else settings
        raise CheckpointError(f"{run_dir / CONFIG_FILE}: 'model' must have keys {sorted(MODEL_KEYS)}, got {got}")
    try:
        model = MADE(**settings)
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{run_dir / CONFIG_FILE}: invalid model settings ({err})") from None
    weights = run_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise CheckpointError(f"{weights}: no such file")
    try:
        state = load_file(weights)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{weights}: not a readable safetensors file ({err})") from None
    expected = model.state_dict()
    missing, unknown = set(expected) - set(state), set(state) - set(expected)
    if missing or unknown:
        raise CheckpointError(f"{weights}: missing tensors {sorted(missing)}, unexpected {sorted(unknown)}")
    for key, tensor in state.items():
        if tensor.shape != expected[key].shape:
            raise CheckpointError(
                f"{weights}: {key} has shape {list(tensor.shape)}, the config needs {list(expected[key].shape)}"
            )
    model.load_state_dict(state)
    _check_masks(model, weights)
    return model.to(device), config


def _check_masks(model: MADE, source: Path) -> None:
    """The stored masks must be exactly those the stored mask seed generates."""
    stored = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("mask") or k == "ordering"}
    model.set_mask_seed(int(model.mask_seed))
    regenerated = model.state_dict()
    for key, tensor in stored.items():
        if not torch.equal(tensor, regenerated[key]):
            raise CheckpointError(f"{source}: {key} does not match the masks of the stored seed and config")
