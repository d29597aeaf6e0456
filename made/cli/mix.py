"""``made mix``: one run folder holding the mixture of finished runs of the same data."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..io.run import holds_run, is_mixture
from ..tune.mixing import MIN_WEIGHT, keep_result, mix_runs
from .common import pick_device


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
    mix.add_argument("--overwrite", action="store_true", help="replace a mixture already in --out")
    mix.add_argument("--device", default="auto", help="(default: auto)")
    mix.set_defaults(func=run)


def _check_out(out: Path, runs: list[str], overwrite: bool) -> None:
    """Refuse an ``out`` that is one of the runs, or that holds a run other than a mixture to overwrite."""
    if any(out.resolve() == Path(r).resolve() for r in runs):
        raise ValueError(f"--out {out} is one of the runs mixed; choose another folder")
    if holds_run(out):
        if not is_mixture(out):
            raise ValueError(f"{out} holds a trained run; choose another --out")
        if not overwrite:
            raise ValueError(f"{out} already holds a mixture; pass --overwrite to replace it")


def run(args: argparse.Namespace) -> int:
    """``made mix``: write the mixture's run folder and print its weights and NLL."""
    if len(args.runs) < 2:
        raise ValueError("made mix needs two or more runs")
    out = Path(args.out)
    _check_out(out, args.runs, args.overwrite)
    mixed = mix_runs(args.runs, pick_device(args.device), fit_weights=args.fit_weights)
    if mixed is None:
        raise ValueError(
            f"fitted on validation, every run but one has a weight under {MIN_WEIGHT:g}: that run "
            "alone models the data as well; use it, or mix with equal weights (no --fit-weights)"
        )
    weights = mixed.model.weights.tolist()
    kept = [str(args.runs[i]) for i in mixed.kept]
    out.mkdir(parents=True, exist_ok=True)
    metrics = keep_result(out, mixed, {"mix": {"runs": kept, "weights": weights, "fitted": args.fit_weights}})
    for folder, w in zip(kept, weights):
        print(f"  {w:.3f}  {folder}")
    dropped = len(args.runs) - len(kept)
    print(
        f"mixture of {len(kept)} runs{f' ({dropped} dropped: weight under {MIN_WEIGHT:g})' if dropped else ''}: "
        f"valid NLL {metrics['valid_nll']:.4f}, test NLL {metrics['test_nll']:.4f} ± "
        f"{metrics['test_nll_stderr']:.4f} nats"
    )
    print(f"run folder: {out}")
    return 0
