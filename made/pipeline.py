"""What the ``made`` commands do, as a library: train a run folder, load it, evaluate, sample and impute.

``read_data`` -> ``build_model`` -> ``train_run`` turns a data set into a run folder (its layout:
:mod:`made.io.run`) and returns its metrics; :func:`train_settings` does it from ``made train``'s
settings, in a fresh folder or one swapped in for an earlier run, or continuing an interrupted one.
:func:`load_for_inference` reads any run folder back, and :func:`evaluate_run`, :func:`sample_run` and
:func:`impute_run` do what ``made eval``, ``made sample`` and ``made impute`` do with it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from .config import RunSettings
from .data import Splits, load_data
from .data.columns import (
    DEFAULT_MAX_CATEGORIES,
    decode,
    encode_observed,
    encode_splits,
    family_config,
    in_original_units,
    log_scales,
    num_columns,
    resolve_schema,
)
from .data.context import context_from_value, context_size, make_context_spec, split_context
from .families import DEFAULT_MIN_SCALE
from .inference.evaluate import NLLResult, evaluate_nll, per_dimension_nll
from .io.atomic import CheckpointError
from .io.run import (
    CHECKPOINT_DIR,
    LOG_FILE,
    METRICS_FILE,
    check_resumable,
    load_run,
    new_run_folder,
    read_args,
    save_model,
    write_metrics,
)
from .io.schema import SchemaError
from .model import MADE
from .model.mixture import Mixture
from .training.distributed import ProcessInfo
from .training.loop import TrainConfig, fit
from .training.memory import check_memory

__all__ = [
    "RunData",
    "data_spec",
    "read_data",
    "build_model",
    "train_run",
    "settings_data",
    "train_settings",
    "resumed_settings",
    "load_for_inference",
    "run_schema",
    "all_binary",
    "Evaluation",
    "eval_spec",
    "evaluate_run",
    "sample_run",
    "Imputation",
    "impute_run",
    "complete_rows",
    "conditional_nll",
    "batches",
]


@dataclass
class RunData:
    """A run's data: how it is named (``spec``), its splits as read, the column schema, the context
    spec (None without one) and the splits encoded for the model."""

    spec: dict
    raw: Splits
    schema: list[dict]
    context: dict | None
    splits: Splits


def data_spec(
    dataset: str | None = "digits",
    path: str | Path | None = None,
    data_dir: str | Path | None = None,
    split_seed: int = 0,
    header: bool | None = None,
) -> dict:
    """The data of a run as its config.json names it: a named data set, or a file (which wins), with
    paths made absolute, the split seed of a single array and whether a .csv has a header."""
    path = str(Path(path).resolve()) if path else None
    data_dir = str(Path(data_dir).resolve()) if data_dir else None
    return {
        "dataset": None if path else dataset,
        "path": path,
        "data_dir": data_dir,
        "split_seed": split_seed,
        "header": header,
        "precision": "file",
    }


def load_splits(spec: dict, binary: bool = True) -> Splits:
    """The train/valid/test splits of a data spec (see :func:`data_spec`)."""
    return load_data(spec["dataset"], spec["path"], spec["data_dir"], spec["split_seed"], binary, spec.get("header"))


def read_data(
    spec: dict,
    schema: str | Path = "binary",
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    components: int = 1,
    context: str | None = None,
    dtype: str = "float32",
) -> RunData:
    """Read the data of ``spec`` and model its columns: ``schema`` is binary, auto, onehot or a JSON
    schema file (as ``made train --schema``); ``context`` a kind of side information ("labels")."""
    raw = load_splits(spec, binary=schema == "binary")
    columns = resolve_schema(schema, raw.train, max_categories, components)
    context_spec = make_context_spec(context, raw)
    return RunData(spec, raw, columns, context_spec, encode_splits(columns, raw, np.dtype(dtype)))


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


def settings_data(settings: RunSettings) -> RunData:
    """The data of a ``made train`` run, read and modelled as its settings say."""
    data, model = settings.data, settings.model
    assert data.split_seed is not None  # None ("the run's") is for commands that read a run; made train's is a seed
    spec = data_spec(data.dataset, data.data, data.data_dir, data.split_seed, data.header)
    return read_data(spec, model.schema, model.max_categories, model.components, model.context, settings.dtype)


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
    folder = Path(out or f"runs/{data.splits.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    model = build_model(data, settings.dtype, device, settings.model.min_scale, **settings.model.made_kwargs())
    new = info.is_main and not resume
    with new_run_folder(folder, settings.to_json(), overwrite) if new else contextlib.nullcontext(folder) as work:
        if info.is_main and on_start is not None:
            on_start(data, model)
        metrics = train_run(
            work,
            data,
            model,
            settings.train_config(),
            settings.train.test_ensemble,
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


def load_for_inference(run_dir: str | Path, device: str | torch.device = "cpu") -> tuple[MADE | Mixture, dict]:
    """The model of a run folder on ``device``, in its evaluation dtype and eval mode, with its config."""
    model, config = load_run(run_dir, device)
    model = model.to(getattr(torch, config.get("eval", {}).get("dtype", "float32")))
    model.eval()
    return model, config


def run_schema(config: dict, model: MADE | Mixture) -> list[dict]:
    """The run's column schema (all binary for runs that predate schemas)."""
    return config.get("schema") or [{"type": "binary"}] * model.num_inputs


