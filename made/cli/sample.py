"""``made sample``: exact samples of a trained run, as a PNG grid, .npy or .csv."""

from __future__ import annotations

import argparse
from typing import Any
from pathlib import Path

import numpy as np
import torch

from ..data.columns import decode
from ..data.context import context_from_value
from ..io.atomic import atomic_write
from ..pipeline import to_tensor
from ..plots import save_image_grid
from .common import batches, load_for_inference, run_schema, save_rows
from .options import ENSEMBLE, POSITIVE, add_drawing_args


def add_parser(subparsers: Any) -> None:
    """Add ``made sample`` and its options to the command line."""
    sample = subparsers.add_parser("sample", help="draw samples from a trained run", description="Draw exact samples. "
                                   "Writes a PNG grid for image-shaped data (digits, MNIST), else .npy or .csv.")
    sample.add_argument("run_dir", metavar="RUN_DIR", help="a folder written by 'made train'")
    sample.add_argument("-n", "--num-samples", type=POSITIVE, default=64, help="number of samples (default: 64)")
    sample.add_argument("--out", metavar="FILE", help="samples.png, .npy or .csv (default: RUN_DIR/samples.png "
                        "for image data, else RUN_DIR/samples.npy)")
    sample.add_argument("--ensemble", type=ENSEMBLE, metavar="K",
                        help="draw from the mixture of K masks, a mask picked per sample (default: the run's mask)")
    add_drawing_args(sample, "samples drawn at once", 1000)
    sample.add_argument("--context", metavar="LABEL", help="for a run trained with --context labels: the class to draw")
    sample.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``made sample``: draw samples and write them to --out."""
    model, config = load_for_inference(args)
    image_shape = config.get("image_shape")
    out = Path(args.out) if args.out else Path(args.run_dir) / ("samples.png" if image_shape else "samples.npy")
    if out.suffix not in (".png", ".npy", ".csv"):
        raise ValueError(f"--out must end in .png, .npy or .csv, got {out}")
    if out.suffix == ".png" and not image_shape:
        raise ValueError("this data is not image-shaped; write .npy or .csv instead of .png")
    schema = run_schema(config, model)
    context = context_from_value(config.get("context"), args.context, args.num_samples)
    generator = torch.Generator(device=model.output.weight.device).manual_seed(args.seed)
    context = None if context is None else to_tensor(context).to(model.output.weight.device)
    parts = [
        model.sample(stop - start, None if context is None else context[start:stop], generator=generator,
                     ensemble=args.ensemble).cpu().numpy()
        for start, stop in batches(args.num_samples, args.batch_size, "sampling", args.quiet)
    ]
    samples = decode(schema, np.concatenate(parts))
    if out.suffix == ".png":
        atomic_write(out, lambda tmp: save_image_grid(samples, tuple(image_shape), tmp))
    else:
        save_rows(out, samples)
    print(f"wrote {args.num_samples} samples to {out}")
    return 0
