r"""Model files: a model's weights (safetensors) and its config (JSON: settings and masks), at the paths
:mod:`made.io.run` gives them in a run folder.

Loading reads tensors with safetensors and settings with ``json``, and checks every JSON field against
the type and values the code expects (:mod:`made.data.fields`, :class:`made.model.config.MADEConfig`): nothing is ever
unpickled, so a checkpoint from a stranger cannot run code, and a config cannot make the loader allocate
more than the weights file holds. Training checkpoints are :mod:`made.io.training_state`.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import fields
from functools import partial
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import Tensor

from .. import __version__
from ..data.fields import SchemaError, check_fields
from ..families import make_family
from ..model.config import MADEConfig
from ..model.made import MADE, NarrowLayerWarning
from ..model.network import build_network
from ..model.settings import allows, defaults, json_hints, older_defaults
from .atomic import CheckpointError, atomic_write, check_regular, read_json, write_json

__all__ = [
    "FORMAT_VERSION",
    "check_format_version",
    "count_weights",
    "check_model_settings",
    "write_model",
    "read_model",
    "mask_state",
    "load_tensors",
    "read_state_dict",
    "check_masks",
]

FORMAT_VERSION = 1


def check_model_settings(settings: Any, where: str) -> None:
    """Check the ``model`` section of a config: every field of :class:`MADEConfig` with its type and values."""
    ranges = {spec.name: partial(allows, spec) for spec in fields(MADEConfig)}
    try:
        check_fields(settings, json_hints(MADEConfig), where, ranges=ranges)
    except SchemaError as err:
        raise CheckpointError(str(err)) from None


def count_weights(settings: dict) -> int:
    """Number of weights of the (masked) layers of ``MADE(**settings)``, without building it.

    A lower bound on its size, so a config can be checked against the memory it
    would take (or the weights a file holds) before anything is allocated.
    """
    settings = {**defaults(MADEConfig), **settings}
    family = make_family(settings["num_inputs"], settings["family"])
    in_width = sum(family.inputs_per_dim) + settings["context_size"]
    network = build_network(
        in_width,
        settings["hidden_sizes"],
        sum(family.params_per_dim),
        settings["direct"],
        settings["blocks"],
        settings["dropout"],
    )
    return network.num_weights()


def mask_state(model: MADE) -> dict:
    """The masks a reloaded model must use: the pool's seeds and the current mask's place in it.

    ``pool_seeds`` is the finite pool (``None`` for ``"unlimited"``, whose masks are
    drawn from ``seed`` by :func:`made.model.pool.derive_seeds`: minibatch ``step``'s mask
    and the ensembles' masks are functions of ``seed`` and their index alone);
    ``position`` is the index of the current mask in the pool, ``None`` when it is
    not a pool mask.
    """
    pool = None if model.num_masks == "unlimited" else [int(s) for s in model.mask_seeds]
    current = int(model.mask_seed)
    position = pool.index(current) if pool is not None and current in pool else None
    return {"pool_seeds": pool, "current_seed": current, "position": position}


def write_model(weights: Path, config_path: Path, model: MADE, extra: dict | None = None) -> None:
    """Write the weights file and then the config (model config, mask state, then ``extra``)."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    config = {
        "format_version": FORMAT_VERSION,
        "made_version": __version__,
        "model": model.config.to_dict(),
        "masks": mask_state(model),
    }
    config.update(extra or {})
    atomic_write(weights, lambda tmp: save_file(tensors, tmp))
    write_json(config_path, config)


