r"""Run folders and training checkpoints: tensors in safetensors, the rest in JSON, written atomically.

Loading reads tensors with safetensors and settings with ``json``, and checks
every JSON field against the type and values the code expects (:mod:`made.schema`):
nothing is ever unpickled, so a checkpoint from a stranger cannot run code, and a
config cannot make the loader allocate more than the weights file holds.

A training checkpoint (``RUN_DIR/checkpoint/``) is ``state.json`` plus the
safetensors files it names with their SHA-256: ``state-EPOCH.safetensors``
(weights, optimizer tensors, RNG states) and ``best-EPOCH.safetensors`` (the
best weights so far). The files are written first and ``state.json`` last, each
by :func:`atomic_write`, so a process killed at any moment leaves the previous
checkpoint whole; files no committed ``state.json`` names are deleted on the
next save or load (only names this module writes, never through a symbolic link).
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import math
import os
import re
import signal
import tempfile
import typing
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from . import __version__
from .families import make_family
from .model import ACTIVATIONS, MADE, NarrowLayerWarning
from .network import BLOCK_TYPES, build_network
from .schema import SchemaError, check_fields

__all__ = [
    "CheckpointError",
    "FORMAT_VERSION",
    "MAX_POOL",
    "atomic_write",
    "write_json",
    "read_json",
    "check_no_links",
    "crash_point",
    "count_weights",
    "check_model_settings",
    "save_model",
    "load_model",
    "mask_state",
    "has_training_state",
    "clear_training_state",
    "save_training_state",
    "load_training_state",
]

FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE = "config.json", "model.safetensors", "metrics.json"
STATE_FILE = "state.json"
MAX_POOL = 1_000_000  # largest finite mask pool; beyond it use "unlimited"
MODEL_HINTS = {k: v for k, v in typing.get_type_hints(MADE.__init__).items() if k != "return"}
MODEL_KEYS = set(MODEL_HINTS)
MODEL_DEFAULTS = {k: p.default for k, p in inspect.signature(MADE).parameters.items() if p.default is not p.empty}
# Settings that made 0.3 added, with the value that rebuilds an older model.
ADDED_IN_0_3 = {"blocks": [], "dropout": 0.0}
MODEL_RANGES: dict[str, Callable[[Any], bool]] = {
    "num_inputs": lambda v: v >= 1,
    "hidden_sizes": lambda v: all(h >= 1 for h in v),
    "num_masks": lambda v: v == "unlimited" or 1 <= v <= MAX_POOL,
    "seed": lambda v: v >= 0,
    "activation": lambda v: v in ACTIVATIONS,
    "context_size": lambda v: v >= 0,
    "blocks": lambda v: all(b in BLOCK_TYPES for b in v),
    "dropout": lambda v: 0 <= v < 1,
}
# Tensors each optimizer keeps per parameter: "step" is a scalar, the others have the parameter's shape.
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
# One line of log.jsonl, as training writes it (JSON has no infinity: a non-finite NLL is null).
LOG_HINTS = {"epoch": int, "train_nll": float, "valid_nll": float | None, "best_valid_nll": float | None,
             "seconds": float}
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
_CHECKPOINT_FILE = re.compile(r"(state|best)-\d{6,}\.safetensors")
# What atomic_write leaves when killed mid-write of a checkpoint file: mkstemp's 8 random characters between.
_CHECKPOINT_TEMPORARY = re.compile(
    r"\.state\.json\.[a-z0-9_]{8}\.tmp\.json|\.(state|best)-\d{6,}\.safetensors\.[a-z0-9_]{8}\.tmp\.safetensors"
)


class CheckpointError(ValueError):
    """A run folder or checkpoint that cannot be trusted or read."""


def crash_point(name: str) -> None:
    """Test hook: ``MADE_TEST_CRASH_AT=NAME`` (or ``NAME@N``) SIGKILLs this process the
    first (N-th) time it reaches the point ``NAME``.

    The points are ``step:S`` (after the optimizer step of minibatch S) and
    ``write:FILE`` (in :func:`atomic_write`, FILE complete under its temporary name
    but not yet renamed). Tests use it to kill training at an exact moment.
    """
    spec = os.environ.get("MADE_TEST_CRASH_AT")
    if not spec:
        return
    target, _, nth = spec.partition("@")
    if target != name:
        return
    _CRASH_COUNTS[name] = _CRASH_COUNTS.get(name, 0) + 1
    if _CRASH_COUNTS[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


_CRASH_COUNTS: dict[str, int] = {}


def _umask() -> int:
    """The process's file-creation mask, read without changing it (Linux reports it in /proc);
    elsewhere set and restored once, on the first write rather than at import."""
    global _UMASK
    if _UMASK is None:
        try:
            status = Path("/proc/self/status").read_text()
            _UMASK = int(next(line.split()[1] for line in status.splitlines() if line.startswith("Umask:")), 8)
        except (OSError, StopIteration, ValueError):
            _UMASK = os.umask(0o022)
            os.umask(_UMASK)
    return _UMASK


_UMASK: int | None = None


def atomic_write(path: str | Path, write: Callable[[str], Any]) -> None:
    """Call ``write(tmp_path)`` then fsync and rename over ``path``: never a half-written file.

    The temporary file sits beside ``path`` and ends in the same suffix, so writers
    that go by the extension (numpy, PIL) work unchanged.
    """
    path = Path(path)
    try:
        _replace_atomically(path, write)
    except OSError as err:  # the error names the file the user knows, not its hidden temporary one
        if err.errno is None:
            raise
        raise OSError(err.errno, err.strerror, str(path)) from None


def _replace_atomically(path: Path, write: Callable[[str], Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # The name is cut so that a name near the 255-byte limit still has a temporary one (checkpoint names are short).
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name[:100]}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the file gets the usual permissions
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        crash_point(f"write:{path.name}")
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
    """Write ``data`` as indented JSON, atomically; NaN and infinities, which JSON lacks, become null."""
    text = json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def read_json(path: str | Path) -> dict:
    """Read a JSON object, with a clear error for a missing, unreadable or corrupt file."""
    path = Path(path)
    _check_regular(path)
    try:
        data = json.loads(path.read_bytes(), parse_constant=_refuse_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError, ValueError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read ({err.strerror or err})") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _check_regular(path: Path) -> None:
    """Refuse a missing file, and a folder, FIFO or device in a file's place (reading one may never end)."""
    if not path.exists():
        raise CheckpointError(f"{path}: no such file")
    if not path.is_file():
        raise CheckpointError(f"{path}: not a regular file")


