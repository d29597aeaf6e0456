"""``made train``: train a MADE into a run folder, or continue an interrupted run with ``--resume``."""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import torch

from ..checkpoint import (
    CONFIG_FILE,
    FORMAT_VERSION,
    METRICS_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    check_no_links,
    read_json,
    write_json,
)
from ..columns import DEFAULT_MAX_CATEGORIES
from ..context import CONTEXT_KINDS
from ..distributed import ProcessInfo, init_from_env, shutdown
from ..families import DEFAULT_MIN_SCALE
from ..network import BLOCK_TYPES
from ..pipeline import LOG_FILE, build_model, read_data, train_run
from ..schema import SchemaError, check_fields, check_option_values
from ..train import DEFAULT_LR, LR_SCHEDULES, TrainConfig
from .common import ARGS_FILE, args_data_spec, pick_device
from .options import (
    DROPOUT,
    ENSEMBLE,
    FRACTION,
    NON_NEGATIVE,
    NON_NEGATIVE_FLOAT,
    POSITIVE,
    POSITIVE_FLOAT,
    SEED,
    add_data_args,
    masks_arg,
)

NOT_STORED = {"help", "resume", "out", "overwrite"}  # how to start, not what to train
# Options of 'made train' that made 0.2 did not have, with the values that train as it did.
OPTIONS_ADDED_IN_0_3 = {"header": None, "blocks": [], "dropout": 0.0, "lr_schedule": "constant", "warmup_epochs": 0}
RESUME_MAY_CHANGE = {"quiet", "device", "checkpoint_every", "max_minutes"}  # options --resume accepts: how, not what


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add ``made train`` and its options to the command line; returns its parser."""
    train = subparsers.add_parser("train", help="train a MADE and write a run folder", description="Train a MADE "
                                  "with early stopping on validation NLL; writes config.json, model.safetensors, "
                                  "metrics.json and log.jsonl into the run folder, with args.json and checkpoint/ "
                                  "so that an interrupted run continues with --resume. Under torchrun, each process "
                                  "trains on its share of every minibatch.")
    add_data_args(train, "digits")
    train.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/NAME-DATE-TIME)")
    train.add_argument("--overwrite", action="store_true", help="replace a run already in RUN_DIR")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint, "
                       "with the settings it was started with (only --device, --quiet and --checkpoint-every may be given)")
    _add_model_args(train)
    _add_column_args(train)
    _add_optimization_args(train)
    _add_running_args(train)
    train.set_defaults(func=run)
    return train


def _add_model_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of the network and its masks."""
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=POSITIVE, nargs="*", default=[500], metavar="H",
                       help="hidden layer widths; none for no hidden layer (default: 500)")
    model.add_argument("--direct", action=argparse.BooleanOptionalAction, default=False,
                       help="direct input-to-output connection, as in all the paper's experiments (default: off)")
    model.add_argument("--blocks", nargs="*", choices=sorted(BLOCK_TYPES), default=[], metavar="TYPE",
                       help="blocks after the last hidden layer, e.g. 'residual residual': residual blocks "
                       "h + W2 act(W1 h) whose layers share its degrees (default: none)")
    model.add_argument("--dropout", type=DROPOUT, default=0.0, metavar="P",
                       help="dropout probability of every hidden unit, in training only (default: 0)")
    model.add_argument("--masks", type=masks_arg, default=1, metavar="K|unlimited",
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
    model.add_argument("--seed", type=SEED, default=0, help="seed of weights, masks and minibatch order (default: 0)")


def _add_column_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of how columns are modelled, and of the context."""
    columns = parser.add_argument_group("columns and context")
    columns.add_argument("--schema", default="binary", metavar="binary|auto|onehot|FILE",
                         help="how columns are modelled: binary (0/1 columns, the paper's MADE); auto (per column: "
                         "0/1 -> binary, integers with few values -> categorical, else real, standardized); onehot "
                         "(auto, and runs of 0/1 columns where no row has two ones -> one categorical each); or a "
                         "JSON schema file (see README) (default: binary)")
    columns.add_argument("--max-categories", type=POSITIVE, default=DEFAULT_MAX_CATEGORIES, metavar="K",
                         help="auto schema: integer columns with at most K values are categorical (default: %(default)s)")
    columns.add_argument("--components", type=POSITIVE, default=1, metavar="C",
                         help="real columns: a Gaussian (1) or a mixture of C Gaussians (default: 1)")
    columns.add_argument("--min-scale", type=POSITIVE_FLOAT, default=DEFAULT_MIN_SCALE,
                         help="floor of every Gaussian scale, in standard deviations (default: %(default)s)")
    columns.add_argument("--context", choices=CONTEXT_KINDS,
                         help="condition on side information: labels = the data set's class labels, one-hot "
                         "(digits); sample with 'made sample RUN_DIR --context LABEL'")


def _add_optimization_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of the optimizer, early stopping and evaluation during training."""
    opt = parser.add_argument_group("optimization")
    opt.add_argument("--optimizer", choices=sorted(DEFAULT_LR), default="adam", help="optimizer (default: adam)")
    opt.add_argument("--lr", type=POSITIVE_FLOAT, help="learning rate (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()) + ")")
    opt.add_argument("--batch-size", type=POSITIVE, default=100, help="minibatch size (default: 100)")
    opt.add_argument("--patience", type=POSITIVE, default=30, help="epochs without validation improvement before stopping (default: 30)")
    opt.add_argument("--epochs", type=POSITIVE, default=1000, help="maximum number of epochs (default: 1000)")
    opt.add_argument("--max-minutes", type=POSITIVE_FLOAT, metavar="M",
                     help="wall-clock budget: stop after the epoch that passes it, keeping the best weights (default: none)")
    opt.add_argument("--weight-decay", type=NON_NEGATIVE_FLOAT, default=0.0,
                     help="L2 weight decay; with adamw, decoupled from the gradient (default: 0)")
    opt.add_argument("--lr-schedule", choices=list(LR_SCHEDULES), default="constant",
                     help="learning rate per epoch: constant, or a half cosine reaching 0 at --epochs (default: constant)")
    opt.add_argument("--warmup-epochs", type=NON_NEGATIVE, default=0, metavar="N",
                     help="linear warmup of the learning rate over the first N epochs (default: 0)")
    opt.add_argument("--adadelta-eps", type=POSITIVE_FLOAT, default=1e-5, help="adadelta epsilon (default: 1e-5, the authors')")
    opt.add_argument("--adadelta-rho", type=FRACTION, default=0.95, help="adadelta decay (default: 0.95, the authors')")
    opt.add_argument("--valid-ensemble", type=ENSEMBLE, metavar="K",
                     help="masks averaged for validation (default: the pool; 300 for unlimited)")
    opt.add_argument("--test-ensemble", type=ENSEMBLE, metavar="K",
                     help="masks averaged for the test figure (default: the pool; 1000 for unlimited)")


def _add_running_args(parser: argparse.ArgumentParser) -> None:
    """Add the options of where and how the run goes: device, dtype, progress, checkpoints."""
    running = parser.add_argument_group("running")
    running.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: auto, a GPU if there is one)")
    running.add_argument("--dtype", choices=["float32", "float64"], default="float32", help="(default: float32)")
    running.add_argument("--quiet", action="store_true", help="no progress bar")
    running.add_argument("--checkpoint-every", type=POSITIVE, default=1, metavar="N",
                         help="write a training checkpoint (for --resume) every N epochs (default: 1)")


