r"""The run folder: the one module that knows its layout, and every operation that reads, writes, swaps
or clears one. No other module spells a name below; they import it from here.

::

    RUN/
    ├── args.json            the options of 'made train' (written first; read by --resume)
    ├── config.json          model settings and masks, then the data, eval, schema, context and image_shape
    │                        sections (a mixture: a 'mixture' section instead of the model's)
    ├── model.safetensors    the weights (a single model's run)
    ├── log.jsonl            one JSON line per epoch
    ├── metrics.json         test and valid NLL ... (written last: a run that has it has finished)
    ├── checkpoint/          the training checkpoint, for --resume (made.io.training_state)
    │   ├── state.json       where training stands, naming the two files below with their SHA-256
    │   ├── state-EPOCH.safetensors   weights, optimizer and RNG states (EPOCH: six digits or more)
    │   └── best-EPOCH.safetensors    the best weights so far
    ├── members/0, 1, ...    a mixture's members, each a folder with config.json and model.safetensors
    ├── study.db             made tune's Optuna study (unless --storage)
    ├── trials/0, 1, ...     made tune's trials, each a 'made train' run folder
    ├── samples.png | .npy   made sample's default output
    ├── imputed.npy          made impute's default output
    └── masks.png            made masks' default picture

A run folder is *unfinished* while it has args.json and no config.json, *finished* once metrics.json
is there; anything else is resumable from its checkpoint. Reading follows no symbolic link and
deleting removes only the names above, so a hostile folder cannot make made touch files outside it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import torch

from .. import __version__
from ..data.columns import check_fitted_schema
from ..data.context import CONTEXT_SPEC
from ..model.made import MADE
from ..model.mixture import MAX_MEMBERS, MIXTURE_HINTS, Mixture
from ..model.settings import MAX_ENSEMBLE, MAX_SEED
from .atomic import CheckpointError, check_no_links, read_json, write_json
from .checkpoint import FORMAT_VERSION, read_model, write_model
from .schema import SchemaError, check_fields

__all__ = [
    "ARGS_FILE",
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "LOG_FILE",
    "METRICS_FILE",
    "CHECKPOINT_DIR",
    "STATE_FILE",
    "MEMBERS_DIR",
    "STUDY_FILE",
    "TRIALS_DIR",
    "SAMPLES_IMAGE",
    "SAMPLES_ARRAY",
    "IMPUTED_FILE",
    "MASKS_PICTURE",
    "CHECKPOINT_FILE",
    "CHECKPOINT_TEMPORARY",
    "checkpoint_file",
    "samples_file",
    "trial_folder",
    "save_model",
    "load_model",
    "save_mixture",
    "load_mixture",
    "is_mixture",
    "load_run_model",
    "load_run",
    "write_args",
    "read_args",
    "started_by_train",
    "holds_run",
    "is_finished",
    "check_resumable",
    "new_run_folder",
    "write_metrics",
    "read_metrics",
    "clear_result",
    "copy_run",
]

ARGS_FILE, CONFIG_FILE, WEIGHTS_FILE = "args.json", "config.json", "model.safetensors"
LOG_FILE, METRICS_FILE = "log.jsonl", "metrics.json"
CHECKPOINT_DIR, STATE_FILE = "checkpoint", "state.json"
MEMBERS_DIR, STUDY_FILE, TRIALS_DIR = "members", "study.db", "trials"
SAMPLES_IMAGE, SAMPLES_ARRAY, IMPUTED_FILE, MASKS_PICTURE = "samples.png", "samples.npy", "imputed.npy", "masks.png"
# checkpoint/'s tensor files, and the temporary files of their interrupted writes (made.io.atomic's names)
CHECKPOINT_FILE = re.compile(r"(state|best)-\d{6,}\.safetensors")
CHECKPOINT_TEMPORARY = re.compile(
    rf"\.{re.escape(STATE_FILE)}\.[a-z0-9_]{{8}}\.tmp\.json|\.(state|best)-\d{{6,}}\.safetensors\.[a-z0-9_]{{8}}"
    r"\.tmp\.safetensors"
)
RESULT_FILES = (CONFIG_FILE, WEIGHTS_FILE, METRICS_FILE, LOG_FILE)  # what a finished run (or tune) adds
# The sections 'made train' adds to config.json, checked before 'eval' and 'sample' use them.
RUN_SECTIONS: dict[str, dict[str, Any]] = {
    "data": {
        "dataset": str | None,
        "path": str | None,
        "data_dir": str | None,
        "split_seed": int,
        "header": bool | None,
        "precision": Literal["file"],
    },
    "eval": {"ensemble": int | None, "batch_size": int, "dtype": Literal["float32", "float64"]},
}
RUN_RANGES = {
    "data": {"split_seed": lambda v: 0 <= v <= MAX_SEED},
    "eval": {"ensemble": lambda v: v is None or 1 <= v <= MAX_ENSEMBLE, "batch_size": lambda v: v >= 1},
}


def checkpoint_file(kind: Literal["state", "best"], epoch: int) -> str:
    """The name of a checkpoint's tensor file in checkpoint/: ``state-000012.safetensors``."""
    return f"{kind}-{epoch:06d}.safetensors"