def all_binary(schema: list[dict]) -> bool:
    """Whether every column of ``schema`` is binary (the data is then read as 0/1)."""
    return all(c["type"] == "binary" for c in schema)


def _default_ensemble(model: MADE, unlimited: int) -> int | None:
    """Masks the test figure averages by default: the pool, ``unlimited`` for a fresh mask each time, none for one."""
    if model.num_masks == 1:
        return None
    return unlimited if model.num_masks == "unlimited" else model.num_masks


def to_tensor(array: np.ndarray) -> torch.Tensor:
    """``array`` as a tensor sharing its memory where it can (made contiguous first)."""
    return torch.from_numpy(np.ascontiguousarray(array))


def context_tensor(spec: dict | None, splits: Splits, split: str) -> torch.Tensor | None:
    """The context rows of ``split`` as a tensor, or None for a run without context."""
    values = split_context(spec, splits, split)
    return None if values is None else to_tensor(values)


def nll_units(schema: list[dict]) -> dict:
    """What the NLL figures mean, for metrics: nats per example, real columns in their own units."""
    shift = float(log_scales(schema).sum())
    if not shift:
        return {}
    return {
        "nll_log_std_sum": shift,
        "nll_units": "nats per example in the data's own units (the standardized-space NLL plus nll_log_std_sum)",
    }


@dataclass
class Evaluation:
    """What :func:`evaluate_run` measured: the metrics as ``made eval --json`` prints them, the NLL, the data's
    name, ``-log p(x_d | x_<d)`` per example and dimension (with ``per_dim``), and a note on made 0.2 runs."""

    metrics: dict
    result: NLLResult
    name: str
    per_dim: np.ndarray | None = None
    note: str | None = None


def eval_spec(
    config: dict,
    run_dir: str | Path,
    spec: dict | None = None,
    split_seed: int | None = None,
    header: bool | None = None,
) -> dict:
    """The data to score: the run's own unless ``spec`` names other data, read with the run's split seed
    and (for its own file) header setting unless those are given."""
    run = config.get("data")
    if spec is None:
        if run is None:
            raise ValueError(f"{run_dir} does not name its data; pass --dataset or --data")
        spec = {**run, "precision": "file"}
    else:
        spec = dict(spec)
    if split_seed is None:
        spec["split_seed"] = run["split_seed"] if run else 0
    if header is None and run and (spec["path"], spec["dataset"]) == (run["path"], run["dataset"]):
        spec["header"] = run.get("header")
    return spec