def command_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """A ``made`` parser with the train command alone, and that command's parser: what a train
    command line (given, stored in ``args.json`` or built by ``made tune``) is read with."""
    parser = argparse.ArgumentParser(prog="made")
    train = add_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser, train


def given_options(argv: Sequence[str]) -> set[str]:
    """The options of ``made train`` written on the command line (not left to their defaults)."""
    parser, train = command_parser()
    for action in train._actions:
        action.default = argparse.SUPPRESS
    return set(vars(parser.parse_args(argv))) - {"command", "func"}


def _stored_options(args: argparse.Namespace) -> dict:
    """The options that define a run, as ``args.json`` keeps them (data paths made absolute)."""
    names = {a.dest for a in command_parser()[1]._actions} - NOT_STORED
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
    given = given_options(args.argv) - {"resume"}
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
        check_option_values(record["options"], command_parser()[1], f"{run / ARGS_FILE}: options", skip=NOT_STORED)
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    options = {**record["options"], **{name: getattr(args, name) for name in given}}
    return argparse.Namespace(**options, resume=str(run), out=str(run), overwrite=False)


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


def run(args: argparse.Namespace) -> int:
    """``made train``: a new run, or the rest of ``--resume``'s, in every process of a distributed launch."""
    if args.resume:
        args = _resumed_args(args)
    info, device = init_from_env(pick_device(args.device))
    try:
        return run_training(args, info, device)
    finally:
        shutdown()


