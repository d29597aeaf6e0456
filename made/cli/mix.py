"""``made mix``: one run folder holding the mixture of finished runs of the same data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..io.run import claim_folder, named_folder
from ..tune.mixing import MIN_WEIGHT, keep_result, mix_runs
from .common import nats, pick_device


def add_parser(subparsers: Any) -> None:
    """Add ``made mix`` and its options to the command line."""
    mix = subparsers.add_parser(
        "mix",
        help="mix finished runs of the same data into one run folder",
        description="p(x) = sum_i w_i p_i(x) over the runs given (each averaging its own masks): an exact, "
        "normalized density that made eval, sample and impute read like any run folder. Weights are equal "
        f"unless --fit-weights, which fits them by EM on the validation split and drops runs under {MIN_WEIGHT:g}. "
        "Prints and stores the mixture's validation and test NLL.",
    )
    mix.add_argument("runs", nargs="+", metavar="RUN_DIR", help="folders written by 'made train' (two or more)")
    mix.add_argument("--out", required=True, metavar="RUN_DIR", help="the mixture's run folder")
    mix.add_argument("--fit-weights", action="store_true", help="fit the weights on validation (default: equal)")
    mix.add_argument(
        "--overwrite",
        action="store_true",
        help="replace a run already in --out, and write beside files made did not write (never deleting them)",
    )
    mix.add_argument("--device", default="auto", help="(default: auto)")
    mix.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``made mix``: write the mixture's run folder and print its weights and NLL."""
    if len(args.runs) < 2:
        raise ValueError("made mix needs two or more runs")
    out = named_folder(args.out)
    if any(out.resolve() == Path(r).resolve() for r in args.runs):
        raise ValueError(f"--out {out} is one of the runs mixed; choose another folder")
    claim = claim_folder(out, "mix", args.overwrite)  # before any work: a folder it may not write is refused
    mixed = mix_runs(args.runs, pick_device(args.device), fit_weights=args.fit_weights)
    if mixed is None:
        raise ValueError(
            f"fitted on validation, every run but one has a weight under {MIN_WEIGHT:g}: that run "
            "alone models the data as well; use it, or mix with equal weights (no --fit-weights)"
        )
    weights = mixed.model.weights.tolist()
    kept = [str(args.runs[i]) for i in mixed.kept]
    metrics = keep_result(claim, mixed, {"mix": {"runs": kept, "weights": weights, "fitted": args.fit_weights}})
    for folder, w in zip(kept, weights):
        print(f"  {w:.3f}  {folder}")
    dropped = len(args.runs) - len(kept)
    print(
        f"mixture of {len(kept)} runs{f' ({dropped} dropped: weight under {MIN_WEIGHT:g})' if dropped else ''}: "
        f"valid NLL {nats(metrics['valid_nll'])}, test NLL {nats(metrics['test_nll'])} ± "
        f"{nats(metrics['test_nll_stderr'])} nats"
    )
    print(f"run folder: {out}")
    return 0
