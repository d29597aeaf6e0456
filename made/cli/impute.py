"""``made impute``: fill in the missing values of rows, or inpaint images, from a trained run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..io.run import IMPUTED_FILE
from ..pipeline import RunModel, impute_run, inpaint_run, read_missing, run_schema, save_rows, write_inpainting
from .common import load_for_inference
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
    table, hidden = read_missing(args.data, args.mask, args.header, run_schema(config, model))
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


def _inpaint(args: argparse.Namespace, model: RunModel, config: dict, ensemble: int | None, masks: str) -> int:
    """``made impute --inpaint``: a picture of --split images given one half, completed, and the NLL of the rest."""
    image_shape = config.get("image_shape")
    if not image_shape:
        raise ValueError("--inpaint needs image data (the run's data set has no image shape); use --data")
    out = Path(args.inpaint)
    if out.suffix != ".png":
        raise ValueError(f"--inpaint must end in .png, got {out}")
    done = inpaint_run(
        model,
        config,
        args.split,
        args.given,
        args.examples,
        args.samples or 6,
        ensemble,
        args.seed,
        args.batch_size,
        args.quiet,
    )
    write_inpainting(out, done.shown, done.given, done.completions, tuple(image_shape))
    print(
        f"wrote {len(done.shown)} {args.split} images given their {args.given} half, with {done.completions.shape[1]} "
        f"completions each ({masks}), to {out}"
    )
    nll, stderr, n = done.nll
    print(
        f"conditional NLL of the other half given the {args.given} half, {args.split} split: "
        f"{nll:.4f} ± {stderr:.4f} nats per image over {n} images ({masks})"
    )
    return 0