def evaluate_run(
    model: MADE | Mixture,
    config: dict,
    spec: dict | None = None,
    split: str = "test",
    ensemble: int | None = None,
    batch_size: int | None = None,
    per_dim: bool = False,
) -> Evaluation:
    """The NLL of ``split`` of the data ``spec`` (default: the run's own, see :func:`eval_spec`) under a
    run's model, with the run's ensemble and batch size unless given, in the data's own units."""
    spec = eval_spec(config, "the run", None) if spec is None else spec
    schema = run_schema(config, model)
    raw = load_splits(spec, binary=all_binary(schema))
    if raw.num_inputs != num_columns(schema):
        raise ValueError(f"the data has {raw.num_inputs} columns, the model expects {num_columns(schema)}")
    dtype = model.output.weight.dtype
    splits = encode_splits(schema, raw, torch.empty(0, dtype=dtype).numpy().dtype)
    ensemble = ensemble if ensemble is not None else config.get("eval", {}).get("ensemble")
    batch = batch_size or config.get("eval", {}).get("batch_size", 1000)
    data, context = to_tensor(splits.split(split)), context_tensor(config.get("context"), raw, split)
    result = in_original_units(evaluate_nll(model, data, batch, ensemble, context), schema)
    metrics = {
        f"{split}_nll": result.nll,
        f"{split}_nll_stderr": result.stderr,
        f"{split}_bits_per_dim": result.bits_per_dim,
        "ensemble": ensemble,
        "num_examples": result.num_examples,
        "dataset": splits.name,
        "split": split,
        "split_seed": spec["split_seed"] if spec["path"] and raw.lines is not None else None,  # a file split here
        **nll_units(schema),
    }
    dims = per_dimension_nll(model, data, batch, context).numpy() + log_scales(schema) if per_dim else None
    return Evaluation(metrics, result, splits.name, dims, _precision_note(config.get("data"), raw))


def _precision_note(run: dict | None, raw: Splits) -> str | None:
    """For a run of made 0.2 (which read data files as float32): one line when this data holds values
    that float32 rounds, so the NLL can differ from the run's metrics."""
    if run is None or "precision" in run or run["path"] is None:
        return None
    parts = [raw.split(s) for s in ("train", "valid", "test")]
    with np.errstate(over="ignore"):
        rounded = any(p.dtype == np.float64 and not np.array_equal(p.astype(np.float32), p) for p in parts)
    if not rounded:
        return None
    return (
        "made: note: this run was trained by made 0.2, which read its data as float32; the data is now "
        f"read at its full precision (float64), so the NLL can differ from the run's {METRICS_FILE}"
    )


