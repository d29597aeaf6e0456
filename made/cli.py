r"""The ``made`` command: train, eval, sample, impute and masks. Thin: parse, call the library, print."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import shlex
import shutil
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from .checkpoint import (
    CONFIG_FILE,
    FORMAT_VERSION,
    MAX_POOL,
    METRICS_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    atomic_write,
    check_no_links,
    count_weights,
    read_json,
    save_model,
    write_json,
)
from .columns import (
    DEFAULT_MAX_CATEGORIES,
    check_fitted_schema,
    decode,
    dimension_names,
    encode,
    encode_observed,
    encode_splits,
    family_config,
    in_original_units,
    log_scales,
    num_columns,
    resolve_schema,
)
from .context import CONTEXT_KINDS, CONTEXT_SPEC, context_from_value, context_size, make_context_spec, split_context
from .data import DATASETS, DataError, DataWarning, Splits, Table, available_memory, format_value, load_data, read_table
from .distributed import ProcessInfo, init_from_env, shutdown
from .evaluate import NLLResult, evaluate_nll, per_dimension_nll
from .families import DEFAULT_MIN_SCALE
from .mixture import MEMBERS_DIR, Mixture, load_run_model
from .model import MADE
from .network import BLOCK_TYPES
from .plots import MAX_DRAWN_UNITS
from .schema import SchemaError, check_fields, check_option_values
from .train import DEFAULT_LR, LR_SCHEDULES, TrainConfig, fit
from .tune import (
    DEFAULT_PATIENCE,
    MIXTURE_SIZE,
    TRIAL_SHARE,
    SEARCH_SPACE,
    Budget,
    budget_key,
    fail_interrupted,
    open_study,
    ranked_trials,
    searched_options,
    train_argv,
    trial_line,
)

__all__ = ["main", "build_parser"]

DATASET_NAMES = ["digits", *DATASETS]
ARGS_FILE, LOG_FILE, CHECKPOINT_DIR = "args.json", "log.jsonl", "checkpoint"
NOT_STORED = {"help", "resume", "out", "overwrite"}  # how to start, not what to train
# Options of 'made train' that made 0.2 did not have, with the values that train as it did.
OPTIONS_ADDED_IN_0_3 = {"header": None, "blocks": [], "dropout": 0.0, "lr_schedule": "constant", "warmup_epochs": 0}
RESUME_MAY_CHANGE = {"quiet", "device", "checkpoint_every", "max_minutes"}  # options --resume accepts: how, not what
# The sections 'made train' adds to config.json, checked before 'eval' and 'sample' use them.
RUN_SECTIONS = {
    "data": {"dataset": str | None, "path": str | None, "data_dir": str | None, "split_seed": int,
             "header": bool | None, "precision": Literal["file"]},
    "eval": {"ensemble": int | None, "batch_size": int, "dtype": Literal["float32", "float64"]},
}
MAX_ENSEMBLE = 100_000  # masks an ensemble may average: beyond it one evaluation runs for days
MAX_SEED = 2**63 - 1
RUN_RANGES = {
    "data": {"split_seed": lambda v: 0 <= v <= MAX_SEED},
    "eval": {"ensemble": lambda v: v is None or 1 <= v <= MAX_ENSEMBLE, "batch_size": lambda v: v >= 1},
}


def _int_in(low: int, high: int | None = None) -> Callable[[str], int]:
    """An option type: an integer from ``low`` (to ``high``); argparse names the option when it refuses one."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            allowed = f"from {low} to {high:,}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {allowed}, got {text!r}")
        return value

    parse.__name__ = "integer"
    return parse


def _float_in(low: float, high: float = math.inf, open_low: bool = True) -> Callable[[str], float]:
    """An option type: a finite number above ``low`` (or from it, with ``open_low=False``) up to ``high``."""
    allowed = (f"above {low:g}" if open_low else f"of at least {low:g}") + (
        f" and at most {high:g}" if math.isfinite(high) else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > low if open_low else value >= low) and value <= high):
            raise argparse.ArgumentTypeError(f"expected a finite number {allowed}, got {text!r}")
        return value

    parse.__name__ = "number"
    return parse


_POSITIVE, _NON_NEGATIVE, _SEED = _int_in(1), _int_in(0), _int_in(0, MAX_SEED)
_ENSEMBLE = _int_in(1, MAX_ENSEMBLE)
_POSITIVE_FLOAT, _NON_NEGATIVE_FLOAT = _float_in(0.0), _float_in(0.0, open_low=False)
_FRACTION = _float_in(0.0, 1.0, open_low=False)
_DROPOUT = _float_in(0.0, 0.95, open_low=False)


def _masks_arg(text: str) -> int | str:
    if text == "unlimited":
        return text
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer or 'unlimited', got {text!r}") from None
    if not 1 <= value <= MAX_POOL:
        raise argparse.ArgumentTypeError(f"expected an integer from 1 to {MAX_POOL:,} or 'unlimited', got {text!r}")
    return value


def _add_header_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--header", action=argparse.BooleanOptionalAction, default=None,
                        help="whether the first line of a .csv is a header (default: a header when none of its "
                        "cells is a number; a numeric header such as pandas' 0,1,2 needs --header)")


def _add_data_args(parser: argparse.ArgumentParser, default: str | None, split_seed: int | None = 0) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--dataset",
        choices=DATASET_NAMES,
        default=default,
        help=f"a named data set{' (default: %(default)s)' if default else ''}: digits is built in, "
        "the paper's sets are read from --data-dir or downloaded once into ~/.cache/made",
    )
    source.add_argument(
        "--data",
        metavar="FILE",
        help="your own data: .npz (train_data/valid_data/test_data or train/valid/test), .npy or .csv; "
        "a single array is split 80/10/10 with --split-seed",
    )
    parser.add_argument("--data-dir", metavar="DIR", help="folder holding NAME.npz for the paper's sets (or MADE_DATA_DIR)")
    default_text = "the run's" if split_seed is None else str(split_seed)
    parser.add_argument("--split-seed", type=_SEED, default=split_seed,
                        help=f"seed of the 80/10/10 split of a single array (default: {default_text})")
    _add_header_arg(parser)


