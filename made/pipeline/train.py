"""Train a run folder: build the model for the data, fit it with checkpoints, save it and score it
(:func:`train_run`), from ``made train``'s settings in a new, swapped-in or resumed folder (:func:`train_settings`)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import torch

from ..config import RunSettings
from ..data.columns import family_config, in_original_units
from ..data.context import context_size
from ..data.fields import SchemaError
from ..families import DEFAULT_MIN_SCALE
from ..inference.evaluate import evaluate_nll
from ..io.atomic import CheckpointError
from ..io.run import (
    CHECKPOINT_DIR,
    LOG_FILE,
    check_resumable,
    named_folder,
    new_run_folder,
    read_args,
    save_model,
    write_metrics,
)
from ..model import MADE
from ..training.distributed import ProcessInfo, init_from_env, shutdown
from ..training.loop import TrainConfig, fit
from ..training.memory import check_memory
from .reading import RunData, context_tensor, data_spec, nll_units, read_data, to_tensor

__all__ = [
    "ProcessInfo",
    "build_model",
    "train_run",
    "settings_data",
    "train_settings",
    "resumed_settings",
    "processes",
]


def build_model(
    data: RunData,
    dtype: str = "float32",
    device: str | torch.device = "cpu",
    min_scale: float = DEFAULT_MIN_SCALE,
    **options,
) -> MADE:
    """A MADE for ``data`` with the keyword ``options`` of :class:`MADE` (hidden_sizes, num_masks, seed ...),
    refused in one line when training it would not fit in memory; ``seed`` also seeds torch."""
    settings = {
        "num_inputs": data.splits.num_inputs,
        **options,
        "family": family_config(data.schema, min_scale),
        "context_size": context_size(data.context),
    }
    check_memory(settings, getattr(torch, dtype))
    torch.manual_seed(options.get("seed", 0))
    return MADE(**settings).to(device=device, dtype=getattr(torch, dtype))


def train_run(
    out: str | Path,
    data: RunData,
    model: MADE,
    config: TrainConfig,
    test_ensemble: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
    on_epoch: Callable[[dict], None] | None = None,
    is_main: bool = True,
) -> dict | None:
    """Fit ``model`` on ``data`` with a log and checkpoints in the run folder ``out`` (continuing from
    them with ``resume``), save it there with its config, and score it on valid and test with
    ``test_ensemble`` masks (default: the pool); returns the metrics also written to metrics.json
    (None in the other processes of a distributed run, which only train)."""
    out = Path(out)
    if is_main:
        out.mkdir(parents=True, exist_ok=True)
    test_k = test_ensemble or _default_ensemble(model, 1000)
    history = fit(
        model,
        to_tensor(data.splits.train),
        to_tensor(data.splits.valid),
        config,
        out / LOG_FILE,
        progress=progress,
        on_epoch=on_epoch,
        checkpoint_dir=out / CHECKPOINT_DIR,
        resume=resume,
        train_context=context_tensor(data.context, data.raw, "train"),
        valid_context=context_tensor(data.context, data.raw, "valid"),
    )
    if not is_main:
        return None
    evaluating = time.perf_counter()
    model.set_mask(0)
    dtype = str(model.output.weight.dtype).removeprefix("torch.")
    eval_spec = {"ensemble": test_k, "batch_size": config.eval_batch_size, "dtype": dtype}
    save_model(
        out,
        model,
        {
            "data": data.spec,
            "train": asdict(config),
            "eval": eval_spec,
            "image_shape": data.splits.image_shape,
            "schema": data.schema,
            "context": data.context,
        },
    )
    test, valid = (
        in_original_units(
            evaluate_nll(
                model,
                to_tensor(data.splits.split(s)),
                config.eval_batch_size,
                test_k,
                context_tensor(data.context, data.raw, s),
            ),
            data.schema,
        )
        for s in ("test", "valid")
    )
    metrics = {
        "test_nll": test.nll,
        "test_nll_stderr": test.stderr,
        "test_bits_per_dim": test.bits_per_dim,
        "valid_nll": valid.nll,
        "valid_nll_stderr": valid.stderr,
        "ensemble": test_k,
        "epochs": history.epochs,
        "best_epoch": history.best_epoch,
        "seconds": history.seconds,
        "seconds_per_epoch": history.seconds / max(history.epochs, 1),
        "dataset": data.splits.name,
        "eval_seconds": time.perf_counter() - evaluating,
        **nll_units(data.schema),
    }
    write_metrics(out, metrics)
    return metrics


def _default_ensemble(model: MADE, unlimited: int) -> int | None:
    """Masks the test figure averages by default: the pool, ``unlimited`` for a fresh mask each time, none for one."""
    if model.num_masks == 1:
        return None
    return unlimited if model.num_masks == "unlimited" else model.num_masks


def settings_data(settings: RunSettings) -> RunData:
    """The data of a ``made train`` run, read and modelled as its settings say."""
    data, columns = settings.data, settings.columns
    split_seed = 0 if data.split_seed is None else data.split_seed  # None ("the run's") in a new run: the default
    spec = data_spec(data.dataset, data.data, data.data_dir, split_seed, data.header)
    return read_data(spec, columns.schema, columns.max_categories, columns.components, columns.context, settings.dtype)


def train_settings(
    settings: RunSettings,
    out: str | Path | None,
    info: ProcessInfo,
    device: torch.device,
    resume: bool = False,
    overwrite: bool = False,
    on_epoch: Callable[[dict], None] | None = None,
    on_start: Callable[[RunData, MADE], None] | None = None,
) -> tuple[dict | None, Path]:
    """Train the run of ``settings`` into ``out`` (default ``runs/NAME-DATE-TIME``), continuing it with
    ``resume``, replacing a run there only with ``overwrite`` (swapped in once complete); ``on_start``
    sees the data and model before training, ``on_epoch`` each epoch's record. Returns the metrics
    (None outside the main process of a distributed run) and the run folder."""
    data = settings_data(settings)
    folder = named_folder(out) if out is not None else Path(f"runs/{data.splits.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    model = build_model(data, settings.dtype, device, settings.columns.min_scale, **settings.model)
    new = info.is_main and not resume
    with new_run_folder(folder, settings.to_json(), overwrite) if new else contextlib.nullcontext(folder) as work:
        if info.is_main and on_start is not None:
            on_start(data, model)
        metrics = train_run(
            work,
            data,
            model,
            settings.train_config(),
            settings.test_ensemble,
            resume,
            progress=False if settings.quiet else None,
            on_epoch=on_epoch,
            is_main=info.is_main,
        )
    return metrics, folder


def resumed_settings(run_dir: str | Path, changes: dict | None = None) -> RunSettings:
    """The settings an interrupted run was started with, checked as a command line is, with ``changes``
    (those that may change on resume: device, quiet, checkpoint_every); refuses a finished run."""
    check_resumable(run_dir)
    options, where = read_args(run_dir)
    try:
        stored = RunSettings.from_json(options, where)
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    return stored.replace(**(changes or {}))


@contextlib.contextmanager
def processes(device: torch.device) -> Iterator[tuple[ProcessInfo, torch.device]]:
    """This process's place in a distributed launch (one process without torchrun) and the device it
    trains on, from ``device``; the process group is shut down on leaving."""
    info, device = init_from_env(device)
    try:
        yield info, device
    finally:
        shutdown()