def run_training(args: argparse.Namespace, info: ProcessInfo, device: torch.device,
                 on_epoch: Callable[[dict], None] | None = None) -> int:
    """Train the run that ``args`` describes (a parsed or resumed ``made train``) and, in the main
    process, save it with its metrics; ``on_epoch`` sees each epoch's record (``made tune`` prunes there)."""
    config = _train_config(args)
    data = read_data(args_data_spec(args), args.schema, args.max_categories, args.components, args.context, args.dtype)
    splits = data.splits
    out = Path(args.out or f"runs/{splits.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    model = build_model(data, args.dtype, device, args.min_scale, **_model_options(args))
    folder = _run_folder(out, args) if info.is_main and not args.resume else contextlib.nullcontext(out)
    with folder as work:
        if info.is_main:
            processes = f" in {info.world_size} processes" if info.world_size > 1 else ""
            print(f"{'resuming' if args.resume else 'training'} on {splits.name}: D={splits.num_inputs} "
                  f"({model.family.name}), "
                  f"{len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test; "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}{processes}")
        metrics = train_run(work, data, model, config, args.test_ensemble, bool(args.resume),
                            progress=False if args.quiet else None, on_epoch=on_epoch, is_main=info.is_main)
    if metrics is None:  # another process of a distributed run: the main one saves and reports
        return 0
    print(f"test NLL {metrics['test_nll']:.3f} ± {metrics['test_nll_stderr']:.3f} nats "
          f"({metrics['test_bits_per_dim']:.4f} bits/dim), valid NLL {metrics['valid_nll']:.3f}; "
          f"{metrics['epochs']} epochs (best {metrics['best_epoch']}) in {metrics['seconds']:.1f} s")
    print(f"run folder: {out}")
    return 0


def _train_config(args: argparse.Namespace) -> TrainConfig:
    """The training loop's settings from the options of ``made train``."""
    return TrainConfig(
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, patience=args.patience,
        epochs=args.epochs, seed=args.seed, weight_decay=args.weight_decay, lr_schedule=args.lr_schedule,
        warmup_epochs=args.warmup_epochs, adadelta_rho=args.adadelta_rho,
        adadelta_eps=args.adadelta_eps, valid_ensemble=args.valid_ensemble, checkpoint_every=args.checkpoint_every,
        max_seconds=None if args.max_minutes is None else 60 * args.max_minutes,
    )


def _model_options(args: argparse.Namespace) -> dict:
    """The keyword arguments of :class:`MADE` that the options of ``made train`` set."""
    return {
        "hidden_sizes": args.hidden, "num_masks": args.masks, "ordering": args.ordering, "direct": args.direct,
        "seed": args.seed, "activation": args.activation, "blocks": args.blocks, "dropout": args.dropout,
        "resample": args.resample, "degrees": args.degrees, "conditioning": args.conditioning, "init": args.init,
    }