def check_no_links(folder: str | Path) -> None:
    """Refuse a folder with a symbolic link anywhere inside: made writes and deletes in run
    folders and checkpoints, and must never follow a link out of them."""
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            if os.path.islink(os.path.join(root, name)):
                raise CheckpointError(f"{Path(root) / name}: a symbolic link inside a run folder; made follows "
                                      "no links there (replace it with the real file or folder)")


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# ------------------------------------------------------------ model settings
def check_model_settings(settings: Any, where: str) -> None:
    """Check the ``model`` section of a config: every argument of ``MADE`` with its type and range."""
    try:
        check_fields(settings, MODEL_HINTS, where, ranges=MODEL_RANGES)
    except SchemaError as err:
        raise CheckpointError(str(err)) from None


def count_weights(settings: dict) -> int:
    """Number of weights of the (masked) layers of ``MADE(**settings)``, without building it.

    A lower bound on its size, so a config can be checked against the memory it
    would take (or the weights a file holds) before anything is allocated.
    """
    settings = {**MODEL_DEFAULTS, **settings}
    family = make_family(settings["num_inputs"], settings["family"])
    in_width = sum(family.inputs_per_dim) + settings["context_size"]
    network = build_network(in_width, settings["hidden_sizes"], sum(family.params_per_dim), settings["direct"],
                            settings["blocks"], settings["dropout"])
    return network.num_weights()


# ------------------------------------------------------------- run folders
def mask_state(model: MADE) -> dict:
    """The masks a reloaded model must use: the pool's seeds and the current mask's place in it.

    ``pool_seeds`` is the finite pool (``None`` for ``"unlimited"``, whose masks are
    drawn from ``seed`` by :func:`made.model.derive_seeds`: minibatch ``step``'s mask
    and the ensembles' masks are functions of ``seed`` and their index alone);
    ``position`` is the index of the current mask in the pool, ``None`` when it is
    not a pool mask.
    """
    pool = None if model.num_masks == "unlimited" else [int(s) for s in model.mask_seeds]
    current = int(model.mask_seed)
    position = pool.index(current) if pool is not None and current in pool else None
    return {"pool_seeds": pool, "current_seed": current, "position": position}


