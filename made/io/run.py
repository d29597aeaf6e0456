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
A command claims its folder before its first write (:func:`claim_folder`): files made did not write are
refused unless --overwrite, and never deleted; a run replaced is moved aside before the new one comes in.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch

from .. import __version__
from ..data.columns import check_fitted_schema
from ..data.context import CONTEXT_SPEC
from ..data.fields import SchemaError, check_fields
from ..model.config import MAX_ENSEMBLE, MAX_SEED
from ..model.made import MADE
from ..model.mixture import MAX_MEMBERS, MIXTURE_HINTS, Mixture
from .atomic import CheckpointError, check_no_links, read_json, write_json
from .checkpoint import FORMAT_VERSION, read_model, write_model

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
    "is_finished",
    "check_resumable",
    "new_run_folder",
    "write_metrics",
    "read_metrics",
    "run_writer",
    "foreign_files",
    "Claim",
    "claim_folder",
    "swap_in",
    "built_beside",
    "named_folder",
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


def is_finished(run_dir: str | Path) -> bool:
    """Whether the run in ``run_dir`` has finished (its metrics are written)."""
    return (Path(run_dir) / METRICS_FILE).exists()


def check_resumable(run_dir: str | Path) -> None:
    """Refuse to resume what is no folder, a finished run, or a folder with a symbolic link inside."""
    run = named_folder(run_dir, "--resume")
    if not run.is_dir():
        raise CheckpointError(f"{run}: not a run folder (no such directory)")
    if is_finished(run):
        raise ValueError(f"{run} has finished already (see {run / METRICS_FILE}); nothing to resume")
    check_no_links(run)


# ------------------------------------------------------------------ which files a run owns
def named_folder(folder: str | Path, flag: str = "--out") -> Path:
    """``folder`` as a path, refused when its name is empty: ``Path("")`` is the current folder, which no
    command may write into (or resume) unless it is named."""
    if not str(folder).strip():
        raise ValueError(f"{flag} is empty; name the run folder")
    return Path(folder)


MADE_OUTPUTS = (SAMPLES_IMAGE, SAMPLES_ARRAY, IMPUTED_FILE, MASKS_PICTURE)  # other commands' files from a run
STUDY_FILES = re.compile(rf"{re.escape(STUDY_FILE)}(-journal|-wal|-shm)?")  # the study and sqlite's companions
# made.io.atomic's temporary files, left by a write that was killed: ".NAME.XXXXXXXX.tmp.EXT"
TEMPORARY = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?")
TRAIN_FILES = (ARGS_FILE, CONFIG_FILE, WEIGHTS_FILE, LOG_FILE, METRICS_FILE)
MEMBER_FILES = (CONFIG_FILE, WEIGHTS_FILE)
TUNE_RESULT_FILES = (CONFIG_FILE, WEIGHTS_FILE, LOG_FILE, METRICS_FILE)


def _is_file_of(name: str, files: tuple[str, ...]) -> bool:
    """Whether ``name`` is one of ``files`` or the temporary file of an interrupted write of one."""
    match = TEMPORARY.fullmatch(name)
    return name in files or (match is not None and match["name"] in files)


def _numbered(name: str) -> bool:
    return name.isascii() and name.isdigit()


def _train_owns(parts: tuple[str, ...]) -> bool:
    """Whether ``parts`` (a path inside a folder) is a name of a 'made train' run."""
    if len(parts) == 1:
        return parts[0] == CHECKPOINT_DIR or _is_file_of(parts[0], TRAIN_FILES)
    return (
        len(parts) == 2
        and parts[0] == CHECKPOINT_DIR
        and (
            parts[1] == STATE_FILE
            or CHECKPOINT_FILE.fullmatch(parts[1]) is not None
            or CHECKPOINT_TEMPORARY.fullmatch(parts[1]) is not None
        )
    )


def _member_owns(parts: tuple[str, ...]) -> bool:
    """Whether ``parts`` is a name of a mixture's members/: members/N/config.json and its weights."""
    if len(parts) == 1 or (len(parts) == 2 and _numbered(parts[1])):
        return True
    return len(parts) == 3 and _numbered(parts[1]) and _is_file_of(parts[2], MEMBER_FILES)