def _add_drawing_args(parser: argparse.ArgumentParser, batch: str, batch_size: int) -> None:
    parser.add_argument("--batch-size", type=_POSITIVE, default=batch_size, help=f"{batch} (default: {batch_size})")
    parser.add_argument("--seed", type=_SEED, default=0, help="seed of the random draws (default: 0)")
    parser.add_argument("--device", default="auto", help="(default: auto)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="made",
        description="MADE, the Masked Autoencoder for Distribution Estimation: exact likelihoods "
        "and samples of binary vectors from one masked network.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = sub.add_parser("train", help="train a MADE and write a run folder", description="Train a MADE with "
                           "early stopping on validation NLL; writes config.json, model.safetensors, "
                           "metrics.json and log.jsonl into the run folder, with args.json and checkpoint/ "
                           "so that an interrupted run continues with --resume. Under torchrun, each process "
                           "trains on its share of every minibatch.")
    _add_data_args(train, "digits")
    train.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/NAME-DATE-TIME)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in RUN_DIR")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint, "
                       "with the settings it was started with (only --device, --quiet and --checkpoint-every may be given)")
    model = train.add_argument_group("model")
    model.add_argument("--hidden", type=_POSITIVE, nargs="*", default=[500], metavar="H",
                       help="hidden layer widths; none for no hidden layer (default: 500)")
    model.add_argument("--direct", action=argparse.BooleanOptionalAction, default=False,
                       help="direct input-to-output connection, as in all the paper's experiments (default: off)")
    model.add_argument("--blocks", nargs="*", choices=sorted(BLOCK_TYPES), default=[], metavar="TYPE",
                       help="blocks after the last hidden layer, e.g. 'residual residual': residual blocks "
                       "h + W2 act(W1 h) whose layers share its degrees (default: none)")
    model.add_argument("--dropout", type=_DROPOUT, default=0.0, metavar="P",
                       help="dropout probability of every hidden unit, in training only (default: 0)")
    model.add_argument("--masks", type=_masks_arg, default=1, metavar="K|unlimited",
                       help="size of the mask pool cycled during training, one mask per minibatch; "
                       "'unlimited' draws a fresh mask each minibatch (default: 1)")
    model.add_argument("--resample", choices=["full", "ordering", "connectivity"], default="full",
                       help="what a pool of masks resamples (default: full)")
    model.add_argument("--ordering", choices=["natural", "random"], default="natural",
                       help="input ordering of a single mask (default: natural)")
    model.add_argument("--degrees", choices=["random", "even"], default="random",
                       help="hidden degrees: drawn uniformly as in the paper, or evenly spread (default: random)")
    model.add_argument("--activation", choices=["relu", "tanh", "softplus"], default="relu",
                       help="hidden activation (default: relu)")
    model.add_argument("--conditioning", action="store_true", help="add the paper's connectivity-conditioning weights")
    model.add_argument("--init", choices=["default", "orthogonal"], default="default",
                       help="weight initialization: PyTorch's, or semi-orthogonal with zero biases as in the "
                       "authors' code (default: default)")
    model.add_argument("--seed", type=_SEED, default=0, help="seed of weights, masks and minibatch order (default: 0)")
    columns = train.add_argument_group("columns and context")
    columns.add_argument("--schema", default="binary", metavar="binary|auto|onehot|FILE",
                         help="how columns are modelled: binary (0/1 columns, the paper's MADE); auto (per column: "
                         "0/1 -> binary, integers with few values -> categorical, else real, standardized); onehot "
                         "(auto, and runs of 0/1 columns where no row has two ones -> one categorical each); or a "
                         "JSON schema file (see README) (default: binary)")
    columns.add_argument("--max-categories", type=_POSITIVE, default=DEFAULT_MAX_CATEGORIES, metavar="K",
                         help="auto schema: integer columns with at most K values are categorical (default: %(default)s)")
    columns.add_argument("--components", type=_POSITIVE, default=1, metavar="C",
                         help="real columns: a Gaussian (1) or a mixture of C Gaussians (default: 1)")
    columns.add_argument("--min-scale", type=_POSITIVE_FLOAT, default=DEFAULT_MIN_SCALE,
                         help="floor of every Gaussian scale, in standard deviations (default: %(default)s)")
    columns.add_argument("--context", choices=CONTEXT_KINDS,
                         help="condition on side information: labels = the data set's class labels, one-hot "
                         "(digits); sample with 'made sample RUN_DIR --context LABEL'")
    opt = train.add_argument_group("optimization")
    opt.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam", help="optimizer (default: adam)")
    opt.add_argument("--lr", type=_POSITIVE_FLOAT, help="learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    opt.add_argument("--batch-size", type=_POSITIVE, default=100, help="minibatch size (default: 100)")
    opt.add_argument("--patience", type=_POSITIVE, default=30, help="epochs without validation improvement before stopping (default: 30)")
    opt.add_argument("--epochs", type=_POSITIVE, default=1000, help="maximum number of epochs (default: 1000)")
    opt.add_argument("--max-minutes", type=_POSITIVE_FLOAT, metavar="M",
                     help="wall-clock budget: stop after the epoch that passes it, keeping the best weights (default: none)")
    opt.add_argument("--weight-decay", type=_NON_NEGATIVE_FLOAT, default=0.0,
                     help="L2 weight decay; with adamw, decoupled from the gradient (default: 0)")
    opt.add_argument("--lr-schedule", choices=list(LR_SCHEDULES), default="constant",
                     help="learning rate per epoch: constant, or a half cosine reaching 0 at --epochs (default: constant)")
    opt.add_argument("--warmup-epochs", type=_NON_NEGATIVE, default=0, metavar="N",
                     help="linear warmup of the learning rate over the first N epochs (default: 0)")
    opt.add_argument("--adadelta-eps", type=_POSITIVE_FLOAT, default=1e-5, help="adadelta epsilon (default: 1e-5, the authors')")
    opt.add_argument("--adadelta-rho", type=_FRACTION, default=0.95, help="adadelta decay (default: 0.95, the authors')")
    opt.add_argument("--valid-ensemble", type=_ENSEMBLE, metavar="K",
                     help="masks averaged for validation (default: the pool; 300 for unlimited)")
    opt.add_argument("--test-ensemble", type=_ENSEMBLE, metavar="K",
                     help="masks averaged for the test figure (default: the pool; 1000 for unlimited)")
    run = train.add_argument_group("running")
    run.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto, a GPU if there is one)")
    run.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="(default: float32)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--checkpoint-every", type=_POSITIVE, default=1, metavar="N",
                     help="write a training checkpoint (for --resume) every N epochs (default: 1)")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("eval", help="evaluate a run's NLL on a split", description="Mean NLL in nats per "
                              "example with its standard error, and bits per dimension. By default the run's "
                              "own data set, the test split and the run's ensemble.")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'made train'")
    _add_data_args(evaluate, None, split_seed=None)
    evaluate.add_argument("--split", choices=["train", "valid", "test"], default="test", help="(default: test)")
    evaluate.add_argument("--ensemble", type=_ENSEMBLE, metavar="K", help="average p(x) over K masks (default: as in training)")
    evaluate.add_argument("--batch-size", type=_POSITIVE, help="evaluation batch size (default: as in training)")
    evaluate.add_argument("--device", default="auto", help="(default: auto)")
    evaluate.add_argument("--json", action="store_true", help="print the metrics as JSON")
    evaluate.add_argument("--per-dim", metavar="FILE", help="also write -log p(x_d | x_<d) of every example and "
                          "dimension (nats, the run's first mask) to FILE (.npy, or .csv with a header naming each "
                          "dimension's data columns): which dimensions make an example unlikely")
    evaluate.set_defaults(func=cmd_eval)

    sample = sub.add_parser("sample", help="draw samples from a trained run", description="Draw exact samples. "
                            "Writes a PNG grid for image-shaped data (digits, MNIST), else .npy or .csv.")
    sample.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'made train'")
    sample.add_argument("-n", "--num-samples", type=_POSITIVE, default=64, help="number of samples (default: 64)")
    sample.add_argument("--out", metavar="FILE", help="samples.png, .npy or .csv (default: RUN_DIR/samples.png "
                        "for image data, else RUN_DIR/samples.npy)")
    sample.add_argument("--ensemble", type=_ENSEMBLE, metavar="K",
                        help="draw from the mixture of K masks, a mask picked per sample (default: the run's mask)")
    _add_drawing_args(sample, "samples drawn at once", 1000)
    sample.add_argument("--context", metavar="LABEL", help="for a run trained with --context labels: the class to draw")
    sample.set_defaults(func=cmd_sample)

    impute = sub.add_parser(
        "impute", help="fill in missing values, or inpaint images", description="Draw the missing entries of "
        "each row from p(x_missing | x_observed), exactly, under orderings that put the observed dimensions "
        "first. Needs a run trained with resampled orderings (--masks K --resample full|ordering), unless the "
        "observed dimensions come first in the run's own ordering. Prints the conditional NLL of the hidden "
        "values when they are known.")
    impute.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'made train'")
    what = impute.add_mutually_exclusive_group(required=True)
    what.add_argument("--data", metavar="FILE", help=".npy or .csv rows to complete; NaN (or an empty CSV cell) "
                      "marks a missing value unless --mask is given")
    what.add_argument("--inpaint", metavar="PNG", help="image data: a picture of images of the run's data "
                      "(--split) given one half (--given), with several completions of the other half")
    _add_header_arg(impute)
    impute.add_argument("--context", metavar="LABEL", help="for a run trained with --context labels: the class "
                        "label of every row")
    impute.add_argument("--mask", metavar="FILE", help="with --data: .npy or .csv of 0/1 the shape of the data, "
                        "1 = missing; the data's values there are hidden (and scored if present)")
    impute.add_argument("--out", metavar="FILE", help="with --data: .npy or .csv; N*K rows, the K completions of "
                        "row i are rows i*K .. i*K+K-1 (default: RUN_DIR/imputed.npy)")
    impute.add_argument("--samples", type=_POSITIVE, metavar="K", help="completions per row (default: 1; 6 with --inpaint)")
    impute.add_argument("--given", choices=["top", "bottom", "left", "right"], default="top",
                        help="with --inpaint: the half of each image that is observed (default: top)")
    impute.add_argument("--examples", type=_POSITIVE, default=8,
                        help="with --inpaint: images shown, evenly spaced through the split (default: 8)")
    impute.add_argument("--split", choices=["train", "valid", "test"], default="test",
                        help="with --inpaint: the split the images and the NLL come from (default: test)")
    impute.add_argument("--ensemble", type=_ENSEMBLE, metavar="K",
                        help="masks in the mixture (default: as in the run's evaluation)")
    _add_drawing_args(impute, "rows imputed at once", 100)
    impute.set_defaults(func=cmd_impute)

    masks = sub.add_parser("masks", help="draw a small MADE's masks as a PNG", description="Draw the network of a "
                           "small MADE with its allowed connections (units labelled with their degrees) and the "
                           "number of paths from each input to each output, read in the ordering: strictly lower "
                           "triangular. Either a configuration given here or a small trained RUN_DIR. Needs "
                           "matplotlib (pip install 'made[plot]').")
    masks.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a small run folder (default: the model below)")
    masks.add_argument("--inputs", type=_POSITIVE, default=4, metavar="D", help="number of inputs (default: 4)")
    masks.add_argument("--hidden", type=_POSITIVE, nargs="*", default=[6, 6], metavar="H", help="hidden widths (default: 6 6)")
    masks.add_argument("--direct", action=argparse.BooleanOptionalAction, default=False,
                       help="direct input-to-output connection (default: off)")
    masks.add_argument("--ordering", choices=["natural", "random"], default="natural", help="(default: natural)")
    masks.add_argument("--degrees", choices=["random", "even"], default="random", help="(default: random)")
    masks.add_argument("--masks", type=_masks_arg, default=1, metavar="K|unlimited", help="pool size (default: 1)")
    masks.add_argument("--resample", choices=["full", "ordering", "connectivity"], default="full",
                       help="what the pool resamples (default: full)")
    masks.add_argument("--seed", type=_SEED, default=0, help="(default: 0)")
    masks.add_argument("--mask-index", type=_NON_NEGATIVE, default=0, metavar="I", help="which mask of the pool (default: 0)")
    masks.add_argument("--out", metavar="FILE.png", help="picture to write (default: masks.png, or RUN_DIR/masks.png)")
    masks.set_defaults(func=cmd_masks)
    _add_tune_parser(sub)
    return parser


