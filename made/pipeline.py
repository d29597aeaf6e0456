"""Train a MADE end to end, as ``made train`` does: read the data, model its columns, build, fit, save, score.

``read_data`` -> ``build_model`` -> ``train_run`` turns a data set into a run folder that ``made eval``,
``sample`` and ``impute`` (and :func:`made.training.mixture.load_run_model`) read, and returns its metrics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .data import Splits, load_data
from .data.columns import (
    DEFAULT_MAX_CATEGORIES,
    encode_splits,
    family_config,
    in_original_units,
    log_scales,
    resolve_schema,
)
from .data.context import context_size, make_context_spec, split_context
from .families import DEFAULT_MIN_SCALE
from .inference.evaluate import evaluate_nll
from .io.atomic import write_json
from .io.checkpoint import METRICS_FILE, save_model
from .model import MADE
from .training.loop import TrainConfig, fit
from .training.memory import check_memory

__all__ = ["RunData", "data_spec", "read_data", "build_model", "train_run"]

LOG_FILE, CHECKPOINT_DIR = "log.jsonl", "checkpoint"  # the training log and checkpoints in a run folder


@dataclass
class RunData:
    """A run's data: how it is named (``spec``), its splits as read, the column schema, the context
    spec (None without one) and the splits encoded for the model."""

    spec: dict
    raw: Splits
    schema: list[dict]
    context: dict | None
    splits: Splits


def data_spec(dataset: str | None = "digits", path: str | Path | None = None, data_dir: str | Path | None = None,
              split_seed: int = 0, header: bool | None = None) -> dict:
    """The data of a run as its config.json names it: a named data set, or a file (which wins), with
    paths made absolute, the split seed of a single array and whether a .csv has a header."""
    path = str(Path(path).resolve()) if path else None
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    return {"dataset": None if path else dataset, "path": path, "data_dir": data_dir,
            "split_seed": split_seed, "header": header, "precision": "file"}


def load_splits(spec: dict, binary: bool = True) -> Splits:
    """The train/valid/test splits of a data spec (see :func:`data_spec`)."""
    return load_data(spec["dataset"], spec["path"], spec["data_dir"], spec["split_seed"], binary, spec.get("header"))


def read_data(spec: dict, schema: str | Path = "binary", max_categories: int = DEFAULT_MAX_CATEGORIES,
              components: int = 1, context: str | None = None, dtype: str = "float32") -> RunData:
    """Read the data of ``spec`` and model its columns: ``schema`` is binary, auto, onehot or a JSON
    schema file (as ``made train --schema``); ``context`` a kind of side information ("labels")."""
    raw = load_splits(spec, binary=schema == "binary")
    columns = resolve_schema(schema, raw.train, max_categories, components)
    context_spec = make_context_spec(context, raw)
    return RunData(spec, raw, columns, context_spec, encode_splits(columns, raw, np.dtype(dtype)))


def build_model(data: RunData, dtype: str = "float32", device: str | torch.device = "cpu",
                min_scale: float = DEFAULT_MIN_SCALE, **options) -> MADE:
    """A MADE for ``data`` with the keyword ``options`` of :class:`MADE` (hidden_sizes, num_masks, seed ...),
    refused in one line when training it would not fit in memory; ``seed`` also seeds torch."""
    settings = {"num_inputs": data.splits.num_inputs, **options,
                "family": family_config(data.schema, min_scale), "context_size": context_size(data.context)}
    check_memory(settings, getattr(torch, dtype))
    torch.manual_seed(options.get("seed", 0))
    return MADE(**settings).to(device=device, dtype=getattr(torch, dtype))


def train_run(out: str | Path, data: RunData, model: MADE, config: TrainConfig, test_ensemble: int | None = None,
              resume: bool = False, progress: bool | None = None, on_epoch: Callable[[dict], None] | None = None,
              is_main: bool = True) -> dict | None:
    """Fit ``model`` on ``data`` with a log and checkpoints in the run folder ``out`` (continuing from
    them with ``resume``), save it there with its config, and score it on valid and test with
    ``test_ensemble`` masks (default: the pool); returns the metrics also written to metrics.json
    (None in the other processes of a distributed run, which only train)."""
    out = Path(out)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    test_k = test_ensemble or _default_ensemble(model, 1000)
    history = fit(model, to_tensor(data.splits.train), to_tensor(data.splits.valid), config, out / LOG_FILE,
                  progress=progress, on_epoch=on_epoch, checkpoint_dir=out / CHECKPOINT_DIR, resume=resume,
                  train_context=context_tensor(data.context, data.raw, "train"),
                  valid_context=context_tensor(data.context, data.raw, "valid"))
    if not is_main:
        return None
    model.set_mask(0)
    dtype = str(model.output.weight.dtype).removeprefix("torch.")
    eval_spec = {"ensemble": test_k, "batch_size": config.eval_batch_size, "dtype": dtype}
    save_model(out, model, {"data": data.spec, "train": asdict(config), "eval": eval_spec,
                            "image_shape": data.splits.image_shape, "schema": data.schema, "context": data.context})
    test, valid = (
        in_original_units(evaluate_nll(model, to_tensor(data.splits.split(s)), config.eval_batch_size, test_k,
                                       context_tensor(data.context, data.raw, s)), data.schema)
        for s in ("test", "valid")
    )
    metrics = {
        "test_nll": test.nll, "test_nll_stderr": test.stderr, "test_bits_per_dim": test.bits_per_dim,
        "valid_nll": valid.nll, "valid_nll_stderr": valid.stderr, "ensemble": test_k,
        "epochs": history.epochs, "best_epoch": history.best_epoch, "seconds": history.seconds,
        "seconds_per_epoch": history.seconds / max(history.epochs, 1), "dataset": data.splits.name,
        **nll_units(data.schema),
    }
    write_json(out / METRICS_FILE, metrics)
    return metrics


def _default_ensemble(model: MADE, unlimited: int) -> int | None:
    """Masks the test figure averages by default: the pool, ``unlimited`` for a fresh mask each time, none for one."""
    if model.num_masks == 1:
        return None
    return unlimited if model.num_masks == "unlimited" else model.num_masks


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a tensor sharing its memory where it can (made contiguous first)."""
    return torch.from_numpy(np.ascontiguousarray(array))


def context_tensor(spec: dict | None, splits: Splits, split: str) -> torch.Tensor | None:
    """The context rows of ``split`` as a tensor, or None for a run without context."""
    values = split_context(spec, splits, split)
    return None if values is None else to_tensor(values)


def nll_units(schema: list[dict]) -> dict:
    """What the NLL figures mean, for metrics: nats per example, real columns in their own units."""
    shift = float(log_scales(schema).sum())
    if not shift:
        return {}
    return {"nll_log_std_sum": shift, "nll_units": "nats per example in the data's own units (the standardized-space "
            "NLL plus nll_log_std_sum)"}
