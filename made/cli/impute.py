"""``made impute``: fill in the missing values of rows, or inpaint images, from a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data import DataError, Table, read_table
from ..data.columns import encode, num_columns
from ..io.atomic import atomic_write
from ..io.run import IMPUTED_FILE
from ..model import MADE
from ..model.mixture import Mixture
from ..pipeline import (
    all_binary,
    complete_rows,
    conditional_nll,
    context_tensor,
    impute_run,
    load_splits,
    run_schema,
    to_tensor,
)
from ..plots import save_inpainting
from .common import load_for_inference, save_rows
from .options import ENSEMBLE, POSITIVE, add_drawing_args, add_header_arg


def add_parser(subparsers: Any) -> None:
    """Add ``made impute`` and its options to the command line."""
    impute = subparsers.add_parser(
        "impute",
        help="fill in missing values, or inpaint images",
        description="Draw the missing entries of "
        "each row from p(x_missing | x_observed), exactly, under orderings that put the observed dimensions "
        "first. Needs a run trained with resampled orderings (--masks K --resample full|ordering), unless the "
        "observed dimensions come first in the run's own ordering. Prints the conditional NLL of the hidden "
        "values when they are known.",
    )
    impute.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'made train'")
    what = impute.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--data",
        metavar="FILE",
        help=".npy or .csv rows to complete; NaN (or an empty CSV cell) marks a missing value unless --mask is given",
    )
    what.add_argument(
        "--inpaint",
        metavar="PNG",
        help="image data: a picture of images of the run's data "
        "(--split) given one half (--given), with several completions of the other half",
    )
    add_header_arg(impute)
    impute.add_argument(
        "--context", metavar="LABEL", help="for a run trained with --context labels: the class label of every row"
    )
    impute.add_argument(
        "--mask",
        metavar="FILE",
        help="with --data: .npy or .csv of 0/1 the shape of the data, "
        "1 = missing; the data's values there are hidden (and scored if present)",
    )
    impute.add_argument(
        "--out",
        metavar="FILE",
        help="with --data: .npy or .csv; N*K rows, the K completions of "
        "row i are rows i*K .. i*K+K-1 "
        f"(default: RUN_DIR/{IMPUTED_FILE})",
    )
    impute.add_argument(
        "--samples", type=POSITIVE, metavar="K", help="completions per row (default: 1; 6 with --inpaint)"
    )
    impute.add_argument(
        "--given",
        choices=["top", "bottom", "left", "right"],
        default="top",
        help="with --inpaint: the half of each image that is observed (default: top)",
    )
    impute.add_argument(
        "--examples",
        type=POSITIVE,
        default=8,
        help="with --inpaint: images shown, evenly spaced through the split (default: 8)",
    )
    impute.add_argument(
        "--split",
        choices=["train", "valid", "test"],
        default="test",
        help="with --inpaint: the split the images and the NLL come from (default: test)",
    )
    impute.add_argument(
        "--ensemble", type=ENSEMBLE, metavar="K", help="masks in the mixture (default: as in the run's evaluation)"
    )
    add_drawing_args(impute, "rows imputed at once", 100)
    impute.set_defaults(func=run)


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


def _given_half(image_shape: tuple[int, int], side: str) -> np.ndarray:
    """Bool ``[H*W]``: True on the observed half of the image."""
    h, w = image_shape
    rows, cols = np.indices((h, w))
    half = {"top": rows < h // 2, "bottom": rows >= h // 2, "left": cols < w // 2, "right": cols >= w // 2}[side]
    return half.reshape(-1)


def run(args: argparse.Namespace) -> int:
    """``made impute``: complete the rows of --data, or draw the --inpaint picture."""
    model, config = load_for_inference(args)
    ensemble = args.ensemble if args.ensemble is not None else config.get("eval", {}).get("ensemble")
    masks = "the run's mask" if not ensemble else f"mixture of {ensemble} masks" if ensemble > 1 else "1 mask"
    if args.inpaint:
        if args.mask or args.out or args.context is not None:
            raise ValueError("--mask, --out and --context go with --data, not with --inpaint")
        return _inpaint(args, model, config, ensemble, masks)
    out = Path(args.out) if args.out else Path(args.run_dir) / IMPUTED_FILE
    if out.suffix not in (".npy", ".csv"):
        raise ValueError(f"--out must end in .npy or .csv, got {out}")
    table, hidden = _read_missing(args, run_schema(config, model))
    data, samples = table.values, args.samples or 1
    done = impute_run(
        model,
        config,
        data,
        hidden,
        samples,
        ensemble,
        args.seed,
        args.context,
        args.batch_size,
        args.quiet,
        str(args.data),
        table.where,
    )
    save_rows(out, done.rows, data.dtype, table.header)
    if not hidden.any():
        print(
            f"nothing was missing in {args.data}: wrote its {len(data)} rows unchanged "
            f"({samples} cop{'y' if samples == 1 else 'ies'} each) to {out}"
        )
        return 0
    print(
        f"filled {int(hidden.sum())} missing values in {len(data)} rows, {samples} completion(s) each "
        f"({masks}); wrote {len(data) * samples} rows to {out}"
    )
    if done.nll is None:
        print("the missing values are unknown (NaN), so there is no conditional NLL to report")
    else:
        nll, stderr, n = done.nll
        print(f"conditional NLL of the hidden values: {nll:.4f} ± {stderr:.4f} nats per row over {n} rows")
    return 0


def _inpaint(args: argparse.Namespace, model: MADE | Mixture, config: dict, ensemble: int | None, masks: str) -> int:
    """``made impute --inpaint``: a picture of --split images given one half, completed, and the NLL of the rest."""
    image_shape = config.get("image_shape")
    if not image_shape:
        raise ValueError("--inpaint needs image data (the run's data set has no image shape); use --data")
    out = Path(args.inpaint)
    if out.suffix != ".png":
        raise ValueError(f"--inpaint must end in .png, got {out}")
    schema = run_schema(config, model)
    raw = load_splits(config["data"], binary=all_binary(schema))
    if raw.num_inputs != num_columns(schema):
        raise ValueError(f"the data has {raw.num_inputs} columns, the model expects {num_columns(schema)}")
    data = to_tensor(encode(schema, raw.split(args.split), raw.source or raw.name, raw.where(args.split)))
    context = context_tensor(config.get("context"), raw, args.split)
    half = torch.from_numpy(_given_half(tuple(image_shape), args.given))
    observed = half.expand(data.shape[0], -1)
    picked = np.linspace(0, len(data) - 1, min(args.examples, len(data))).round().astype(int)
    shown = data[picked]
    completions = complete_rows(
        model,
        shown,
        observed[: len(shown)],
        args.samples or 6,
        ensemble,
        args.seed,
        args.batch_size,
        args.quiet,
        None if context is None else context[picked],
    )
    atomic_write(
        out, lambda tmp: save_inpainting(shown.numpy(), half.numpy(), completions.numpy(), tuple(image_shape), tmp)
    )
    print(
        f"wrote {len(shown)} {args.split} images given their {args.given} half, with {completions.shape[1]} "
        f"completions each ({masks}), to {out}"
    )
    nll, stderr, n = conditional_nll(model, data, observed, ensemble, 1000, args.quiet, context)
    print(
        f"conditional NLL of the other half given the {args.given} half, {args.split} split: "
        f"{nll:.4f} ± {stderr:.4f} nats per image over {n} images ({masks})"
    )
    return 0