# ------------------------------------------------------------------ helpers
def _device(name: str) -> torch.device:
    """The device of ``--device``, refused in one line unless this machine has it."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: unknown device {name!r}") from None
    if device.type == "meta":
        raise ValueError("--device meta holds no values, so nothing can be trained or evaluated on it; use cpu or a GPU")
    if device.type != "cpu" and not _device_available(device):
        raise ValueError(f"--device {name}: this machine has no such device")
    return device


def _device_available(device: torch.device) -> bool:
    """Whether torch can reach ``device`` here: its backend is built in, finds hardware and has that index."""
    if device.type == "mps":
        return torch.backends.mps.is_available() and device.index in (None, 0)
    backend = getattr(torch, device.type, None)  # torch.cuda, torch.xpu, torch.hpu, torch.mtia ...
    if backend is None or not callable(getattr(backend, "is_available", None)) or not backend.is_available():
        return False
    count = getattr(backend, "device_count", None)
    return device.index is None or count is None or device.index < count()


def _data_spec(args: argparse.Namespace) -> dict:
    path = str(Path(args.data).resolve()) if args.data else None
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    return {"dataset": None if path else args.dataset, "path": path, "data_dir": data_dir,
            "split_seed": args.split_seed, "header": args.header, "precision": "file"}


def _load(spec: dict, binary: bool = True) -> Splits:
    return load_data(spec["dataset"], spec["path"], spec["data_dir"], spec["split_seed"], binary, spec.get("header"))


def _all_binary(schema: list[dict]) -> bool:
    return all(c["type"] == "binary" for c in schema)


def _run_schema(config: dict, model: MADE) -> list[dict]:
    """The run's column schema (all binary for runs that predate schemas)."""
    return config.get("schema") or [{"type": "binary"}] * model.num_inputs


def _context(spec: dict | None, splits: Splits, split: str) -> torch.Tensor | None:
    values = split_context(spec, splits, split)
    return None if values is None else _tensor(values)


def _units(schema: list[dict]) -> dict:
    """What the NLL figures mean, for metrics: nats per example, real columns in their own units."""
    shift = float(log_scales(schema).sum())
    if not shift:
        return {}
    return {"nll_log_std_sum": shift, "nll_units": "nats per example in the data's own units (the standardized-space "
            "NLL plus nll_log_std_sum)"}


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


def _default_ensemble(model: MADE, unlimited: int) -> int | None:
    if model.num_masks == 1:
        return None
    return unlimited if model.num_masks == "unlimited" else model.num_masks


def _tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array))


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return action.choices[name]


def _given_options(argv: Sequence[str]) -> set[str]:
    """The options of ``made train`` written on the command line (not left to their defaults)."""
    parser = build_parser()
    for action in _subparser(parser, "train")._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command", "func"}


def _stored_options(args: argparse.Namespace) -> dict:
    """The options that define a run, as ``args.json`` keeps them (data paths made absolute)."""
    names = {a.dest for a in _subparser(build_parser(), "train")._actions} - NOT_STORED
    options = {name: getattr(args, name) for name in sorted(names)}
    for name in ("data", "data_dir"):
        if options[name] is not None:
            options[name] = str(Path(options[name]).resolve())
    return options


