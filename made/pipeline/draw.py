"""Draw from a run: exact samples decoded to the data's columns, and completions of rows with missing values
with the conditional NLL of the hidden ones, in batches with a progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..data import DataError, Table, read_table
from ..data.columns import decode, encode, encode_observed, log_scales, num_columns
from ..data.context import context_from_value
from ..data.precision import in_dtype
from .reading import RunModel, context_tensor, read_run_splits, run_schema, to_tensor

__all__ = [
    "batches",
    "sample_run",
    "Imputation",
    "impute_run",
    "complete_rows",
    "conditional_nll",
    "read_missing",
    "Inpainting",
    "inpaint_run",
]


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
    model: RunModel,
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
    values = context_from_value(config.get("context"), label, num_samples)
    context = None if values is None else to_tensor(values).to(device)
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
    model: RunModel,
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
    p(x_missing | x_observed) of a run's model, ``samples`` completions per row, in ``data``'s dtype (its
    observed cells unchanged, to the bit); the hidden values are scored where ``data`` holds them.
    ``source`` and ``where`` name the data and its rows in errors."""
    hidden = np.isnan(data) if hidden is None else hidden
    schema = run_schema(config, model)
    ensemble = ensemble if ensemble is not None else config.get("eval", {}).get("ensemble")
    values = context_from_value(config.get("context"), label, len(data))
    context = None if values is None else to_tensor(values)
    if not hidden.any():
        return Imputation(np.repeat(data, samples, axis=0), None)
    encoded, observed = encode_observed(schema, data, hidden, source, *([where] if where else []))
    x, seen = to_tensor(encoded), to_tensor(observed)
    filled = complete_rows(model, x, seen, samples, ensemble, seed, batch_size, quiet, context)
    decoded = decode(schema, filled.reshape(-1, model.num_inputs).double().numpy())
    # observed cells copied as they are (never through float64), drawn ones put in the data's dtype and range
    rows, drawn = np.repeat(data, samples, axis=0), np.repeat(hidden, samples, axis=0)
    rows[drawn] = in_dtype(decoded[drawn], data.dtype)
    if np.isnan(data).any():
        return Imputation(rows, None)
    nll, stderr, n = conditional_nll(model, x, seen, ensemble, batch_size, quiet, context)
    nll += float(log_scales(schema) @ (~observed).sum(0)) / n  # the hidden real values in the data's units
    return Imputation(rows, (nll, stderr, n))


def complete_rows(
    model: RunModel,
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
    model: RunModel,
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


def read_missing(
    data_file: str | Path, mask_file: str | Path | None, header: bool | None, schema: list[dict]
) -> tuple[Table, np.ndarray]:
    """The rows of ``data_file`` to complete, at their own precision, and which cells are hidden: NaN (an
    empty or NA cell) or, with a ``mask_file``, the cells it marks 1 (``made impute --data/--mask``)."""
    table = read_table(data_file, header)
    data = table.values
    if data.shape[1] != num_columns(schema):
        raise DataError(f"{data_file}: the data has {data.shape[1]} columns, the model expects {num_columns(schema)}")
    infinite = np.isinf(data)
    if infinite.any():
        row, col = np.argwhere(infinite)[0]
        raise DataError(f"{data_file}: {table.where(row)}, column {col + 1}: {data[row, col]} is not a finite number")
    if mask_file is None:
        return table, np.isnan(data)
    mask = read_table(mask_file, header).values
    if mask.shape != data.shape:
        raise DataError(f"{mask_file}: the mask has shape {mask.shape}, the data {data.shape}")
    if not np.isin(mask, (0, 1)).all():
        raise DataError(f"{mask_file}: the mask must hold 0 (observed) or 1 (missing)")
    unmarked = np.isnan(data) & (mask == 0)
    if unmarked.any():
        row, col = np.argwhere(unmarked)[0]
        raise DataError(f"{data_file}: {table.where(row)}, column {col + 1} is missing but the mask says observed")
    return table, mask == 1


def _given_half(image_shape: tuple[int, int], side: str) -> np.ndarray:
    """Bool ``[H*W]``: True on the observed half of the image."""
    h, w = image_shape
    rows, cols = np.indices((h, w))
    half = {"top": rows < h // 2, "bottom": rows >= h // 2, "left": cols < w // 2, "right": cols >= w // 2}[side]
    return half.reshape(-1)


@dataclass
class Inpainting:
    """What :func:`inpaint_run` made: the images shown, the observed half (bool ``[H*W]``), their completions
    ``[shown, samples, D]``, and the NLL of the other half over the whole split (mean, standard error, images)."""

    shown: np.ndarray
    given: np.ndarray
    completions: np.ndarray
    nll: tuple[float, float, int]


def inpaint_run(
    model: RunModel,
    config: dict,
    split: str = "test",
    given: str = "top",
    examples: int = 8,
    samples: int = 6,
    ensemble: int | None = None,
    seed: int = 0,
    batch_size: int = 100,
    quiet: bool = True,
) -> Inpainting:
    """Complete ``examples`` images of ``split`` of an image run's own data given their ``given`` half
    (top, bottom, left or right), ``samples`` completions each, and score the other half on the whole split."""
    image_shape = tuple(config["image_shape"])
    schema = run_schema(config, model)
    raw = read_run_splits(config["data"], schema)
    data = to_tensor(encode(schema, raw.split(split), raw.source or raw.name, raw.where(split)))
    context = context_tensor(config.get("context"), raw, split)
    half = torch.from_numpy(_given_half(image_shape, given))
    observed = half.expand(data.shape[0], -1)
    picked = np.linspace(0, len(data) - 1, min(examples, len(data))).round().astype(int)
    shown = data[picked]
    picked_context = None if context is None else context[picked]
    completions = complete_rows(
        model, shown, observed[: len(shown)], samples, ensemble, seed, batch_size, quiet, picked_context
    )
    nll = conditional_nll(model, data, observed, ensemble, 1000, quiet, context)
    return Inpainting(shown.numpy(), half.numpy(), completions.numpy(), nll)