def samples_file(run_dir: str | Path, image: bool) -> Path:
    """Where ``made sample`` writes by default: a PNG grid for image data, else an array."""
    return Path(run_dir) / (SAMPLES_IMAGE if image else SAMPLES_ARRAY)


def trial_folder(out: str | Path, number: int) -> Path:
    """The run folder of ``made tune``'s trial ``number``."""
    return Path(out) / TRIALS_DIR / str(number)


# ------------------------------------------------------------------ models
def save_model(run_dir: str | Path, model: MADE, extra: dict | None = None) -> None:
    """Write ``model.safetensors`` and ``config.json`` (model config, mask state, then ``extra``)."""
    run_dir = Path(run_dir)
    write_model(run_dir / WEIGHTS_FILE, run_dir / CONFIG_FILE, model, extra)


def load_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[MADE, dict]:
    """Rebuild the model of a single model's run folder (of this made or 0.2) and return it with its config,
    every file checked (:func:`made.io.checkpoint.read_model`) and no link followed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"{run_dir}: not a run folder (no such directory)")
    if not (run_dir / CONFIG_FILE).exists():
        raise CheckpointError(f"{run_dir}: not a run folder (no {CONFIG_FILE})")
    check_no_links(run_dir)
    model, config = read_model(run_dir / CONFIG_FILE, run_dir / WEIGHTS_FILE)
    return model.to(device), config


def save_mixture(run_dir: str | Path, mixture: Mixture, extra: dict | None = None) -> None:
    """Write the members into ``members/I`` and then ``config.json`` (the ``mixture`` section, ``extra`` added)."""
    run_dir = Path(run_dir)
    for i, member in enumerate(mixture.member_models):
        save_model(run_dir / MEMBERS_DIR / str(i), member)
    config = {
        "format_version": FORMAT_VERSION,
        "made_version": __version__,
        "mixture": mixture.settings(),
        **(extra or {}),
    }
    write_json(run_dir / CONFIG_FILE, config)


def load_mixture(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[Mixture, dict]:
    """Rebuild the mixture of a mixture run folder; every member is checked by :func:`load_model`."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / CONFIG_FILE)
    where = f"{run_dir / CONFIG_FILE}: mixture"
    try:
        check_fields(
            config.get("mixture"),
            MIXTURE_HINTS,
            where,
            ranges={
                "weights": lambda v: 1 <= len(v) <= MAX_MEMBERS,
                "ensembles": lambda v: all(k is None or k >= 1 for k in v),
            },
        )
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    section = config["mixture"]
    members = [load_model(run_dir / MEMBERS_DIR / str(i), device)[0] for i in range(len(section["weights"]))]
    try:
        mixture = Mixture(members, section["weights"], section["ensembles"])
    except ValueError as err:
        raise CheckpointError(f"{where}: {err}") from None
    return mixture.to(device), config


def is_mixture(run_dir: str | Path) -> bool:
    """Whether ``run_dir`` holds a mixture (its ``config.json`` has a ``mixture`` section); no weights are read."""
    config_path = Path(run_dir) / CONFIG_FILE
    return config_path.is_file() and "mixture" in read_json(config_path)