def _resumed_args(args: argparse.Namespace) -> argparse.Namespace:
    """The options of the run in ``args.resume``, checked like a command line, with the few
    that may change on resume (``--device``, ``--quiet``) taken from this one."""
    run = Path(args.resume)
    if not run.is_dir():
        raise CheckpointError(f"{run}: not a run folder (no such directory)")
    given = _given_options(args.argv) - {"resume"}
    if given - RESUME_MAY_CHANGE:
        flags = ", ".join(sorted("--" + name.replace("_", "-") for name in given - RESUME_MAY_CHANGE))
        raise ValueError(f"--resume takes every setting from {run / ARGS_FILE}; drop {flags}")
    if (run / METRICS_FILE).exists():
        raise ValueError(f"{run} has finished already (see {run / METRICS_FILE}); nothing to resume")
    check_no_links(run)
    record = read_json(run / ARGS_FILE)
    if isinstance(record.get("options"), dict):
        for name, value in OPTIONS_ADDED_IN_0_3.items():  # runs of made 0.2 predate them: their defaults
            record["options"].setdefault(name, value)
    try:
        check_fields(record, {"format_version": int, "command": Literal["train"], "options": dict}, str(run / ARGS_FILE))
        if record["format_version"] != FORMAT_VERSION:
            raise SchemaError(f"{run / ARGS_FILE}: unknown format_version {record['format_version']}")
        train_parser = _subparser(build_parser(), "train")
        check_option_values(record["options"], train_parser, f"{run / ARGS_FILE}: options", skip=NOT_STORED)
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    options = {**record["options"], **{name: getattr(args, name) for name in given}}
    return argparse.Namespace(**options, resume=str(run), out=str(run), overwrite=False)


def _check_memory(settings: dict, dtype: torch.dtype) -> None:
    """Refuse a model whose weights, gradients, optimizer state and copies would not fit in memory."""
    need, have = count_weights(settings) * dtype.itemsize * 6, _memory_limit()
    if need > have:
        raise ValueError(
            f"a model with {settings['num_inputs']:,} inputs and hidden layers {settings['hidden_sizes']} needs about "
            f"{need / 2**30:.1f} GiB to train, more than the {have / 2**30:.1f} GiB available"
        )


def _memory_limit() -> int:
    """Bytes this process may still allocate: the least of the machine's free memory, what its
    address-space and data limits leave (``ulimit -v``, ``-d``) and what its cgroup's limit leaves."""
    limits = [available_memory()]
    try:
        import resource
    except ImportError:  # not a Unix
        return limits[0]
    used = _process_sizes()
    for which, field in ((resource.RLIMIT_AS, "VmSize"), (resource.RLIMIT_DATA, "VmData")):
        soft = resource.getrlimit(which)[0]
        if soft != resource.RLIM_INFINITY:
            limits.append(soft - used.get(field, 0))
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        cap = _read_number(limit)
        if cap is not None:
            limits.append(cap - (_read_number(usage) or 0))
    return max(0, min(limits))


def _process_sizes() -> dict[str, int]:
    """This process's ``VmSize`` and ``VmData`` in bytes (Linux ``/proc/self/status``; empty elsewhere)."""
    sizes = {}
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                name, _, value = line.partition(":")
                if name in ("VmSize", "VmData"):
                    sizes[name] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return sizes


def _read_number(path: str) -> int | None:
    """The integer a cgroup file holds; None when it is missing or says "max" (no limit)."""
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _run_folder(out: Path, args: argparse.Namespace) -> Iterator[Path]:
    """The folder a new run trains into, holding its ``args.json``: ``out`` itself, or, to replace
    a run already there (only with ``--overwrite``), a sibling temporary folder swapped in once the
    new run is complete, so a failed or killed new run leaves the old one whole."""
    replacing = (out / ARGS_FILE).exists() or (out / CONFIG_FILE).exists()
    if replacing and not args.overwrite:
        raise ValueError(f"{out} already holds a run; continue it with --resume {out}, "
                         "choose another --out or pass --overwrite")
    if out.is_dir() and not replacing:  # a run replaced is only renamed and deleted, which follows no link
        check_no_links(out)
        for name in (LOG_FILE, WEIGHTS_FILE, METRICS_FILE):
            if (out / name).exists() and not (out / name).is_file():
                raise ValueError(f"{out / name}: not a regular file, where made train writes its {name}; "
                                 "remove it or choose another --out")
    work = out.parent / f".made-new-{uuid.uuid4().hex[:12]}" if replacing else out
    work.mkdir(parents=True, exist_ok=not replacing)
    try:
        write_json(work / ARGS_FILE, {"format_version": FORMAT_VERSION, "command": "train",
                                      "options": _stored_options(args)})
        yield work
    except BaseException:
        if replacing:
            shutil.rmtree(work, ignore_errors=True)
        raise
    if replacing:
        aside = work.with_name(work.name.replace(".made-new-", ".made-old-"))
        os.rename(out, aside)
        os.rename(work, out)
        shutil.rmtree(aside)


# ----------------------------------------------------------------- commands
def cmd_train(args: argparse.Namespace) -> int:
    if args.resume:
        args = _resumed_args(args)
    info, device = init_from_env(_device(args.device))
    try:
        return _train(args, info, device)
    finally:
        shutdown()


