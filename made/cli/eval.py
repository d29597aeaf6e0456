"""``made eval``: a run's NLL on a split of its own data or of other data."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..pipeline import eval_spec, evaluate_run, run_schema, write_per_dim
from .common import args_data_spec, load_for_inference
from .options import ENSEMBLE, POSITIVE, add_data_args


def add_parser(subparsers: Any) -> None:
    """Add ``made eval`` and its options to the command line."""
    evaluate = subparsers.add_parser(
        "eval",
        help="evaluate a run's NLL on a split",
        description="Mean NLL in nats per "
        "example with its standard error, and bits per dimension. By default the run's "
        "own data set, the test split and the run's ensemble.",
    )
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'made train'")
    add_data_args(evaluate, None, split_seed=None)
    evaluate.add_argument("--split", choices=["train", "valid", "test"], default="test", help="(default: test)")
    evaluate.add_argument(
        "--ensemble", type=ENSEMBLE, metavar="K", help="average p(x) over K masks (default: as in training)"
    )
    evaluate.add_argument("--batch-size", type=POSITIVE, help="evaluation batch size (default: as in training)")
    evaluate.add_argument("--device", default="auto", help="(default: auto)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument(
        "--per-dim",
        metavar="FILE",
        help="also write -log p(x_d | x_<d) of every example and "
        "dimension (nats, the run's first mask) to FILE (.npy, or .csv with a header naming each "
        "dimension's data columns): which dimensions make an example unlikely",
    )
    evaluate.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``made eval``: print the NLL of a split (and write per-dimension NLL with --per-dim)."""
    model, config = load_for_inference(args)
    if args.per_dim and Path(args.per_dim).suffix not in (".npy", ".csv"):
        raise ValueError(f"--per-dim must end in .npy or .csv, got {args.per_dim}")
    given = args_data_spec(args) if args.dataset or args.data else None
    spec = eval_spec(config, args.run_dir, given, args.split_seed, args.header)
    result = evaluate_run(model, config, spec, args.split, args.ensemble, args.batch_size, bool(args.per_dim))
    if result.note:
        print(result.note, file=sys.stderr)
    if args.per_dim and result.per_dim is not None:  # evaluate_run gives per_dim when asked
        worst = write_per_dim(Path(args.per_dim), result.per_dim, run_schema(config, model))
        listing = ", ".join(f"{name} {mean:.3f}" for name, mean in worst)
        print(
            f"wrote per-dimension NLL {list(result.per_dim.shape)} to {args.per_dim}; highest mean (nats): {listing}",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(result.metrics, indent=2))
    else:
        nll, ensemble = result.result, result.metrics["ensemble"]
        masks = f", ensemble of {ensemble} masks" if ensemble else ""
        split_seed = result.metrics["split_seed"]
        seed = f" (rows split with seed {split_seed})" if split_seed is not None else ""
        print(
            f"{result.name} {args.split}{seed}: NLL {nll.nll:.4f} ± {nll.stderr:.4f} nats "
            f"({nll.bits_per_dim:.4f} bits/dim) over {nll.num_examples} examples{masks}"
        )
    return 0
