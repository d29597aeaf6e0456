"""``made masks``: a picture of a small MADE's masks and its path counts."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..io.run import MASKS_PICTURE
from ..pipeline import load_for_inference, new_model
from ..plots import MAX_DRAWN_UNITS, save_mask_picture
from .options import NON_NEGATIVE, POSITIVE, SEED, masks_arg


def add_parser(subparsers: Any) -> None:
    """Add ``made masks`` and its options to the command line."""
    masks = subparsers.add_parser(
        "masks",
        help="draw a small MADE's masks as a PNG",
        description="Draw the network of a small MADE with its "
        "allowed connections (units labelled with their degrees) and the number of paths from each input to each "
        "output, read in the ordering: strictly lower triangular. Either a configuration given here or a small "
        "trained RUN_DIR. Needs matplotlib (pip install 'made[plot]').",
    )
    masks.add_argument("run_dir", nargs="?", metavar="RUN_DIR", help="a small run folder (default: the model below)")
    masks.add_argument("--inputs", type=POSITIVE, default=4, metavar="D", help="number of inputs (default: 4)")
    masks.add_argument(
        "--hidden", type=POSITIVE, nargs="*", default=[6, 6], metavar="H", help="hidden widths (default: 6 6)"
    )
    masks.add_argument(
        "--direct",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="direct input-to-output connection (default: off)",
    )
    masks.add_argument("--ordering", choices=["natural", "random"], default="natural", help="(default: natural)")
    masks.add_argument("--degrees", choices=["random", "even"], default="random", help="(default: random)")
    masks.add_argument("--masks", type=masks_arg, default=1, metavar="K|unlimited", help="pool size (default: 1)")
    masks.add_argument(
        "--resample",
        choices=["full", "ordering", "connectivity"],
        default="full",
        help="what the pool resamples (default: full)",
    )
    masks.add_argument("--seed", type=SEED, default=0, help="(default: 0)")
    masks.add_argument(
        "--mask-index", type=NON_NEGATIVE, default=0, metavar="I", help="which mask of the pool (default: 0)"
    )
    masks.add_argument(
        "--out", metavar="FILE.png", help=f"picture to write (default: {MASKS_PICTURE}, or RUN_DIR/{MASKS_PICTURE})"
    )
    masks.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """``made masks``: draw the masks of a configuration or of a small run."""
    if args.run_dir:
        model, _ = load_for_inference(args.run_dir)
        source = str(args.run_dir)
    else:
        widths = [args.inputs, *args.hidden]
        if max(widths) > MAX_DRAWN_UNITS:  # refused before a network of that size is built
            raise ValueError(
                f"--inputs and --hidden: at most {MAX_DRAWN_UNITS} units a layer can be drawn, got layers of {widths}"
            )
        model = new_model(
            num_inputs=args.inputs,
            hidden_sizes=args.hidden,
            num_masks=args.masks,
            ordering=args.ordering,
            direct=args.direct,
            seed=args.seed,
            resample=args.resample,
            degrees=args.degrees,
        )
        source = f"D={args.inputs}, hidden {args.hidden}, seed {args.seed}"
    model.check_autoregressive()  # a mixture refuses (it has no masks of its own); a MADE's masks are checked
    if args.mask_index:
        model.set_mask(args.mask_index)  # type: ignore[operator]  # a MADE: a mixture's check above raised
    model.check_autoregressive()
    out = Path(args.out) if args.out else Path(args.run_dir or ".") / MASKS_PICTURE
    if out.suffix != ".png":
        raise ValueError(f"--out must end in .png, got {out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    # A MADE from here on (a mixture's check_autoregressive raised; mypy does not narrow a union by it).
    save_mask_picture(model, out, title=f"MADE masks: {source}, mask {args.mask_index}")  # type: ignore[arg-type]
    order = " ".join(f"x{i + 1}" for i in model.ordering.tolist())  # type: ignore[operator]
    print(f"wrote {out}: ordering {order}; path counts strictly lower triangular (checked)")
    return 0