def _train(args: argparse.Namespace, info: ProcessInfo, device: torch.device,
           on_epoch: Callable[[dict], None] | None = None) -> int:
    config = TrainConfig(
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, patience=args.patience,
        epochs=args.epochs, seed=args.seed, weight_decay=args.weight_decay, lr_schedule=args.lr_schedule,
        warmup_epochs=args.warmup_epochs, adadelta_rho=args.adadelta_rho,
        adadelta_eps=args.adadelta_eps, valid_ensemble=args.valid_ensemble, checkpoint_every=args.checkpoint_every,
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
    )
    spec = _data_spec(args)
    raw = _load(spec, binary=args.schema == "binary")
    schema = resolve_schema(args.schema, raw.train, args.max_categories, args.components)
    context = make_context_spec(args.context, raw)
    splits = encode_splits(schema, raw, np.dtype(args.dtype))
    out = Path(args.out or f"runs/{splits.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    dtype = getattr(torch, args.dtype)
    settings = {
        "num_inputs": splits.num_inputs, "hidden_sizes": args.hidden, "num_masks": args.masks,
        "ordering": args.ordering, "direct": args.direct, "seed": args.seed, "activation": args.activation,
        "blocks": args.blocks, "dropout": args.dropout,
        "resample": args.resample, "degrees": args.degrees, "conditioning": args.conditioning, "init": args.init,
        "family": family_config(schema, args.min_scale), "context_size": context_size(context),
    }
    _check_memory(settings, dtype)
    torch.manual_seed(args.seed)
    model = MADE(**settings).to(device=device, dtype=dtype)
    folder = _run_folder(out, args) if info.is_main and not args.resume else contextlib.nullcontext(out)
    with folder as work:
        test_k = args.test_ensemble or _default_ensemble(model, 1000)
        if info.is_main:
            processes = f" in {info.world_size} processes" if info.world_size > 1 else ""
            print(f"{'resuming' if args.resume else 'training'} on {splits.name}: D={splits.num_inputs} "
                  f"({model.family.name}), "
                  f"{len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test; "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}{processes}")
        history = fit(model, _tensor(splits.train), _tensor(splits.valid), config, work / LOG_FILE,
                      progress=False if args.quiet else None, on_epoch=on_epoch,
                      checkpoint_dir=work / CHECKPOINT_DIR,
                      resume=bool(args.resume), train_context=_context(context, raw, "train"),
                      valid_context=_context(context, raw, "valid"))
        if not info.is_main:
            return 0
        model.set_mask(0)
        eval_spec = {"ensemble": test_k, "batch_size": config.eval_batch_size, "dtype": args.dtype}
        save_model(work, model, {"data": spec, "train": asdict(config), "eval": eval_spec,
                                 "image_shape": splits.image_shape, "schema": schema, "context": context})
        test, valid = (
            in_original_units(evaluate_nll(model, _tensor(splits.split(s)), config.eval_batch_size, test_k,
                                           _context(context, raw, s)), schema)
            for s in ("test", "valid")
        )
        metrics = {
            "test_nll": test.nll, "test_nll_stderr": test.stderr, "test_bits_per_dim": test.bits_per_dim,
            "valid_nll": valid.nll, "valid_nll_stderr": valid.stderr, "ensemble": test_k,
            "epochs": history.epochs, "best_epoch": history.best_epoch, "seconds": history.seconds,
            "seconds_per_epoch": history.seconds / max(history.epochs, 1), "dataset": splits.name,
            **_units(schema),
        }
        write_json(work / METRICS_FILE, metrics)
    print(f"test NLL {test.nll:.3f} ± {test.stderr:.3f} nats ({test.bits_per_dim:.4f} bits/dim), "
          f"valid NLL {valid.nll:.3f}; {history.epochs} epochs (best {history.best_epoch}) in {history.seconds:.1f} s")
    print(f"run folder: {out}")
    return 0


def _load_run(run_dir: str, device: torch.device) -> tuple[MADE, dict]:
    """The model and config of a run folder, with the sections ``made train`` adds checked too."""
    run = Path(run_dir)
    if (run / ARGS_FILE).is_file() and not (run / CONFIG_FILE).exists():
        raise CheckpointError(f"{run}: training did not finish (no {CONFIG_FILE}); "
                              f"continue it with made train --resume {run}")
    model, config = load_run_model(run_dir, device)
    try:
        for section, hints in RUN_SECTIONS.items():
            if section in config:  # header and precision: not in runs of made 0.2
                check_fields(config[section], hints, f"{Path(run_dir) / CONFIG_FILE}: {section}",
                             ranges=RUN_RANGES[section], optional=("header", "precision"))
        if config.get("schema") is not None:
            check_fitted_schema(config["schema"], model.family, f"{Path(run_dir) / CONFIG_FILE}: schema")
        if config.get("context") is not None:
            check_fields(config["context"], CONTEXT_SPEC, f"{Path(run_dir) / CONFIG_FILE}: context",
                         ranges={"classes": lambda v: v >= 1})
            if config["context"]["classes"] != model.context_size:
                raise SchemaError(f"{Path(run_dir) / CONFIG_FILE}: context has {config['context']['classes']} "
                                  f"classes, the model takes {model.context_size} context inputs")
        elif model.context_size:
            raise SchemaError(f"{Path(run_dir) / CONFIG_FILE}: the model takes a context but the config has none")
        shape = config.get("image_shape")
        if shape is not None and not (isinstance(shape, list) and len(shape) == 2 and
                                      all(type(v) is int and v > 0 for v in shape)):
            raise SchemaError(f"{Path(run_dir) / CONFIG_FILE}: image_shape must be two positive integers or null")
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    return model, config


def _eval_spec(args: argparse.Namespace, config: dict) -> dict:
    """The data to score: the run's own unless --dataset or --data is given, read with the run's
    split seed and (for its own file) header setting unless those are given too."""
    run = config.get("data")
    if not (args.dataset or args.data):
        if run is None:
            raise ValueError(f"{args.run_dir} does not name its data; pass --dataset or --data")
        spec = {**run, "precision": "file"}
    else:
        spec = _data_spec(args)
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


def cmd_eval(args: argparse.Namespace) -> int:
    model, config = _load_run(args.run_dir, _device(args.device))
    dtype = getattr(torch, config.get("eval", {}).get("dtype", "float32"))
    model = model.to(dtype)
    if args.per_dim and Path(args.per_dim).suffix not in (".npy", ".csv"):
        raise ValueError(f"--per-dim must end in .npy or .csv, got {args.per_dim}")
    spec = _eval_spec(args, config)
    schema = _run_schema(config, model)
    raw = _load(spec, binary=_all_binary(schema))
    if raw.num_inputs != num_columns(schema):
        raise ValueError(f"the data has {raw.num_inputs} columns, the model expects {num_columns(schema)}")
    note = _precision_note(config.get("data"), raw)
    if note:
        print(note, file=sys.stderr)
    splits = encode_splits(schema, raw, _numpy_dtype(dtype))
    ensemble = args.ensemble if args.ensemble is not None else config.get("eval", {}).get("ensemble")
    batch = args.batch_size or config.get("eval", {}).get("batch_size", 1000)
    data, context = _tensor(splits.split(args.split)), _context(config.get("context"), raw, args.split)
    result: NLLResult = in_original_units(evaluate_nll(model, data, batch, ensemble, context), schema)
    metrics = {f"{args.split}_nll": result.nll, f"{args.split}_nll_stderr": result.stderr,
               f"{args.split}_bits_per_dim": result.bits_per_dim, "ensemble": ensemble,
               "num_examples": result.num_examples, "dataset": splits.name, "split": args.split,
               "split_seed": spec["split_seed"] if spec["path"] else None, **_units(schema)}
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


def _numpy_dtype(dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=dtype).numpy().dtype


def _load_for_inference(args: argparse.Namespace) -> tuple[MADE, dict]:
    model, config = _load_run(args.run_dir, _device(args.device))
    model = model.to(getattr(torch, config.get("eval", {}).get("dtype", "float32")))
    model.eval()
    return model, config


def _exact_dtype(rows: np.ndarray, preferred: np.dtype | None) -> np.dtype:
    """The first of ``preferred`` (the data's own dtype), uint8, int64 and float64 that holds every value exactly."""
    for dtype in ([preferred] if preferred is not None else []) + [np.uint8, np.int64]:
        with np.errstate(invalid="ignore", over="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # casts that wrap or overflow are what is tested
            if np.array_equal(rows.astype(dtype), rows):
                return np.dtype(dtype)
    return np.dtype(np.float64)


def _save_rows(path: Path, rows: np.ndarray, dtype: np.dtype | None = None, header: list[str] | None = None) -> None:
    """Write rows losslessly: .npy in the first exact dtype (see :func:`_exact_dtype`), .csv with whole
    numbers as integers and other values in the shortest form that reads back the same (and ``header``)."""
    rows = rows.astype(_exact_dtype(rows, dtype))
    if path.suffix == ".npy":
        atomic_write(path, lambda tmp: np.save(tmp, rows))
        return
    lines = [",".join(header)] if header else []
    lines += [",".join(format_value(v) for v in row) for row in rows]
    atomic_write(path, lambda tmp: Path(tmp).write_text("\n".join(lines) + "\n"))


def _batches(total: int, size: int, desc: str, quiet: bool):
    """``(start, stop)`` pairs covering ``range(total)``, with a progress bar when there is more than one."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, disable=True if quiet or total <= size else None)
    for start in range(0, total, size):
        stop = min(start + size, total)
        yield start, stop
        bar.update(stop - start)
    bar.close()


def cmd_sample(args: argparse.Namespace) -> int:
    model, config = _load_for_inference(args)
    image_shape = config.get("image_shape")
    out = Path(args.out) if args.out else Path(args.run_dir) / ("samples.png" if image_shape else "samples.npy")
    if out.suffix not in (".png", ".npy", ".csv"):
        raise ValueError(f"--out must end in .png, .npy or .csv, got {out}")
    if out.suffix == ".png" and not image_shape:
        raise ValueError("this data is not image-shaped; write .npy or .csv instead of .png")
    schema = _run_schema(config, model)
    context = context_from_value(config.get("context"), args.context, args.num_samples)
    generator = torch.Generator(device=model.output.weight.device).manual_seed(args.seed)
    context = None if context is None else _tensor(context).to(model.output.weight.device)
    parts = [
        model.sample(stop - start, None if context is None else context[start:stop], generator=generator,
                     ensemble=args.ensemble).cpu().numpy()
        for start, stop in _batches(args.num_samples, args.batch_size, "sampling", args.quiet)
    ]
    samples = decode(schema, np.concatenate(parts))
    if out.suffix == ".png":
        from .plots import save_image_grid

        atomic_write(out, lambda tmp: save_image_grid(samples, tuple(image_shape), tmp))
    else:
        _save_rows(out, samples)
    print(f"wrote {args.num_samples} samples to {out}")
    return 0


def _read_missing(args: argparse.Namespace, schema: list[dict]) -> tuple[Table, np.ndarray]:
    """The rows to complete, at their own precision, and which cells are hidden: NaN (an empty or NA cell)
    or, with --mask, the cells marked 1."""
    table = read_table(args.data, args.header)
    data = table.values
    if data.shape[1] != num_columns(schema):
        raise DataError(f"{args.data}: the data has {data.shape[1]} columns, the model expects {num_columns(schema)}")
    infinite = np.isinf(data)
    if infinite.any():
        row, col = np.argwhere(infinite)[0]
        raise DataError(f"{args.data}: {table.where(row)}, column {col + 1}: {data[row, col]} is not a finite number")
    if args.mask is None:
        return table, np.isnan(data)
    mask = read_table(args.mask, args.header).values
    if mask.shape != data.shape:
        raise DataError(f"{args.mask}: the mask has shape {mask.shape}, the data {data.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise DataError(f"{args.mask}: the mask must hold 0 (observed) or 1 (missing)")
    unmarked = np.isnan(data) & (mask == 0)
    if unmarked.any():
        row, col = np.argwhere(unmarked)[0]
        raise DataError(f"{args.data}: {table.where(row)}, column {col + 1} is missing but the mask says observed")
    return table, mask == 1


def _conditional_nll(model: MADE, x: torch.Tensor, observed: torch.Tensor, ensemble: int | None,
                     batch_size: int, quiet: bool, context: torch.Tensor | None = None) -> tuple[float, float, int]:
    """Mean and standard error of -log p(x_missing | x_observed) over rows with something missing."""
    rows = (~observed).any(dim=1)
    x, observed = x[rows], observed[rows]
    context = None if context is None else context[rows]
    device, dtype = model.output.weight.device, model.output.weight.dtype
    nll = torch.cat([
        -model.conditional_log_prob(x[a:b].to(device, dtype), observed[a:b].to(device),
                                    None if context is None else context[a:b].to(device, dtype),
                                    ensemble=ensemble).cpu()
        for a, b in _batches(len(x), batch_size, "scoring", quiet)
    ]).double()
    n = nll.numel()
    return float(nll.mean()), float(nll.std() / n**0.5) if n > 1 else float("nan"), n


def _impute_rows(model: MADE, x: torch.Tensor, observed: torch.Tensor, samples: int, args: argparse.Namespace,
                 ensemble: int | None, context: torch.Tensor | None = None) -> torch.Tensor:
    """``[N, samples, D]`` completions, computed in batches of rows with a progress bar."""
    device, dtype = model.output.weight.device, model.output.weight.dtype
    generator = torch.Generator(device=device).manual_seed(args.seed)
    parts = [
        model.impute(x[a:b].to(device, dtype), observed[a:b].to(device), samples,
                     None if context is None else context[a:b].to(device, dtype), ensemble=ensemble,
                     generator=generator).transpose(0, 1).cpu()
        for a, b in _batches(len(x), args.batch_size, "imputing", args.quiet)
    ]
    return torch.cat(parts)


def _given_half(image_shape: tuple[int, int], side: str) -> np.ndarray:
    """Bool ``[H*W]``: True on the observed half of the image."""
    h, w = image_shape
    rows, cols = np.indices((h, w))
    half = {"top": rows < h // 2, "bottom": rows >= h // 2, "left": cols < w // 2, "right": cols >= w // 2}[side]
    return half.reshape(-1)


def cmd_impute(args: argparse.Namespace) -> int:
    model, config = _load_for_inference(args)
    ensemble = args.ensemble if args.ensemble is not None else config.get("eval", {}).get("ensemble")
    masks = "the run's mask" if not ensemble else f"mixture of {ensemble} masks" if ensemble > 1 else "1 mask"
    if args.inpaint:
        if args.mask or args.out or args.context is not None:
            raise ValueError("--mask, --out and --context go with --data, not with --inpaint")
        return _inpaint(args, model, config, ensemble, masks)
    out = Path(args.out) if args.out else Path(args.run_dir) / "imputed.npy"
    if out.suffix not in (".npy", ".csv"):
        raise ValueError(f"--out must end in .npy or .csv, got {out}")
    schema = _run_schema(config, model)
    table, hidden = _read_missing(args, schema)
    data, samples = table.values, args.samples or 1
    context = context_from_value(config.get("context"), args.context, len(data))
    context = None if context is None else _tensor(context)
    if not hidden.any():
        _save_rows(out, np.repeat(data, samples, axis=0), data.dtype, table.header)
        print(f"nothing was missing in {args.data}: wrote its {len(data)} rows unchanged "
              f"({samples} cop{'y' if samples == 1 else 'ies'} each) to {out}")
        return 0
    encoded, observed = encode_observed(schema, data, hidden, str(args.data), table.where)
    x, seen = _tensor(encoded), _tensor(observed)
    filled = _impute_rows(model, x, seen, samples, args, ensemble, context)
    decoded = decode(schema, filled.reshape(-1, model.num_inputs).double().numpy())
    rows = np.where(np.repeat(hidden, samples, axis=0), decoded, np.repeat(data, samples, axis=0))
    _save_rows(out, rows, data.dtype, table.header)
    print(f"filled {int(hidden.sum())} missing values in {len(data)} rows, {samples} completion(s) each "
          f"({masks}); wrote {len(data) * samples} rows to {out}")
    if np.isnan(data).any():
        print("the missing values are unknown (NaN), so there is no conditional NLL to report")
    else:
        nll, stderr, n = _conditional_nll(model, x, seen, ensemble, args.batch_size, args.quiet, context)
        nll += float(log_scales(schema) @ (~observed).sum(0)) / n  # the hidden real values in the data's units
        print(f"conditional NLL of the hidden values: {nll:.4f} ± {stderr:.4f} nats per row over {n} rows")
    return 0


def _inpaint(args: argparse.Namespace, model: MADE, config: dict, ensemble: int | None, masks: str) -> int:
    image_shape = config.get("image_shape")
    if not image_shape:
        raise ValueError("--inpaint needs image data (the run's data set has no image shape); use --data")
    out = Path(args.inpaint)
    if out.suffix != ".png":
        raise ValueError(f"--inpaint must end in .png, got {out}")
    schema = _run_schema(config, model)
    raw = _load(config["data"], binary=_all_binary(schema))
    if raw.num_inputs != num_columns(schema):
        raise ValueError(f"the data has {raw.num_inputs} columns, the model expects {num_columns(schema)}")
    data = _tensor(encode(schema, raw.split(args.split), raw.source or raw.name, raw.where(args.split)))
    context = _context(config.get("context"), raw, args.split)
    half = torch.from_numpy(_given_half(tuple(image_shape), args.given))
    observed = half.expand(data.shape[0], -1)
    picked = np.linspace(0, len(data) - 1, min(args.examples, len(data))).round().astype(int)
    shown = data[picked]
    completions = _impute_rows(model, shown, observed[: len(shown)], args.samples or 6, args, ensemble,
                               None if context is None else context[picked])
    from .plots import save_inpainting

    atomic_write(out, lambda tmp: save_inpainting(shown.numpy(), half.numpy(), completions.numpy(),
                                                  tuple(image_shape), tmp))
    print(f"wrote {len(shown)} {args.split} images given their {args.given} half, with {completions.shape[1]} "
          f"completions each ({masks}), to {out}")
    nll, stderr, n = _conditional_nll(model, data, observed, ensemble, 1000, args.quiet, context)
    print(f"conditional NLL of the other half given the {args.given} half, {args.split} split: "
          f"{nll:.4f} ± {stderr:.4f} nats per image over {n} images ({masks})")
    return 0


def cmd_masks(args: argparse.Namespace) -> int:
    from .plots import save_mask_picture

    if args.run_dir:
        model, _ = _load_run(args.run_dir, torch.device("cpu"))
        source = str(args.run_dir)
    else:
        widths = [args.inputs, *args.hidden]
        if max(widths) > MAX_DRAWN_UNITS:  # refused before a network of that size is built
            raise ValueError(f"--inputs and --hidden: at most {MAX_DRAWN_UNITS} units a layer can be drawn, "
                             f"got layers of {widths}")
        model = MADE(num_inputs=args.inputs, hidden_sizes=args.hidden, num_masks=args.masks, ordering=args.ordering,
                     direct=args.direct, seed=args.seed, resample=args.resample, degrees=args.degrees)
        source = f"D={args.inputs}, hidden {args.hidden}, seed {args.seed}"
    if args.mask_index:
        model.set_mask(args.mask_index)
    model.check_autoregressive()
    out = Path(args.out) if args.out else Path(args.run_dir or ".") / "masks.png"
    if out.suffix != ".png":
        raise ValueError(f"--out must end in .png, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_mask_picture(model, out, title=f"MADE masks: {source}, mask {args.mask_index}")
    order = " ".join(f"x{i + 1}" for i in model.ordering.tolist())
    print(f"wrote {out}: ordering {order}; path counts strictly lower triangular (checked)")
    return 0


def _show_data_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                       file: object = None, line: str | None = None) -> None:
    """A data warning as one line on stderr (``made: warning: ...``), other warnings as Python prints them."""
    if issubclass(category, DataWarning):
        print(f"made: warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def _out_of_memory(err: RuntimeError) -> bool:
    """Whether torch failed to allocate (its CPU allocator and CUDA both raise RuntimeErrors)."""
    text = str(err)
    return isinstance(err, torch.OutOfMemoryError) or "can't allocate memory" in text or "out of memory" in text


# --------------------------------------------------------------------- tune
TUNE_SETS = {"dataset", "data", "data_dir", "split_seed", "out", "resume", "overwrite", "max_minutes", "quiet", "seed",
             "checkpoint_every"}


def _add_tune_parser(sub: argparse._SubParsersAction) -> None:
    tune = sub.add_parser(
        "tune", help="find training settings for your data within a time budget",
        description="Search the training settings of a MADE (hidden layers and widths, direct connection, mask "
        "pool, learning rate, weight decay, minibatch size) with Optuna's TPE sampler, stopping poor trials early "
        "on their validation NLL, and keep the best by validation NLL alone; at the end a mixture of the best "
        "trials replaces it if its validation NLL is lower. RUN_DIR becomes an ordinary run folder for 'made "
        "eval', 'sample' and 'impute'; the trials stay in RUN_DIR/trials/N and the study in RUN_DIR/study.db, so "
        "the same command continues an interrupted tune with the time it had left. Needs optuna.")
    _add_data_args(tune, "digits")
    tune.add_argument("--out", metavar="RUN_DIR", required=True, help="run folder of the tune")
    tune.add_argument("--minutes", type=float, default=10.0, metavar="M",
                      help="wall-clock budget for everything, the final evaluation included (default: 10)")
    tune.add_argument("--storage", metavar="URL", help="Optuna storage several machines share, e.g. "
                      "postgresql://HOST/DB; each machine keeps its own trials and budget (default: "
                      "sqlite:///RUN_DIR/study.db)")
    tune.add_argument("--study-name", default="made", help="name of the study in the storage (default: made)")
    tune.add_argument("--train-options", default="", metavar="'OPTIONS'",
                      help="further 'made train' options for every trial, in one quoted string, e.g. "
                      "'--schema auto --patience 30'; not the searched ones (default: none)")
    tune.add_argument("--jobs", type=int, default=2, help="trials trained at once, each with its share of torch's CPU "
                      "threads: on 2 cores, two 1-thread trials train faster than one 2-thread trial (default: 2)")
    tune.add_argument("--no-mixture", action="store_true", help="keep the best single trial, never a mixture")
    tune.add_argument("--seed", type=int, default=0, help="seed of the sampler; trial N trains with seed+N (default: 0)")
    tune.add_argument("--device", default="auto", help="(default: auto)")
    tune.add_argument("--quiet", action="store_true", help="no line per trial")
    tune.set_defaults(func=cmd_tune)


def _tune_train_argv(args: argparse.Namespace) -> tuple[list[str], list[str]]:
    """The 'made train' options every trial shares, and those of --train-options (checked)."""
    try:
        extra = shlex.split(args.train_options)
    except ValueError as err:
        raise ValueError(f"--train-options: {err}") from None
    # a trial is never resumed (an interrupted one is failed), so no checkpoint each epoch
    base = ["train", "--split-seed", str(args.split_seed), "--device", args.device, "--patience", str(DEFAULT_PATIENCE),
            "--checkpoint-every", "1000000"]
    if args.data:
        base += ["--data", str(Path(args.data).resolve())]
    else:
        base += ["--dataset", args.dataset] + (["--data-dir", str(Path(args.data_dir).resolve())] if args.data_dir else [])
    clash = _given_options(["train", *extra]) & (searched_options() | TUNE_SETS)
    if clash:
        flags = ", ".join(sorted("--" + name.replace("_", "-") for name in clash))
        raise ValueError(f"--train-options: made tune sets {flags} itself; leave them out")
    return base, extra


def cmd_tune(args: argparse.Namespace) -> int:
    try:
        import optuna
    except ImportError:
        raise ValueError("made tune needs optuna: pip install 'made[tune]'") from None

    start = time.perf_counter()
    if not args.minutes > 0:
        raise ValueError(f"--minutes must be positive, got {args.minutes}")
    if args.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, got {args.jobs}")
    out = Path(args.out)
    if (out / ARGS_FILE).exists():
        raise ValueError(f"{out} holds a 'made train' run; choose another --out")
    base, extra = _tune_train_argv(args)
    study = open_study(out, args.storage, args.study_name, {"data": base[1:], "train_options": extra}, args.seed)
    key = budget_key(out)
    budget = Budget(study, 60 * args.minutes, key, start)
    fail_interrupted(study, key)
    reserve = max(0.15 * budget.total, 2.0)  # the last trial's last epoch and evaluation, and the final choice
    threads = torch.get_num_threads()
    torch.set_num_threads(max(1, threads // args.jobs))
    info, device = init_from_env(_device(args.device))
    shown = sys.stdout

    def trial_seconds() -> float:
        """Training time for the next trial: its share of the budget, less what the end needs."""
        overhead = max((t.user_attrs.get("eval_seconds", 0.0) for t in ranked_trials(study, key)), default=0.0)
        return min(budget.total * TRIAL_SHARE, budget.left() - reserve - overhead)

    def objective(trial: optuna.Trial, seconds: float) -> float:
        values = {p.name: p.suggest(trial) for p in SEARCH_SPACE}
        folder = out / "trials" / str(trial.number)
        trial.set_user_attr("owner", key)
        trial.set_user_attr("folder", str(folder.resolve()))
        argv = [*base, "--out", str(folder), "--overwrite", "--quiet", "--seed", str(args.seed + trial.number),
                "--max-minutes", f"{seconds / 60:.6f}", *train_argv(values), *extra]
        trial_args = build_parser().parse_args(argv)
        trial_args.argv = argv

        def on_epoch(record: dict) -> None:
            trial.report(record["best_valid_nll"], record["epoch"])
            budget.save(every=5.0)
            if trial.should_prune():
                trial.set_user_attr("outcome", f"pruned at epoch {record['epoch']}")
                raise optuna.TrialPruned()

        start = time.perf_counter()
        try:
            _train(trial_args, info, device, on_epoch)
        except FloatingPointError:
            trial.set_user_attr("outcome", "diverged")
            raise optuna.TrialPruned() from None
        metrics = read_json(folder / METRICS_FILE)
        trial.set_user_attr("eval_seconds", time.perf_counter() - start - metrics["seconds"])  # all but training
        return float(metrics["valid_nll"])

    def report(trial: optuna.trial.FrozenTrial) -> None:
        budget.save()
        if args.quiet:
            return
        outcome = trial.user_attrs.get("outcome", "failed")
        if trial.state == optuna.trial.TrialState.COMPLETE:
            outcome = f"valid NLL {trial.value:.4f}"
        ranked = ranked_trials(study, key)
        print(trial_line(trial.number, outcome, trial.params, ranked[0].value if ranked else None, budget.left()),
              file=shown, flush=True)

    asking, failures = threading.Lock(), []

    def worker() -> None:
        """Train trials until the budget is spent; asking is serialized so no two take the same trial."""
        while not failures:
            seconds = trial_seconds()
            if seconds <= 0:
                return
            with asking:
                trial = study.ask()
            try:
                value, state = objective(trial, seconds), optuna.trial.TrialState.COMPLETE
            except optuna.TrialPruned:
                value, state = None, optuna.trial.TrialState.PRUNED
            except BaseException as err:  # noqa: BLE001 -- recorded, then raised by the main thread
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
                failures.append(err)
                return
            report(study.tell(trial, value, state=state))

    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the trials' own reports; one line each is shown
            if args.jobs == 1:
                worker()
            else:
                workers = [threading.Thread(target=worker, daemon=True) for _ in range(args.jobs)]
                for w in workers:
                    w.start()
                for w in workers:
                    w.join()
        if failures:
            raise failures[0]
        ranked = ranked_trials(study, key)
        if not ranked:
            raise ValueError(f"no trial finished within --minutes {args.minutes:g}; give the tune more time")
        _finish_tune(out, ranked, args, budget, device)
    finally:
        budget.save()
        torch.set_num_threads(threads)
        shutdown()
    return 0


def _clear_result(out: Path) -> None:
    """Remove the result of an earlier finish of this tune (a single run's files or a mixture's members)."""
    for name in (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, LOG_FILE):
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / MEMBERS_DIR, ignore_errors=True)


def _finish_tune(out: Path, ranked: list, args: argparse.Namespace, budget: Budget, device: torch.device) -> None:
    """Make ``out`` the run folder of the best trial, or of a mixture of the best trials when its
    validation NLL is lower (weights fitted on validation); print what was chosen."""
    best = ranked[0]
    summary = {"trials_finished": len(ranked), "chosen_trials": [best.number], "weights": None,
               "settings": best.params, "minutes": args.minutes}
    metrics = read_json(Path(best.user_attrs["folder"]) / METRICS_FILE)
    mixture = None
    members = ranked[:MIXTURE_SIZE]
    # the mixture scores valid twice and test once per member, as each trial did once
    cost = 1.5 * sum(t.user_attrs.get("eval_seconds", 0.0) for t in members)
    if not args.no_mixture and len(members) > 1 and budget.left() > cost:
        mixture = _tuned_mixture(members, device, best.value)
    _clear_result(out)
    if mixture is None:
        source = Path(best.user_attrs["folder"])
        for name in (WEIGHTS_FILE, LOG_FILE, CONFIG_FILE):  # config.json last: a folder without it is no run
            shutil.copyfile(source / name, out / name)
        what = f"trial {best.number}"
    else:
        model, metrics, extra = mixture
        model.save(out, extra)
        summary.update(chosen_trials=[t.number for t in members], weights=model.weights.tolist())
        what = f"a mixture of trials {summary['chosen_trials']} (weights {', '.join(f'{w:.2f}' for w in model.weights)})"
    summary["seconds"] = budget.used()
    write_json(out / METRICS_FILE, {**metrics, "tune": summary})
    print(f"chose {what} on validation NLL {metrics['valid_nll']:.4f}; test NLL {metrics['test_nll']:.4f} ± "
          f"{metrics['test_nll_stderr']:.4f} nats; {len(ranked)} trials finished in {budget.used() / 60:.1f} min")
    print(f"run folder: {out}")


def _tuned_mixture(trials: list, device: torch.device, beat: float) -> tuple[Mixture, dict, dict] | None:
    """The mixture of the trials' models with weights fitted on validation, its metrics and config
    sections; None when its validation NLL is not below ``beat`` (then test is never scored)."""
    loaded = [_load_run(t.user_attrs["folder"], device) for t in trials]
    config = loaded[0][1]
    dtype = getattr(torch, config["eval"]["dtype"])
    model = Mixture([m.to(dtype) for m, _ in loaded], ensembles=[c["eval"]["ensemble"] for _, c in loaded])
    schema = _run_schema(config, model.members[0])
    raw = _load(config["data"], binary=_all_binary(schema))
    splits = encode_splits(schema, raw)
    batch = config["eval"]["batch_size"]
    context = {s: _context(config.get("context"), raw, s) for s in ("valid", "test")}
    model.fit_weights(_tensor(splits.valid), context["valid"], batch_size=batch)

    def score(split: str) -> NLLResult:
        return in_original_units(evaluate_nll(model, _tensor(splits.split(split)), batch, None, context[split]), schema)

    valid = score("valid")
    if not valid.nll < beat:
        return None
    test = score("test")
    metrics = {"test_nll": test.nll, "test_nll_stderr": test.stderr, "test_bits_per_dim": test.bits_per_dim,
               "valid_nll": valid.nll, "valid_nll_stderr": valid.stderr, "ensemble": None, "dataset": splits.name,
               **_units(schema)}
    extra = {k: config.get(k) for k in ("data", "schema", "context", "image_shape")}
    extra["eval"] = {**config["eval"], "ensemble": None}  # each member averages its own masks
    return model, metrics, extra


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input, with one line on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        with warnings.catch_warnings():  # restores showwarning afterwards
            warnings.showwarning = _show_data_warning
            return args.func(args)
    except (DataError, ValueError, FloatingPointError) as err:
        print(f"made: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"made: error: {err.filename or ''}{': ' if err.filename else ''}{err.strerror or err}", file=sys.stderr)
        return 2
    except (MemoryError, RuntimeError) as err:
        if isinstance(err, RuntimeError) and not _out_of_memory(err):
            raise
        print("made: error: out of memory; try a smaller model, --batch-size, -n or data set", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("made: interrupted", file=sys.stderr)
        return 130
