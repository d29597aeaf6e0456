"""``made eval``: a run's NLL on a split of its own data or of other data."""

from __future__ import annotations

import argparse
from typing import Any
import json
import sys
from pathlib import Path

import numpy as np
import torch

from ..data import Splits
from ..data.columns import dimension_names, encode_splits, in_original_units, log_scales, num_columns
from ..inference.evaluate import NLLResult, evaluate_nll, per_dimension_nll
from ..io.atomic import atomic_write
from ..pipeline import context_tensor, load_splits, nll_units, to_tensor
from .common import all_binary, args_data_spec, load_run, pick_device, run_schema
from .options import ENSEMBLE, POSITIVE, add_data_args


def add_parser(subparsers: Any) -> None:
    """Add ``made eval`` and its options to the command line."""
    evaluate = subparsers.add_parser("eval", help="evaluate a run's NLL on a split", description="Mean NLL in nats per "
                                     "example with its standard error, and bits per dimension. By default the run's "
                                     "own data set, the test split and the run's ensemble.")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'made train'")
    add_data_args(evaluate, None, split_seed=None)
    evaluate.add_argument("--split", choices=["train", "valid", "test"], default="test", help="(default: test)")
    evaluate.add_argument("--ensemble", type=ENSEMBLE, metavar="K", help="average p(x) over K masks (default: as in training)")
    evaluate.add_argument("--batch-size", type=POSITIVE, help="evaluation batch size (default: as in training)")
    evaluate.add_argument("--device", default="auto", help="(default: auto)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument("--per-dim", metavar="FILE", help="also write -log p(x_d | x_<d) of every example and "
                          "dimension (nats, the run's first mask) to FILE (.npy, or .csv with a header naming each "
                          "dimension's data columns): which dimensions make an example unlikely")
    evaluate.set_defaults(func=run)


def _eval_spec(args: argparse.Namespace, config: dict) -> dict:
    """The data to score: the run's own unless --dataset or --data is given, read with the run's
    split seed and (for its own file) header setting unless those are given too."""
    run = config.get("data")
    if not (args.dataset or args.data):
        if run is None:
            raise ValueError(f"{args.run_dir} does not name its data; pass --dataset or --data")
        spec = {**run, "precision": "file"}
    else:
        spec = args_data_spec(args)
    if args.split_seed is None:
        spec["split_seed"] = run["split_seed"] if run else 0
    if args.header is None and run and (spec["path"], spec["dataset"]) == (run["path"], run["dataset"]):
        spec["header"] = run.get("header")
    return spec


def _precision_note(run: dict | None, raw: Splits) -> str | None:
    """For a run of made 0.2 (which read data files as float32): one line when this data holds values
    that float32 rounds, so the NLL can differ from the run's metrics.json."""
    if run is None or "precision" in run or run["path"] is None:
        return None
    parts = [raw.split(s) for s in ("train", "valid", "test")]
    with np.errstate(over="ignore"):
        rounded = any(p.dtype == np.float64 and not np.array_equal(p.astype(np.float32), p) for p in parts)
    if not rounded:
        return None
    return ("made: note: this run was trained by made 0.2, which read its data as float32; the data is now "
            "read at its full precision (float64), so the NLL can differ from the run's metrics.json")


def _write_per_dim(path: Path, nll: torch.Tensor, schema: list[dict]) -> None:
    """Per-dimension NLL in the data's units, and the dimensions that cost most on average."""
    nll = nll.numpy() + log_scales(schema)
    names = dimension_names(schema)
    if path.suffix == ".npy":
        atomic_write(path, lambda tmp: np.save(tmp, nll))
    else:
        header = ",".join(f"col{n}" for n in names)
        atomic_write(path, lambda tmp: np.savetxt(tmp, nll, fmt="%.6g", delimiter=",", header=header, comments=""))
    worst = np.argsort(-nll.mean(0))[:5]
    listing = ", ".join(f"col{names[d]} {nll[:, d].mean():.3f}" for d in worst)
    print(f"wrote per-dimension NLL {list(nll.shape)} to {path}; highest mean (nats): {listing}", file=sys.stderr)


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    """The numpy dtype of a torch dtype, so the data is encoded in the model's precision."""
    return torch.empty(0, dtype=dtype).numpy().dtype


def run(args: argparse.Namespace) -> int:
    """``made eval``: print the NLL of a split (and write per-dimension NLL with --per-dim)."""
    model, config = load_run(args.run_dir, pick_device(args.device))
    dtype = getattr(torch, config.get("eval", {}).get("dtype", "float32"))
    model = model.to(dtype)
    if args.per_dim and Path(args.per_dim).suffix not in (".npy", ".csv"):
        raise ValueError(f"--per-dim must end in .npy or .csv, got {args.per_dim}")
    spec = _eval_spec(args, config)
    schema = run_schema(config, model)
    raw = load_splits(spec, binary=all_binary(schema))
    if raw.num_inputs != num_columns(schema):
        raise ValueError(f"the data has {raw.num_inputs} columns, the model expects {num_columns(schema)}")
    note = _precision_note(config.get("data"), raw)
    if note:
        print(note, file=sys.stderr)
    splits = encode_splits(schema, raw, _numpy_dtype(dtype))
    ensemble = args.ensemble if args.ensemble is not None else config.get("eval", {}).get("ensemble")
    batch = args.batch_size or config.get("eval", {}).get("batch_size", 1000)
    data, context = to_tensor(splits.split(args.split)), context_tensor(config.get("context"), raw, args.split)
    result: NLLResult = in_original_units(evaluate_nll(model, data, batch, ensemble, context), schema)
    metrics = {f"{args.split}_nll": result.nll, f"{args.split}_nll_stderr": result.stderr,
               f"{args.split}_bits_per_dim": result.bits_per_dim, "ensemble": ensemble,
               "num_examples": result.num_examples, "dataset": splits.name, "split": args.split,
               "split_seed": spec["split_seed"] if spec["path"] else None, **nll_units(schema)}
    if args.per_dim:
        _write_per_dim(Path(args.per_dim), per_dimension_nll(model, data, batch, context), schema)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        masks = f", ensemble of {ensemble} masks" if ensemble else ""
        seed = f" (rows split with seed {spec['split_seed']})" if spec["path"] else ""
        print(f"{splits.name} {args.split}{seed}: NLL {result.nll:.4f} ± {result.stderr:.4f} nats "
              f"({result.bits_per_dim:.4f} bits/dim) over {result.num_examples} examples{masks}")
    return 0