def read_model(config_path: Path, weights: Path) -> tuple[MADE, dict]:
    """Rebuild a model from its config and weights files and return it with the config.

    Refuses an unknown format version, settings of the wrong type or value, a
    config that describes more weights than the file holds, and weights or masks
    that do not match the architecture the config describes.
    """
    config = read_json(config_path)
    check_format_version(config, config_path)
    settings = config.get("model")
    if isinstance(settings, dict):
        settings = older_defaults(MADEConfig, settings)  # written by an older made: the settings added since rebuild it
    check_model_settings(settings, f"{config_path}: model")
    assert isinstance(settings, dict)  # check_model_settings refuses anything else
    shapes = _tensor_shapes(weights)
    try:
        _check_size(settings, shapes, config_path)
        with warnings.catch_warnings():  # the run's training already said so
            warnings.simplefilter("ignore", NarrowLayerWarning)
            model = MADE(**settings)
    except CheckpointError:
        raise
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{config_path}: invalid model settings ({err})") from None
    state = read_state_dict(model, weights, load_tensors(weights))
    try:
        model.load_state_dict(state, strict="mask_pool" in state)  # other keys are checked one by one
    except ValueError as err:  # the model's own checks of the pool and the masks (made.model.pool)
        raise CheckpointError(f"{weights}: {err}") from None
    _restore_pool(model, config.get("masks"), config_path, weights if "mask_pool" in state else None)
    check_masks(model, weights)
    return model, config


def _restore_pool(model: MADE, masks: Any, source: Path, weights: Path | None = None) -> None:
    """Use the pool seeds the checkpoint stored, so the reloaded model evaluates the same masks. Where the
    ``weights`` file holds the pool too (made 0.3 on), the two must agree: an edited config would make the
    model evaluate masks its weights were never trained with."""
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
    if weights is not None and list(pool) != model.mask_seeds:
        raise CheckpointError(
            f"{source}: 'masks.pool_seeds' differs from the mask pool stored in {weights.name}: the config was "
            "edited or belongs to other weights; restore the config written with these weights"
        )
    model.mask_seeds = list(pool)


def check_format_version(config: dict, source: Path) -> None:
    """Refuse a JSON file of another ``format_version`` than the one this made writes."""
    if config.get("format_version") != FORMAT_VERSION or type(config.get("format_version")) is not int:
        raise CheckpointError(
            f"{source}: unknown format_version {config.get('format_version')!r} (this made reads {FORMAT_VERSION})"
        )


def _tensor_shapes(path: Path) -> dict[str, list[int]]:
    """Names and shapes of the tensors of a safetensors file, from its header alone."""
    check_regular(path)
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


def read_state_dict(model: MADE, path: Path, tensors: dict[str, Tensor], prefix: str = "") -> dict[str, Tensor]:
    """The tensors (named ``prefix`` + key) that form ``model``'s state dict, checked key by
    key for presence, shape and kind (floating-point, boolean, integer)."""
    expected = model.state_dict()
    names = {k[len(prefix) :]: k for k in tensors if k.startswith(prefix)}
    if "mask_pool" not in names:  # written by made 0.2 or before: the pool comes from the config
        expected.pop("mask_pool")
    missing, unknown = set(expected) - set(names), set(names) - set(expected)
    if missing or unknown:
        raise CheckpointError(f"{path}: missing tensors {sorted(missing)}, unexpected {sorted(unknown)}")
    state = {key: tensors[names[key]] for key in expected}
    for key, want in expected.items():
        if state[key].shape != want.shape:
            raise CheckpointError(
                f"{path}: {key} has shape {list(state[key].shape)}, the config needs {list(want.shape)}"
            )
        if _kind(state[key]) != _kind(want):
            raise CheckpointError(f"{path}: {key} has dtype {state[key].dtype}, expected {_kind(want)} values")
    return state


def _kind(tensor: Tensor) -> str:
    """What a state tensor holds, as a message names it: booleans, floating-point or integer values."""
    if tensor.dtype == torch.bool:
        return "boolean"
    return "floating-point" if tensor.dtype.is_floating_point else "integer"


def load_tensors(path: Path) -> dict[str, Tensor]:
    """Every tensor of a safetensors file, with a one-line error for a file that is not one."""
    try:
        return load_file(path)
    except (SafetensorError, OSError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from None


def check_masks(model: MADE, source: Path) -> None:
    """The stored masks must be exactly those the stored mask seed generates."""
    stored = {k: v.clone() for k, v in model.state_dict().items() if k.endswith("mask") or k == "ordering"}
    model.set_mask_seed(int(model.mask_seed))
    regenerated = model.state_dict()
    for key, tensor in stored.items():
        if not torch.equal(tensor, regenerated[key]):
            raise CheckpointError(f"{source}: {key} does not match the masks of the stored seed and config")
