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
from typing import Any, Literal

import torch

from ..config import DataSettings, RunSettings, add_options, flag_of, option_names, resumable
from ..io.atomic import CheckpointError, check_no_links, read_json, write_json
from ..io.checkpoint import CONFIG_FILE, FORMAT_VERSION, METRICS_FILE, WEIGHTS_FILE
from ..io.schema import SchemaError, check_fields
from ..pipeline import LOG_FILE, build_model, data_spec, read_data, train_run
from ..training.distributed import ProcessInfo, init_from_env, shutdown
from .common import ARGS_FILE, pick_device


def add_parser(subparsers: Any, suppress: bool = False) -> argparse.ArgumentParser:
    """Add ``made train`` and its options to the command line (the ``subparsers`` of a ``made`` parser);
    returns its parser. With ``suppress``, options not given stay out of the parsed namespace."""
    train = subparsers.add_parser("train", help="train a MADE and write a run folder", description="Train a MADE "
                                  "with early stopping on validation NLL; writes config.json, model.safetensors, "
                                  "metrics.json and log.jsonl into the run folder, with args.json and checkpoint/ "
                                  "so that an interrupted run continues with --resume. Under torchrun, each process "
                                  "trains on its share of every minibatch.")
    add_options(train, DataSettings, suppress=suppress)
    unset = {"default": argparse.SUPPRESS} if suppress else {}
    train.add_argument("--out", metavar="RUN_DIR", help="run folder (default: runs/NAME-DATE-TIME)", **unset)
    train.add_argument("--overwrite", action="store_true", help="replace a run already in RUN_DIR", **unset)
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint, "
                       "with the settings it was started with (only --device, --quiet and --checkpoint-every may be "
                       "given)", **unset)
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
    """The settings of the run in ``args.resume``, checked like a command line, with the few
    that may change on resume (``--device``, ``--quiet`` ...) taken from this one."""
    run = Path(args.resume)
    if not run.is_dir():
        raise CheckpointError(f"{run}: not a run folder (no such directory)")
    given = given_options(args.argv) - {"resume"}
    if given - resumable():
        flags = ", ".join(sorted(flag_of(name) for name in given - resumable()))
        raise ValueError(f"--resume takes every setting from {run / ARGS_FILE}; drop {flags}")
    if (run / METRICS_FILE).exists():
        raise ValueError(f"{run} has finished already (see {run / METRICS_FILE}); nothing to resume")
    check_no_links(run)
    record = read_json(run / ARGS_FILE)
    try:
        check_fields(record, {"format_version": int, "command": Literal["train"], "options": dict},
                     str(run / ARGS_FILE))
        if record["format_version"] != FORMAT_VERSION:
            raise SchemaError(f"{run / ARGS_FILE}: unknown format_version {record['format_version']}")
        stored = RunSettings.from_json(record["options"], f"{run / ARGS_FILE}: options")
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    return stored.replace(**{name: getattr(args, name) for name in given})


@contextlib.contextmanager
def _run_folder(out: Path, settings: RunSettings, overwrite: bool) -> Iterator[Path]:
    """The folder a new run trains into, holding its ``args.json``: ``out`` itself, or, to replace
    a run already there (only with ``overwrite``), a sibling temporary folder swapped in once the
    new run is complete, so a failed or killed new run leaves the old one whole."""
    replacing = (out / ARGS_FILE).exists() or (out / CONFIG_FILE).exists()
    if replacing and not overwrite:
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
                                      "options": settings.to_json()})
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
    settings = _resumed_settings(args) if args.resume else RunSettings.from_args(args)
    info, device = init_from_env(pick_device(settings.device))
    try:
        return train_settings(settings, args.resume or args.out, info, device, resume=bool(args.resume),
                              overwrite=args.overwrite)
    finally:
        shutdown()


def run_training(args: argparse.Namespace, info: ProcessInfo, device: torch.device,
                 on_epoch: Callable[[dict], None] | None = None) -> int:
    """Train the new run that a parsed ``made train`` command line describes (``made tune``'s trials);
    ``on_epoch`` sees each epoch's record (``made tune`` prunes there)."""
    return train_settings(RunSettings.from_args(args), args.out, info, device, overwrite=args.overwrite,
                          on_epoch=on_epoch)


def train_settings(settings: RunSettings, out: str | None, info: ProcessInfo, device: torch.device,
                   resume: bool = False, overwrite: bool = False,
                   on_epoch: Callable[[dict], None] | None = None) -> int:
    """Train the run of ``settings`` into ``out`` (continuing it with ``resume``) and, in the main
    process, save it with its metrics; ``on_epoch`` sees each epoch's record."""
    data_set, model_set = settings.data, settings.model
    data = read_data(data_spec(data_set.dataset, data_set.data, data_set.data_dir, data_set.split_seed,
                               data_set.header),
                     model_set.schema, model_set.max_categories, model_set.components, model_set.context,
                     settings.dtype)
    splits = data.splits
    folder_path = Path(out or f"runs/{splits.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    model = build_model(data, settings.dtype, device, model_set.min_scale, **model_set.made_kwargs())
    folder = (_run_folder(folder_path, settings, overwrite) if info.is_main and not resume
              else contextlib.nullcontext(folder_path))
    with folder as work:
        if info.is_main:
            processes = f" in {info.world_size} processes" if info.world_size > 1 else ""
            print(f"{'resuming' if resume else 'training'} on {splits.name}: D={splits.num_inputs} "
                  f"({model.family.name}), "
                  f"{len(splits.train)} train / {len(splits.valid)} valid / {len(splits.test)} test; "
                  f"{sum(p.numel() for p in model.parameters()):,} parameters on {device}{processes}")
        metrics = train_run(work, data, model, settings.train_config(), settings.train.test_ensemble, resume,
                            progress=False if settings.quiet else None, on_epoch=on_epoch, is_main=info.is_main)
    if metrics is None:  # another process of a distributed run: the main one saves and reports
        return 0
    print(f"test NLL {metrics['test_nll']:.3f} ± {metrics['test_nll_stderr']:.3f} nats "
          f"({metrics['test_bits_per_dim']:.4f} bits/dim), valid NLL {metrics['valid_nll']:.3f}; "
          f"{metrics['epochs']} epochs (best {metrics['best_epoch']}) in {metrics['seconds']:.1f} s")
    print(f"run folder: {folder_path}")
    return 0
