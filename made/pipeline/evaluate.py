"""Score a run: the NLL of a split of its data (or other data) in the data's own units, as ``made eval`` prints it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import Splits
from ..data.columns import encode_splits, in_original_units, log_scales
from ..inference.evaluate import NLLResult, evaluate_nll, per_dimension_nll
from ..io.run import METRICS_FILE
from .reading import RunModel, context_tensor, nll_units, read_run_splits, run_schema, to_tensor

__all__ = ["Evaluation", "eval_spec", "evaluate_run"]


@dataclass
class Evaluation:
    """What :func:`evaluate_run` measured: the metrics as ``made eval --json`` prints them, the NLL, the data's
    name, ``-log p(x_d | x_<d)`` per example and dimension (with ``per_dim``), and a note on made 0.2 runs."""

    metrics: dict
    result: NLLResult
    name: str
    per_dim: np.ndarray | None = None
    note: str | None = None


def eval_spec(
    config: dict,
    run_dir: str | Path,
    spec: dict | None = None,
    split_seed: int | None = None,
    header: bool | None = None,
) -> dict:
    """The data to score: the run's own unless ``spec`` names other data, read with the run's split seed
    and (for its own file) header setting unless those are given."""
    run = config.get("data")
    if spec is None:
        if run is None:
            raise ValueError(f"{run_dir} does not name its data; pass --dataset or --data")
        spec = {**run, "precision": "file"}
    else:
        spec = dict(spec)
    if split_seed is None:
        spec["split_seed"] = run["split_seed"] if run else 0
    if header is None and run and (spec["path"], spec["dataset"]) == (run["path"], run["dataset"]):
        spec["header"] = run.get("header")
    return spec


def evaluate_run(
    model: RunModel,
    config: dict,
    spec: dict | None = None,
    split: str = "test",
    ensemble: int | None = None,
    batch_size: int | None = None,
    per_dim: bool = False,
) -> Evaluation:
    """The NLL of ``split`` of the data ``spec`` (default: the run's own, see :func:`eval_spec`) under a
    run's model, with the run's ensemble and batch size unless given, in the data's own units."""
    spec = eval_spec(config, "the run", None) if spec is None else spec
    schema = run_schema(config, model)
    raw = read_run_splits(spec, schema)
    dtype = model.output.weight.dtype
    splits = encode_splits(schema, raw, torch.empty(0, dtype=dtype).numpy().dtype)
    ensemble = ensemble if ensemble is not None else config.get("eval", {}).get("ensemble")
    batch = batch_size or config.get("eval", {}).get("batch_size", 1000)
    data, context = to_tensor(splits.split(split)), context_tensor(config.get("context"), raw, split)
    result = in_original_units(evaluate_nll(model, data, batch, ensemble, context), schema)
    metrics = {
        f"{split}_nll": result.nll,
        f"{split}_nll_stderr": result.stderr,
        f"{split}_bits_per_dim": result.bits_per_dim,
        "ensemble": ensemble,
        "num_examples": result.num_examples,
        "dataset": splits.name,
        "split": split,
        "split_seed": spec["split_seed"] if spec["path"] and raw.lines is not None else None,  # a file split here
        **nll_units(schema),
    }
    dims = per_dimension_nll(model, data, batch, context).numpy() + log_scales(schema) if per_dim else None
    return Evaluation(metrics, result, splits.name, dims, _precision_note(config.get("data"), raw))


def _precision_note(run: dict | None, raw: Splits) -> str | None:
    """For a run of made 0.2 (which read data files as float32): one line when this data holds values
    that float32 rounds, so the NLL can differ from the run's metrics."""
    if run is None or "precision" in run or run["path"] is None:
        return None
    parts = [raw.split(s) for s in ("train", "valid", "test")]
    with np.errstate(over="ignore"):
        rounded = any(p.dtype == np.float64 and not np.array_equal(p.astype(np.float32), p) for p in parts)
    if not rounded:
        return None
    return (
        "made: note: this run was trained by made 0.2, which read its data as float32; the data is now "
        f"read at its full precision (float64), so the NLL can differ from the run's {METRICS_FILE}"
    )