def batches(total: int, size: int, desc: str, quiet: bool) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` pairs covering ``range(total)``, with a progress bar when there is more than one."""
    from tqdm.auto import tqdm

    bar = tqdm(total=total, desc=desc, disable=True if quiet or total <= size else None)
    for start in range(0, total, size):
        stop = min(start + size, total)
        yield start, stop
        bar.update(stop - start)
    bar.close()


def sample_run(
    model: MADE | Mixture,
    config: dict,
    num_samples: int,
    ensemble: int | None = None,
    seed: int = 0,
    label: str | None = None,
    batch_size: int = 1000,
    quiet: bool = True,
) -> np.ndarray:
    """``num_samples`` exact draws of a run's model as data rows (decoded to the data's columns), from the
    mixture of ``ensemble`` masks if given, of class ``label`` for a run trained with a context."""
    device = model.output.weight.device
    labels = context_from_value(config.get("context"), label, num_samples)
    context = None if labels is None else to_tensor(labels).to(device)
    generator = torch.Generator(device=device).manual_seed(seed)
    parts = [
        model.sample(
            stop - start, None if context is None else context[start:stop], generator=generator, ensemble=ensemble
        )
        .cpu()
        .numpy()
        for start, stop in batches(num_samples, batch_size, "sampling", quiet)
    ]
    return decode(run_schema(config, model), np.concatenate(parts))


@dataclass
class Imputation:
    """What :func:`impute_run` made: ``samples`` completions of each row (row i's are rows i*K .. i*K+K-1),
    and the NLL of the hidden values (mean, standard error, rows) when they were known, else None."""

    rows: np.ndarray
    nll: tuple[float, float, int] | None


def impute_run(
    model: MADE | Mixture,
    config: dict,
    data: np.ndarray,
    hidden: np.ndarray | None = None,
    samples: int = 1,
    ensemble: int | None = None,
    seed: int = 0,
    label: str | None = None,
    batch_size: int = 100,
    quiet: bool = True,
    source: str = "data",
    where: Callable[[int], str] | None = None,
) -> Imputation:
    """Fill in the ``hidden`` cells of the rows ``data`` (default: its NaN cells) with draws from
    p(x_missing | x_observed) of a run's model, ``samples`` completions per row; the hidden values are
    scored where ``data`` holds them. ``source`` and ``where`` name the data and its rows in errors."""
    hidden = np.isnan(data) if hidden is None else hidden
    schema = run_schema(config, model)
    ensemble = ensemble if ensemble is not None else config.get("eval", {}).get("ensemble")
    labels = context_from_value(config.get("context"), label, len(data))
    context = None if labels is None else to_tensor(labels)
    if not hidden.any():
        return Imputation(np.repeat(data, samples, axis=0), None)
    encoded, observed = encode_observed(schema, data, hidden, source, *([where] if where else []))
    x, seen = to_tensor(encoded), to_tensor(observed)
    filled = complete_rows(model, x, seen, samples, ensemble, seed, batch_size, quiet, context)
    decoded = decode(schema, filled.reshape(-1, model.num_inputs).double().numpy())
    rows = np.where(np.repeat(hidden, samples, axis=0), decoded, np.repeat(data, samples, axis=0))
    if np.isnan(data).any():
        return Imputation(rows, None)
    nll, stderr, n = conditional_nll(model, x, seen, ensemble, batch_size, quiet, context)
    nll += float(log_scales(schema) @ (~observed).sum(0)) / n  # the hidden real values in the data's units
    return Imputation(rows, (nll, stderr, n))


def complete_rows(
    model: MADE | Mixture,
    x: torch.Tensor,
    observed: torch.Tensor,
    samples: int,
    ensemble: int | None,
    seed: int,
    batch_size: int,
    quiet: bool,
    context: torch.Tensor | None = None,
) -> torch.Tensor:
    """``[N, samples, D]`` completions of encoded rows, computed in batches of rows with a progress bar."""
    device, dtype = model.output.weight.device, model.output.weight.dtype
    generator = torch.Generator(device=device).manual_seed(seed)
    parts = [
        model.impute(
            x[a:b].to(device, dtype),
            observed[a:b].to(device),
            samples,
            None if context is None else context[a:b].to(device, dtype),
            ensemble=ensemble,
            generator=generator,
        )
        .transpose(0, 1)
        .cpu()
        for a, b in batches(len(x), batch_size, "imputing", quiet)
    ]
    return torch.cat(parts)


def conditional_nll(
    model: MADE | Mixture,
    x: torch.Tensor,
    observed: torch.Tensor,
    ensemble: int | None,
    batch_size: int,
    quiet: bool,
    context: torch.Tensor | None = None,
) -> tuple[float, float, int]:
    """Mean and standard error of -log p(x_missing | x_observed) over rows with something missing."""
    rows = (~observed).any(dim=1)
    x, observed = x[rows], observed[rows]
    context = None if context is None else context[rows]
    device, dtype = model.output.weight.device, model.output.weight.dtype
    nll = torch.cat(
        [
            -model.conditional_log_prob(
                x[a:b].to(device, dtype),
                observed[a:b].to(device),
                None if context is None else context[a:b].to(device, dtype),
                ensemble=ensemble,
            ).cpu()
            for a, b in batches(len(x), batch_size, "scoring", quiet)
        ]
    ).double()
    n = nll.numel()
    return float(nll.mean()), float(nll.std() / n**0.5) if n > 1 else float("nan"), n
