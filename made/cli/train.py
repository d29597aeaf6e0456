"""``made train``: train a MADE into a run folder, or continue an interrupted run with ``--resume``."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ..config import DataSettings, RunSettings, add_options, flag_of, option_names, resumable
from ..io.run import ARGS_FILE, CHECKPOINT_DIR, CONFIG_FILE, LOG_FILE, METRICS_FILE, WEIGHTS_FILE
from ..pipeline import ProcessInfo, RunData, RunModel, processes, resumed_settings, train_settings
from .common import pick_device


def add_parser(subparsers: Any, suppress: bool = False) -> argparse.ArgumentParser:
    """Add ``made train`` and its options to the command line (the ``subparsers`` of a ``made`` parser);
    returns its parser. With ``suppress``, options not given stay out of the parsed namespace."""
    train = subparsers.add_parser(
        "train",
        help="train a MADE and write a run folder",
        description="Train a MADE "
        f"with early stopping on validation NLL; writes {CONFIG_FILE}, {WEIGHTS_FILE}, "
        f"{METRICS_FILE} and {LOG_FILE} into the run folder, with {ARGS_FILE} and "
        f"{CHECKPOINT_DIR}/ so that an interrupted run continues with --resume. Under "
        "torchrun, each process trains on its share of every minibatch.",
    )
    add_options(train, DataSettings, suppress=suppress)
    unset = {"default": argparse.SUPPRESS} if suppress else {}
    train.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/NAME-DATE-TIME)", **unset)
    train.add_argument("--overwrite", action="store_true", help="replace a run already in RUN_DIR", **unset)
    train.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run from its last checkpoint, "
        "with the settings it was started with (only --device, --quiet and --checkpoint-every may be "
        "given)",
        **unset,
    )
    add_options(train, RunSettings, suppress=suppress, only=option_names(RunSettings) - option_names(DataSettings))
    train.set_defaults(func=run)
    return train


def command_parser() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """A ``made`` parser with the train command alone, and that command's parser: what a train
    command line (given, or built by ``made tune``) is read with."""
    parser = argparse.ArgumentParser(prog="made")
    train = add_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    return parser, train


def given_options(argv: Sequence[str]) -> set[str]:
    """The options of ``made train`` written on the command line (not left to their defaults)."""
    parser = argparse.ArgumentParser(prog="made")
    add_parser(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"), suppress=True)
    return set(vars(parser.parse_args(argv))) - {"command", "func"}


def _resumed_settings(args: argparse.Namespace) -> RunSettings:
    """The settings of the run in ``args.resume``, with the few that may change on resume (``--device``,
    ``--quiet`` ...) taken from this command line; any other option given is refused."""
    given = given_options(args.argv) - {"resume"}
    if given - resumable():
        flags = ", ".join(sorted(flag_of(name) for name in given - resumable()))
        raise ValueError(f"--resume takes every setting from {Path(args.resume) / ARGS_FILE}; drop {flags}")
    return resumed_settings(args.resume, {name: getattr(args, name) for name in given})


def run(args: argparse.Namespace) -> int:
    """``made train``: a new run, or the rest of ``--resume``'s, in every process of a distributed launch."""
    resume = args.resume is not None  # --resume '' is refused by name, never taken for no --resume
    settings = _resumed_settings(args) if resume else RunSettings.from_args(args)
    with processes(pick_device(settings.device)) as (info, device):
        return _train_and_report(settings, args.resume if resume else args.out, info, device, resume, args.overwrite)


def _train_and_report(
    settings: RunSettings, out: str | None, info: ProcessInfo, device: torch.device, resume: bool, overwrite: bool
) -> int:
    """Train the run of ``settings`` into ``out`` (:func:`made.pipeline.train_settings`) and, in the main
    process, print what it trains and its test NLL."""

    def announce(data: RunData, model: RunModel) -> None:
        splits = data.splits
        processes = f" in {info.world_size} processes" if info.world_size > 1 else ""
        print(
            f"{'resuming' if resume else 'training'} on {splits.name}: D={splits.num_inputs} "
            f"({model.family.name}), "
            f"{len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test; "
            f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}{processes}"
        )

    metrics, folder = train_settings(settings, out, info, device, resume, overwrite, on_start=announce)
    if metrics is None:  # another process of a distributed run: the main one saves and reports
        return 0
    print(
        f"test NLL {metrics['test_nll']:.3f} ± {metrics['test_nll_stderr']:.3f} nats "
        f"({metrics['test_bits_per_dim']:.4f} bits/dim), valid NLL {metrics['valid_nll']:.3f}; "
        f"{metrics['epochs']} epochs (best {metrics['best_epoch']}) in {metrics['seconds']:.1f} s"
    )
    print(f"run folder: {folder}")
    return 0