def save_model(run_dir: str | Path, model: MADE, extra: dict | None = None) -> None:
    """Write ``model.safetensors`` and ``config.json`` (model config, mask state, then ``extra``)."""
    run_dir = Path(run_dir)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {
        "format_version": FORMAT_VERSION,
        "made_version": __version__,
        "model": model.config(),
        "masks": mask_state(model),
    }
    config.update(extra or {})
    atomic_write(run_dir / WEIGHTS_FILE, lambda tmp: save_file(tensors, tmp))
    write_json(run_dir / CONFIG_FILE, config)


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[MADE, dict]:
    """Rebuild the model of a run folder and return it with the folder's config.

    Refuses an unknown format version, settings of the wrong type or value, a
    config that describes more weights than the file holds, and weights or masks
    that do not match the architecture the config describes.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: not a run folder (no such directory)")
    if not (run_dir / CONFIG_FILE).exists():
        raise CheckpointError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    check_no_links(run_dir)
    config = read_json(run_dir / CONFIG_FILE)
    _check_version(config, run_dir / CONFIG_FILE)
    settings = config.get("model")
    if isinstance(settings, dict):
        if "sorted_degrees" not in settings:
            settings = {**settings, "sorted_degrees": False}  # written by made 0.1, which drew degrees unsorted
        settings = {**ADDED_IN_0_3, **settings}  # written by made 0.2 or before: no blocks, no dropout
    check_model_settings(settings, f"{run_dir / CONFIG_FILE}: model")
    weights = run_dir / WEIGHTS_FILE
    shapes = _tensor_shapes(weights)
    try:
        _check_size(settings, shapes, run_dir / CONFIG_FILE)
        with warnings.catch_warnings():  # the run's training already said so
            warnings.simplefilter("ignore", NarrowLayerWarning)
            model = MADE(**settings)
    except CheckpointError:
        raise
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{run_dir / CONFIG_FILE}: invalid model settings ({err})") from None
    state = _read_state_dict(model, weights, _load_tensors(weights))
    model.load_state_dict(state, strict="mask_pool" in state)  # other keys are checked one by one
    _restore_pool(model, config.get("masks"), run_dir / CONFIG_FILE)
    _check_masks(model, weights)
    return model.to(device), config


def _restore_pool(model: MADE, masks: Any, source: Path) -> None:
    """Use the pool seeds the checkpoint stored, so the reloaded model evaluates the same masks."""
    if masks is None:  # written before mask state was stored: the pool derives from the seed
        return
    pool = masks.get("pool_seeds") if isinstance(masks, dict) else masks
    if model.num_masks == "unlimited":
        if pool is not None:
            raise CheckpointError(f"{source}: 'masks.pool_seeds' must be null for an unlimited pool")
        return
    if (
        not isinstance(pool, list)
        or len(pool) != model.num_masks
        or not all(type(s) is int and 0 <= s < 2**63 for s in pool)
    ):
        raise CheckpointError(f"{source}: 'masks.pool_seeds' must be {model.num_masks} non-negative integers")
    model.mask_seeds = list(pool)


def _check_version(config: dict, source: Path) -> None:
    if config.get("format_version") != FORMAT_VERSION or type(config.get("format_version")) is not int:
        raise CheckpointError(
            f"{source}: unknown format_version {config.get('format_version')!r} (this made reads {FORMAT_VERSION})"
        )


def _tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Names and shapes of the tensors of a safetensors file, from its header alone."""
    _check_regular(path)
    try:
        with safe_open(path, framework="pt") as handle:
            return {key: list(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None


def _check_size(settings: dict, shapes: dict[str, list[int]], source: Path) -> None:
    """A config may not describe a model bigger than its weights file (checked before building it)."""
    held = sum(math.prod(shape) for shape in shapes.values())
    if settings["num_inputs"] > held or count_weights(settings) > held:
        raise CheckpointError(f"{source}: the model settings describe more weights than the weights file holds")


def _read_state_dict(model: MADE, path: Path, tensors: dict[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """The tensors (named ``prefix`` + key) that form ``model``'s state dict, checked key by
    key for presence, shape and kind (floating-point, boolean, integer)."""
    expected = model.state_dict()
    names = {k[len(prefix):]: k for k in tensors if k.startswith(prefix)}
    if "mask_pool" not in names:  # written by made 0.2 or before: the pool comes from the config
        expected.pop("mask_pool")
    missing, unknown = set(expected) - set(names), set(names) - set(expected)
    if missing or unknown:
        raise CheckpointError(f"{path}: missing tensors {sorted(missing)}, unexpected {sorted(unknown)}")
    state = {key: tensors[names[key]] for key in expected}
    for key, want in expected.items():
        if state[key].shape != want.shape:
            raise CheckpointError(f"{path}: {key} has shape {list(state[key].shape)}, the config needs {list(want.shape)}")
        if _kind(state[key]) != _kind(want):
            raise CheckpointError(f"{path}: {key} has dtype {state[key].dtype}, expected {_kind(want)} values")
    return state


def _kind(tensor: Tensor) -> str:
    if tensor.dtype == torch.bool:
        return "boolean"
    return "floating-point" if tensor.dtype.is_floating_point else "integer"


def _load_tensors(path: Path) -> dict[str, Tensor]:
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None


def _check_masks(model: MADE, source: Path) -> None:
    """The stored masks must be exactly those the stored mask seed generates."""
    stored = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("mask") or k == "ordering"}
    model.set_mask_seed(int(model.mask_seed))
    regenerated = model.state_dict()
    for key, tensor in stored.items():
        if not torch.equal(tensor, regenerated[key]):
            raise CheckpointError(f"{source}: {key} does not match the masks of the stored seed and config")


# -------------------------------------------------------- training state
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
    files = {"state": f"state-{epoch:06d}.safetensors"}
    _write_tensors(directory / files["state"], tensors)
    if best_weights is not None:
        files["best"] = f"best-{best_epoch:06d}.safetensors"
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
    source = directory / STATE_FILE
    record = read_json(source)
    _check_version(record, source)
    try:
        check_fields(record, STATE_HINTS, str(source))
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    _check_progress(record["progress"], f"{source}: progress")
    stored = record["progress"]["fingerprint"]
    if fingerprint is not None and stored != fingerprint:
        differ = sorted(k for k in set(stored) | set(fingerprint) if stored.get(k) != fingerprint.get(k))
        raise CheckpointError(f"{source}: this checkpoint was written for another {' and '.join(differ)}; cannot resume")
    files = record["files"]
    if set(files) - {"state", "best"} or "state" not in files or set(record["sha256"]) != set(files.values()):
        raise CheckpointError(f"{source}: 'files' must name a state file (and a best file) with their sha256")
    for name in files.values():
        if not _CHECKPOINT_FILE.fullmatch(name):
            raise CheckpointError(f"{source}: {name!r} is not a checkpoint file name")
        if not (directory / name).is_file() or _sha256(directory / name) != record["sha256"][name]:
            raise CheckpointError(f"{directory / name}: missing, or not the file {STATE_FILE} was written with")
    state_path = directory / files["state"]
    tensors = _load_tensors(state_path)
    weights = _read_state_dict(model, state_path, tensors, prefix="model.")
    best = None
    if "best" in files:
        best_path = directory / files["best"]
        scratch = copy.deepcopy(model)
        best = _read_state_dict(scratch, best_path, _load_tensors(best_path))
        scratch.load_state_dict(best)
        _check_masks(scratch, best_path)
    optimizer_state = _optimizer_state(optimizer, tensors, state_path)
    rng = {k: tensors[k] for k in ("rng.torch", "rng.order") if k in tensors}
    if len(rng) != 2 or any(t.dtype != torch.uint8 or t.dim() != 1 for t in rng.values()):
        raise CheckpointError(f"{state_path}: the RNG states are missing or not byte tensors")
    model.load_state_dict(weights)
    _check_masks(model, state_path)
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
        raise CheckpointError(f"{where}: epoch {progress['epoch']} does not match its log of "
                              f"{len(progress['log'])} epochs and best epoch {progress['best_epoch']}")


def _write_tensors(path: Path, tensors: dict[str, Tensor]) -> None:
    cpu = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(cpu, tmp))


def _sha256(path: Path) -> str:
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
            own = _CHECKPOINT_FILE.fullmatch(path.name) or _CHECKPOINT_TEMPORARY.fullmatch(path.name)
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
