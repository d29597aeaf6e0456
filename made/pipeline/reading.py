"""A run's data and model as the commands read them: the data a run names, its splits and columns read and
encoded, its context rows, and the model of a run folder ready for inference."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import DataWarning, Splits, load_data
from ..data.columns import (
    DEFAULT_MAX_CATEGORIES,
    encode_splits,
    log_scales,
    num_columns,
    resolve_schema,
)
from ..data.context import make_context_spec, split_context
from ..io.run import load_run
from ..model import MADE
from ..model.mixture import Mixture

__all__ = [
    "DataWarning",
    "RunModel",
    "RunData",
    "data_spec",
    "load_splits",
    "read_run_splits",
    "read_data",
    "load_for_inference",
    "new_model",
    "run_schema",
    "all_binary",
    "to_tensor",
    "context_tensor",
    "nll_units",
]

RunModel = MADE | Mixture  # what a run folder holds


@dataclass
class RunData:
    """A run's data: how it is named (``spec``), its splits as read, the column schema, the context
    spec (None without one) and the splits encoded for the model."""

    spec: dict
    raw: Splits
    schema: list[dict]
    context: dict | None
    splits: Splits


def data_spec(
    dataset: str | None = "digits",
    path: str | Path | None = None,
    data_dir: str | Path | None = None,
    split_seed: int = 0,
    header: bool | None = None,
) -> dict:
    """The data of a run as its config.json names it: a named data set, or a file (which wins), with
    paths made absolute, the split seed of a single array and whether a .csv has a header."""
    path = str(Path(path).resolve()) if path else None
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    return {
        "dataset": None if path else dataset,
        "path": path,
        "data_dir": data_dir,
        "split_seed": split_seed,
        "header": header,
        "precision": "file",
    }


def load_splits(spec: dict, binary: bool = True) -> Splits:
    """The train/valid/test splits of a data spec (see :func:`data_spec`)."""
    return load_data(spec["dataset"], spec["path"], spec["data_dir"], spec["split_seed"], binary, spec.get("header"))


def read_run_splits(spec: dict, schema: list[dict]) -> Splits:
    """The splits of ``spec`` as a run whose columns ``schema`` describes reads them (0/1 for binary columns),
    refused in one line unless the data has those columns."""
    raw = load_splits(spec, binary=all_binary(schema))
    if raw.num_inputs != num_columns(schema):
        raise ValueError(f"the data has {raw.num_inputs} columns, the model expects {num_columns(schema)}")
    return raw


def read_data(
    spec: dict,
    schema: str | Path = "binary",
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    components: int = 1,
    context: str | None = None,
    dtype: str = "float32",
) -> RunData:
    """Read the data of ``spec`` and model its columns: ``schema`` is binary, auto, onehot or a JSON
    schema file (as ``made train --schema``); ``context`` a kind of side information ("labels")."""
    raw = load_splits(spec, binary=schema == "binary")
    columns = resolve_schema(schema, raw.train, max_categories, components)
    context_spec = make_context_spec(context, raw)
    return RunData(spec, raw, columns, context_spec, encode_splits(columns, raw, np.dtype(dtype)))


def load_for_inference(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[RunModel, dict]:
    """The model of a run folder on ``device``, in its evaluation dtype and eval mode, with its config."""
    model, config = load_run(run_dir, device)
    model = model.to(getattr(torch, config.get("eval", {}).get("dtype", "float32")))
    model.eval()
    return model, config


def new_model(**settings: Any) -> MADE:
    """A new MADE of the keyword ``settings`` (its masks drawn, its weights untrained)."""
    return MADE(**settings)


def run_schema(config: dict, model: RunModel) -> list[dict]:
    """The run's column schema (all binary for runs that predate schemas)."""
    return config.get("schema") or [{"type": "binary"}] * model.num_inputs


def all_binary(schema: list[dict]) -> bool:
    """Whether every column of ``schema`` is binary (the data is then read as 0/1)."""
    return all(c["type"] == "binary" for c in schema)


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
    return {
        "nll_log_std_sum": shift,
        "nll_units": "nats per example in the data's own units (the standardized-space NLL plus nll_log_std_sum)",
    }
