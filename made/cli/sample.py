"""``made sample``: exact samples of a trained run, as a PNG grid, .npy or .csv."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..io.atomic import atomic_write
from ..io.run import SAMPLES_ARRAY, SAMPLES_IMAGE, samples_file
from ..pipeline import sample_run
from ..plots import save_image_grid
from .common import load_for_inference, save_rows
from .options import ENSEMBLE, POSITIVE, add_drawing_args


def add_parser(subparsers: Any) -> None:
    """Add ``made sample`` and its options to the command line."""
    sample = subparsers.add_parser(
        "sample",
        help="draw samples from a trained run",
        description="Draw exact samples. Writes a PNG grid for image-shaped data (digits, MNIST), else .npy or .csv.",
    )
    sample.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'made train'")
    sample.add_argument("-n", "--num-samples", type=POSITIVE, default=64, help="number of samples (default: 64)")
    sample.add_argument(
        "--out",
        metavar="FILE",
        help=f".png, .npy or .csv (default: RUN_DIR/{SAMPLES_IMAGE} for image data, else RUN_DIR/{SAMPLES_ARRAY})",
    )
    sample.add_argument(
        "--ensemble",
        type=ENSEMBLE,
        metavar="K",
        help="draw from the mixture of K masks, a mask picked per sample (default: the run's mask)",
    )
    add_drawing_args(sample, "samples drawn at once", 1000)
    sample.add_argument("--context", metavar="LABEL", help="for a run trained with --context labels: the class to draw")
    sample.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``made sample``: draw samples and write them to --out."""
    model, config = load_for_inference(args)
    image_shape = config.get("image_shape")
    out = Path(args.out) if args.out else samples_file(args.run_dir, bool(image_shape))
    if out.suffix not in (".png", ".npy", ".csv"):
        raise ValueError(f"--out must end in .png, .npy or .csv, got {out}")
    if out.suffix == ".png" and not image_shape:
        raise ValueError("this data is not image-shaped; write .npy or .csv instead of .png")
    samples = sample_run(
        model, config, args.num_samples, args.ensemble, args.seed, args.context, args.batch_size, args.quiet
    )
    if out.suffix == ".png":
        assert image_shape  # a .png without one was refused above
        atomic_write(out, lambda tmp: save_image_grid(samples, tuple(image_shape), tmp))
    else:
        save_rows(out, samples)
    print(f"wrote {args.num_samples} samples to {out}")
    return 0
