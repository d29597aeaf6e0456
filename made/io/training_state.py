r"""Training checkpoints: a run folder's checkpoint folder (its layout: :mod:`made.io.run`), written so
that a killed run resumes exactly.

A checkpoint is a state record plus the safetensors files it names with their SHA-256: a state file
(weights, optimizer tensors, RNG states) and a best file (the best weights so far). The files are
written first and the record last, each by
:func:`~made.io.atomic.atomic_write`, so a process killed at any moment leaves the previous checkpoint
whole; files no committed state record names are deleted on the next save or load (only names this
module writes, never through a symbolic link).
"""

from __future__ import annotations

import copy
import hashlib
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from .. import __version__
from ..data.fields import SchemaError, check_fields
from ..model.made import MADE
from .atomic import CheckpointError, atomic_write, check_no_links, read_json, write_json
from .checkpoint import FORMAT_VERSION, check_format_version, check_masks, load_tensors, read_state_dict
from .run import CHECKPOINT_FILE, CHECKPOINT_TEMPORARY, STATE_FILE, checkpoint_file

__all__ = ["has_training_state", "clear_training_state", "save_training_state", "load_training_state"]

OPTIMIZER_STATE_KEYS = {
    "Adam": {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    "AdamW": {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"},
    "SGD": {"momentum_buffer"},
    "Adagrad": {"step", "sum"},
    "Adadelta": {"step", "square_avg", "acc_delta"},
}
PROGRESS_HINTS = {
    "epoch": int,
    "step": int,
    "best_valid_nll": float | None,  # None before the first validation (JSON has no infinity)
    "best_epoch": int,
    "seconds": float,
    "log": list[dict[str, Any]],
    "fingerprint": dict[str, Any],
    "finished": bool,  # training has stopped (epochs, patience or time budget): resuming only writes the results
}
PROGRESS_RANGES: dict[str, Callable[[Any], bool]] = {
    "epoch": lambda v: v >= 1,
    "step": lambda v: v >= 1,
    "best_valid_nll": lambda v: v is None or math.isfinite(v),
    "best_epoch": lambda v: v >= 0,
    "seconds": lambda v: math.isfinite(v) and v >= 0,
}
LOG_HINTS = {
    "epoch": int,
    "train_nll": float,
    "valid_nll": float | None,
    "best_valid_nll": float | None,
    "seconds": float,
}
LOG_RANGES: dict[str, Callable[[Any], bool]] = {
    "train_nll": math.isfinite,
    "seconds": lambda v: math.isfinite(v) and v >= 0,
}
STATE_HINTS = {
    "format_version": int,
    "made_version": str,
    "progress": dict[str, Any],
    "files": dict[str, str],
    "sha256": dict[str, str],
}


def has_training_state(directory: str | Path) -> bool:
    """Whether ``directory`` holds a committed training checkpoint."""
    return (Path(directory) / STATE_FILE).is_file()


def clear_training_state(directory: str | Path) -> None:
    """Delete a training checkpoint (``state.json`` first, so no half of one is ever taken for whole)."""
    directory = Path(directory)
    check_no_links(directory)
    (directory / STATE_FILE).unlink(missing_ok=True)
    _delete_unreferenced(directory, set())


def save_training_state(
    directory: str | Path,
    model: MADE,
    optimizer: torch.optim.Optimizer,
    order_generator: torch.Generator,
    progress: dict,
    best_weights: dict[str, Tensor] | None,
) -> None:
    """Commit a training checkpoint: where training stands (``progress``: epoch, step,
    best epoch and NLL, seconds, log, fingerprint), the current weights, optimizer and
    RNG states, and the best weights so far."""
    directory = Path(directory)
    check_no_links(directory)
    _check_progress(progress, "progress")
    epoch, best_epoch = progress["epoch"], progress["best_epoch"]
    tensors = {f"model.{k}": v for k, v in model.state_dict().items()}
    tensors.update(_optimizer_tensors(optimizer))
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.order"] = order_generator.get_state()
    if torch.cuda.is_available():
        tensors.update({f"rng.cuda.{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    files = {"state": checkpoint_file("state", epoch)}
    _write_tensors(directory / files["state"], tensors)
    if best_weights is not None:
        files["best"] = checkpoint_file("best", best_epoch)
        if not (directory / files["best"]).is_file():  # an existing one is the committed checkpoint's
            _write_tensors(directory / files["best"], best_weights)
    record = {
        "format_version": FORMAT_VERSION,
        "made_version": __version__,
        "progress": progress,
        "files": files,
        "sha256": {name: _sha256(directory / name) for name in files.values()},
    }
    write_json(directory / STATE_FILE, record)
    _delete_unreferenced(directory, set(files.values()))


def load_training_state(
    directory: str | Path,
    model: MADE,
    optimizer: torch.optim.Optimizer,
    order_generator: torch.Generator,
    fingerprint: dict | None = None,
) -> tuple[dict, dict[str, Tensor] | None]:
    """Restore a committed checkpoint into ``model``, ``optimizer``, ``order_generator`` and
    the global RNGs; return its ``progress`` and the best weights so far.

    Everything is checked before anything is changed: the JSON against its schema,
    the stored ``fingerprint`` (what was trained, how, on what) against the one
    given, each file against its SHA-256, every tensor's name and shape, the masks
    against their seed. Leftovers of an unfinished save are deleted.
    """
    directory = Path(directory)
    check_no_links(directory)
    record = _read_record(directory, fingerprint)
    files = record["files"]
    state_path = directory / files["state"]
    tensors = load_tensors(state_path)
    weights = read_state_dict(model, state_path, tensors, prefix="model.")
    best = None
    if "best" in files:
        best_path = directory / files["best"]
        scratch = copy.deepcopy(model)
        best = read_state_dict(scratch, best_path, load_tensors(best_path))
        scratch.load_state_dict(best)
        check_masks(scratch, best_path)
    optimizer_state = _optimizer_state(optimizer, tensors, state_path)
    rng = {k: tensors[k] for k in ("rng.torch", "rng.order") if k in tensors}
    if len(rng) != 2 or any(t.dtype != torch.uint8 or t.dim() != 1 for t in rng.values()):
        raise CheckpointError(f"{state_path}: the RNG states are missing or not byte tensors")
    model.load_state_dict(weights)
    check_masks(model, state_path)
    try:
        optimizer.load_state_dict(optimizer_state)
        torch.set_rng_state(rng["rng.torch"])
        order_generator.set_state(rng["rng.order"])
    except (RuntimeError, ValueError, KeyError) as err:
        raise CheckpointError(f"{state_path}: cannot restore the optimizer or RNG state ({err})") from None
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("rng.cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    _delete_unreferenced(directory, set(files.values()))
    return record["progress"], best


def _read_record(directory: Path, fingerprint: dict | None) -> dict:
    """The committed ``state.json`` of ``directory``, checked: its schema and progress, its ``fingerprint``
    against the one given (if any), and each file it names against its SHA-256."""
    source = directory / STATE_FILE
    record = read_json(source)
    check_format_version(record, source)
    try:
        check_fields(record, STATE_HINTS, str(source))
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    _check_progress(record["progress"], f"{source}: progress")
    stored = record["progress"]["fingerprint"]
    if fingerprint is not None and stored != fingerprint:
        differ = sorted(k for k in set(stored) | set(fingerprint) if stored.get(k) != fingerprint.get(k))
        raise CheckpointError(
            f"{source}: this checkpoint was written for another {' and '.join(differ)}; cannot resume"
        )
    files = record["files"]
    if set(files) - {"state", "best"} or "state" not in files or set(record["sha256"]) != set(files.values()):
        raise CheckpointError(f"{source}: 'files' must name a state file (and a best file) with their sha256")
    for name in files.values():
        if not CHECKPOINT_FILE.fullmatch(name):
            raise CheckpointError(f"{source}: {name!r} is not a checkpoint file name")
        if not (directory / name).is_file() or _sha256(directory / name) != record["sha256"][name]:
            raise CheckpointError(f"{directory / name}: missing, or not the file {STATE_FILE} was written with")
    return record


def _check_progress(progress: Any, where: str) -> None:
    """The progress record is whole and consistent: every field in range, the best epoch
    reached, and the log one entry per epoch done, in order."""
    try:
        check_fields(progress, PROGRESS_HINTS, where, optional=["finished"], ranges=PROGRESS_RANGES)
        for number, entry in enumerate(progress["log"], start=1):
            check_fields(entry, LOG_HINTS, f"{where}.log[{number - 1}]", ranges=LOG_RANGES)
            if entry["epoch"] != number:
                raise SchemaError(f"{where}.log[{number - 1}].epoch must be {number}, got {entry['epoch']!r:.40}")
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    if len(progress["log"]) != progress["epoch"] or progress["best_epoch"] > progress["epoch"]:
        raise CheckpointError(
            f"{where}: epoch {progress['epoch']} does not match its log of "
            f"{len(progress['log'])} epochs and best epoch {progress['best_epoch']}"
        )


def _write_tensors(path: Path, tensors: dict[str, Tensor]) -> None:
    """Write tensors (moved to the CPU) as a safetensors file, atomically."""
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, tmp))


def _sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _delete_unreferenced(directory: Path, keep: set[str]) -> None:
    """Delete this module's files that ``keep`` does not name: checkpoint files and the temporary
    files of their interrupted writes, each matched by its exact name (never a link)."""
    if directory.is_dir():
        for path in directory.iterdir():
            own = CHECKPOINT_FILE.fullmatch(path.name) or CHECKPOINT_TEMPORARY.fullmatch(path.name)
            if own and path.name not in keep and not path.is_symlink():
                path.unlink(missing_ok=True)


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> dict[str, Tensor]:
    """The optimizer's per-parameter tensors as ``optimizer.INDEX.NAME``; its hyperparameters
    are not stored, they come back from the training config."""
    allowed = OPTIMIZER_STATE_KEYS.get(type(optimizer).__name__)
    if allowed is None:
        raise ValueError(f"cannot checkpoint a {type(optimizer).__name__} optimizer")
    tensors = {}
    for index, entry in optimizer.state_dict()["state"].items():
        for name, value in entry.items():
            if name not in allowed or not isinstance(value, Tensor):
                raise ValueError(f"cannot checkpoint the optimizer state {name!r} = {value!r:.40}")
            tensors[f"optimizer.{index}.{name}"] = value
    return tensors


def _optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, Tensor], source: Path) -> dict:
    """Rebuild ``optimizer.state_dict()`` from stored tensors, each checked against its parameter."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    allowed = OPTIMIZER_STATE_KEYS[type(optimizer).__name__]
    state: dict[int, dict[str, Tensor]] = {}
    for key, tensor in tensors.items():
        if not key.startswith("optimizer."):
            continue
        _, index, name = key.split(".", 2)
        if not index.isdigit() or int(index) >= len(params) or name not in allowed:
            raise CheckpointError(f"{source}: unexpected optimizer tensor {key!r}")
        shape = [] if name == "step" else list(params[int(index)].shape)
        if list(tensor.shape) != shape or not tensor.dtype.is_floating_point:
            raise CheckpointError(f"{source}: {key} has shape {list(tensor.shape)} ({tensor.dtype}), expected {shape}")
        state.setdefault(int(index), {})[name] = tensor
    return {"state": state, "param_groups": optimizer.state_dict()["param_groups"]}