def load_run_model(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[MADE | Mixture, dict]:
    """The model of any run folder: a :class:`Mixture` where :func:`is_mixture`, else the single model
    :func:`load_model` reads."""
    return load_mixture(run_dir, device) if is_mixture(run_dir) else load_model(run_dir, device)


def load_run(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[MADE | Mixture, dict]:
    """The model and config of a run folder, with the sections ``made train`` adds checked too
    (and a one-line hint for a run whose training did not finish)."""
    run = Path(run_dir)
    if (run / ARGS_FILE).is_file() and not (run / CONFIG_FILE).exists():
        raise CheckpointError(
            f"{run}: training did not finish (no {CONFIG_FILE}); continue it with made train --resume {run}"
        )
    model, config = load_run_model(run, device)
    try:
        _check_run_sections(config, model, run / CONFIG_FILE)
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    return model, config


def _check_run_sections(config: dict, model: MADE | Mixture, source: Path) -> None:
    """The data, eval, schema, context and image_shape sections of a config, checked against the model."""
    for section, hints in RUN_SECTIONS.items():
        if section in config:  # header and precision: not in runs of made 0.2
            check_fields(
                config[section],
                hints,
                f"{source}: {section}",
                ranges=RUN_RANGES[section],
                optional=("header", "precision"),
            )
    if config.get("schema") is not None:
        check_fitted_schema(config["schema"], model.family, f"{source}: schema")
    if config.get("context") is not None:
        check_fields(config["context"], CONTEXT_SPEC, f"{source}: context", ranges={"classes": lambda v: v >= 1})
        if config["context"]["classes"] != model.context_size:
            raise SchemaError(
                f"{source}: context has {config['context']['classes']} "
                f"classes, the model takes {model.context_size} context inputs"
            )
    elif model.context_size:
        raise SchemaError(f"{source}: the model takes a context but the config has none")
    shape = config.get("image_shape")
    if shape is not None and not (
        isinstance(shape, list) and len(shape) == 2 and all(type(v) is int and v > 0 for v in shape)
    ):
        raise SchemaError(f"{source}: image_shape must be two positive integers or null")


# ------------------------------------------------------------------ training runs
def write_args(run_dir: str | Path, options: dict) -> None:
    """Record the options of 'made train' (as :meth:`made.config.RunSettings.to_json` gives them) for --resume."""
    write_json(Path(run_dir) / ARGS_FILE, {"format_version": FORMAT_VERSION, "command": "train", "options": options})


def read_args(run_dir: str | Path) -> tuple[dict, str]:
    """The options recorded by :func:`write_args`, the record checked, and where they come from (for messages)."""
    source = Path(run_dir) / ARGS_FILE
    record = read_json(source)
    try:
        check_fields(record, {"format_version": int, "command": Literal["train"], "options": dict}, str(source))
    except SchemaError as err:
        raise CheckpointError(str(err)) from None
    if record["format_version"] != FORMAT_VERSION:
        raise CheckpointError(f"{source}: unknown format_version {record['format_version']}")
    return record["options"], f"{source}: options"


def started_by_train(run_dir: str | Path) -> bool:
    """Whether ``made train`` started a run in ``run_dir`` (it holds the options of one)."""
    return (Path(run_dir) / ARGS_FILE).exists()


def holds_run(run_dir: str | Path) -> bool:
    """Whether a run (finished or not) was started in ``run_dir``."""
    return started_by_train(run_dir) or (Path(run_dir) / CONFIG_FILE).exists()


def is_finished(run_dir: str | Path) -> bool:
    """Whether the run in ``run_dir`` has finished (its metrics are written)."""
    return (Path(run_dir) / METRICS_FILE).exists()


def check_resumable(run_dir: str | Path) -> None:
    """Refuse to resume what is no folder, a finished run, or a folder with a symbolic link inside."""
    run = Path(run_dir)
    if not run.is_dir():
        raise CheckpointError(f"{run}: not a run folder (no such directory)")
    if is_finished(run):
        raise ValueError(f"{run} has finished already (see {run / METRICS_FILE}); nothing to resume")
    check_no_links(run)


@contextlib.contextmanager
def new_run_folder(out: str | Path, options: dict, overwrite: bool) -> Iterator[Path]:
    """The folder a new run trains into, holding its ``args.json``: ``out`` itself, or, to replace
    a run already there (only with ``overwrite``), a sibling temporary folder swapped in once the
    new run is complete, so a failed or killed new run leaves the old one whole."""
    out = Path(out)
    replacing = holds_run(out)
    if replacing and not overwrite:
        raise ValueError(
            f"{out} already holds a run; continue it with --resume {out}, choose another --out or pass --overwrite"
        )
    if out.is_dir() and not replacing:  # a run replaced is only renamed and deleted, which follows no link
        check_no_links(out)
        for name in (LOG_FILE, WEIGHTS_FILE, METRICS_FILE):
            if (out / name).exists() and not (out / name).is_file():
                raise ValueError(
                    f"{out / name}: not a regular file, where made train writes its {name}; "
                    "remove it or choose another --out"
                )
    work = out.parent / f".made-new-{uuid.uuid4().hex[:12]}" if replacing else out
    work.mkdir(parents=True, exist_ok=not replacing)
    try:
        write_args(work, options)
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


def write_metrics(run_dir: str | Path, metrics: dict) -> None:
    """Write a run's metrics, the last file of a finished run."""
    write_json(Path(run_dir) / METRICS_FILE, metrics)


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The metrics of a finished run."""
    return read_json(Path(run_dir) / METRICS_FILE)


# ------------------------------------------------------------------ results moved between folders (made tune)
def clear_result(run_dir: str | Path) -> None:
    """Remove the result of a run (a single model's files or a mixture's members), config.json first so
    the folder is never taken for a run half removed; only these names, never through a symbolic link."""
    run = Path(run_dir)
    check_no_links(run)
    for name in RESULT_FILES:
        (run / name).unlink(missing_ok=True)
    if (run / MEMBERS_DIR).is_dir():
        shutil.rmtree(run / MEMBERS_DIR)


def copy_run(source: str | Path, dest: str | Path) -> None:
    """Copy a finished single model's run (weights, log, config: the config last, as a folder without
    it is no run) into ``dest``; its metrics are the caller's to write."""
    source, dest = Path(source), Path(dest)
    check_no_links(source)
    for name in (WEIGHTS_FILE, LOG_FILE, CONFIG_FILE):
        shutil.copyfile(source / name, dest / name)