def _owned(parts: tuple[str, ...], writer: str) -> bool:
    """Whether ``parts`` (a path inside a run folder) is a name of the layout above that ``writer`` (the
    command that wrote the run) writes."""
    head = parts[0]
    if writer == "train":
        return _train_owns(parts)
    if head == MEMBERS_DIR:
        return _member_owns(parts)
    if writer == "mix":
        return len(parts) == 1 and _is_file_of(head, (CONFIG_FILE, METRICS_FILE))
    if head == TRIALS_DIR:  # a tune's
        return len(parts) == 1 or (_numbered(parts[1]) and (len(parts) == 2 or _train_owns(parts[2:])))
    return len(parts) == 1 and (STUDY_FILES.fullmatch(head) is not None or _is_file_of(head, TUNE_RESULT_FILES))


def run_writer(folder: str | Path) -> str | None:
    """The command that wrote the run in ``folder`` ('train', 'mix' or 'tune'), None where it holds no run."""
    folder = Path(folder)
    if (folder / STUDY_FILE).exists() or (folder / TRIALS_DIR).is_dir():
        return "tune"
    if started_by_train(folder):
        return "train"
    if (folder / CONFIG_FILE).is_file():
        try:
            return "mix" if is_mixture(folder) else "train"
        except CheckpointError:
            return "train"
    return None


def foreign_files(folder: str | Path) -> list[str]:
    """The paths inside ``folder`` (relative, sorted) that made did not write: all of them where it holds
    no run, else those outside the layout of the command that wrote it (a folder outside the layout is
    listed, not its content). Other commands' outputs (samples.png ...) are made's, never foreign."""
    folder = Path(folder)
    writer = run_writer(folder)
    found = []
    for root, dirs, files in os.walk(folder):
        inside = Path(root).relative_to(folder).parts
        for name in sorted(dirs + files):
            parts = (*inside, name)
            if writer is None or not (_owned(parts, writer) or (len(parts) == 1 and name in MADE_OUTPUTS)):
                found.append("/".join(parts))
                if name in dirs:
                    dirs.remove(name)
    return sorted(found)


@dataclass(frozen=True)
class Claim:
    """A run folder a command may write: ``replaces`` is the run there (its writer) that it replaces, or
    None; ``keep`` the layout names it keeps in place (a tune continued keeps its study and trials)."""

    out: Path
    command: str
    replaces: str | None
    keep: tuple[str, ...]


def claim_folder(out: str | Path, command: str, overwrite: bool) -> Claim:
    """Check, before anything is written, that ``command`` may write its run into ``out``: refuse an empty
    name, a folder with a symbolic link inside, a run of another command or one already there (but a tune
    continues its own) unless ``overwrite``, and files made did not write unless ``overwrite``; even then
    refuse those in the way of what the command writes or replaces, as none of them is ever deleted."""
    path = named_folder(out)
    if path.is_symlink() and not path.exists():
        raise ValueError(f"--out {out}: a symbolic link to nothing; choose another --out")
    if not path.exists():
        return Claim(path, command, None, ())
    if not path.is_dir():
        raise ValueError(f"--out {out}: not a folder; choose another --out")
    check_no_links(path)
    writer = run_writer(path)
    continues = command == "tune" and writer == "tune"
    if writer is not None and not continues and not overwrite:
        what = f"holds a run of made {writer}"
        if writer == command:
            what = "already holds a mixture" if command == "mix" else "already holds a run"
        hint = f"continue it with --resume {out}, " if writer == "train" == command else ""
        raise ValueError(f"{out} {what}; {hint}choose another --out, or pass --overwrite to replace it")
    foreign = foreign_files(path)
    if foreign and not overwrite:
        raise ValueError(
            f"{path / foreign[0]}: {out} holds files made did not write; choose another --out, or pass "
            "--overwrite to write beside them (made deletes no file it did not write)"
        )
    keep = (TRIALS_DIR, *(n for n in os.listdir(path) if STUDY_FILES.fullmatch(n))) if continues else ()
    in_the_way = _written_names(command) | _replaced_names(path, (writer,), keep)
    for name in foreign:
        if name.split("/")[0] in in_the_way:
            raise ValueError(
                f"{path / name}: made did not write this, and made {command} writes or replaces "
                f"{name.split('/')[0]} there; move it away or choose another --out"
            )
    return Claim(path, command, None if continues else writer, keep)


def _written_names(command: str) -> set[str]:
    """The top-level names of a run folder that ``command`` writes (a tune's trials/ aside: it only adds
    new trial folders there)."""
    if command == "train":
        return {*TRAIN_FILES, CHECKPOINT_DIR}
    result = {CONFIG_FILE, METRICS_FILE, MEMBERS_DIR}
    return result | {WEIGHTS_FILE, LOG_FILE, STUDY_FILE} if command == "tune" else result


def _replaced_names(folder: Path, writers: tuple[str | None, ...], keep: tuple[str, ...]) -> set[str]:
    """The top-level names of ``folder`` that a new run replaces: those of the run there (written by one of
    ``writers``) and what other commands made of it (samples.png ...), but ``keep``."""
    return {
        name
        for name in os.listdir(folder)
        if name not in keep and any(w is not None and (_owned((name,), w) or name in MADE_OUTPUTS) for w in writers)
    }


def swap_in(claim: Claim, work: Path) -> None:
    """Make the run built in ``work`` (a sibling folder) the run of ``claim.out``: the names of the run
    there (but ``claim.keep``) are first moved aside into a sibling folder, then ``work``'s names moved
    in, config.json and metrics.json last; only then is the folder set aside deleted. Files made did not
    write stay where they are (one in the way is refused)."""
    out = claim.out
    out.mkdir(parents=True, exist_ok=True)
    again = claim_folder(out, claim.command, overwrite=True)  # the folder may have changed since the claim
    aside = out.parent / f".made-old-{uuid.uuid4().hex[:12]}"
    aside.mkdir()
    writers = (claim.replaces, run_writer(out))  # a tune that replaces another command's run is a tune's by now
    for name in sorted(_replaced_names(out, writers, (*claim.keep, *again.keep))):
        os.rename(out / name, aside / name)
    last = (CONFIG_FILE, METRICS_FILE)
    for name in sorted(os.listdir(work), key=lambda n: last.index(n) + 1 if n in last else 0):
        os.rename(work / name, out / name)
    work.rmdir()
    shutil.rmtree(aside)


@contextlib.contextmanager
def built_beside(claim: Claim) -> Iterator[Path]:
    """A new folder beside ``claim.out`` (so that a rename moves between them) to build a run in, swapped
    in by :func:`swap_in` when the block ends, and removed if it fails: the run there stays whole."""
    claim.out.parent.mkdir(parents=True, exist_ok=True)
    work = claim.out.parent / f".made-new-{uuid.uuid4().hex[:12]}"
    work.mkdir()
    try:
        yield work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    swap_in(claim, work)


@contextlib.contextmanager
def new_run_folder(out: str | Path, options: dict, overwrite: bool) -> Iterator[Path]:
    """The folder a new run trains into, holding its ``args.json``: ``out`` itself, or, to replace
    a run already there (only with ``overwrite``), a folder beside it swapped in once the new run is
    complete (:func:`built_beside`), so a failed or killed new run leaves the old one whole."""
    claim = claim_folder(out, "train", overwrite)
    if claim.replaces is None:
        claim.out.mkdir(parents=True, exist_ok=True)
        write_args(claim.out, options)
        yield claim.out
        return
    with built_beside(claim) as work:
        write_args(work, options)
        yield work


def write_metrics(run_dir: str | Path, metrics: dict) -> None:
    """Write a run's metrics, the last file of a finished run."""
    write_json(Path(run_dir) / METRICS_FILE, metrics)


def read_metrics(run_dir: str | Path) -> dict[str, Any]:
    """The metrics of a finished run."""
    return read_json(Path(run_dir) / METRICS_FILE)


# ------------------------------------------------------------------ results moved between folders (made tune)
def copy_run(source: str | Path, dest: str | Path) -> None:
    """Copy a finished single model's run (weights, log, config: the config last, as a folder without
    it is no run) into ``dest``; its metrics are the caller's to write."""
    source, dest = Path(source), Path(dest)
    check_no_links(source)
    for name in (WEIGHTS_FILE, LOG_FILE, CONFIG_FILE):
        shutil.copyfile(source / name, dest / name)
