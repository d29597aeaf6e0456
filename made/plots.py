r"""Pictures: grids of image-shaped samples (Pillow) and a model's masks (matplotlib, imported lazily)."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .model import MADE

__all__ = ["image_grid", "save_image_grid", "save_inpainting", "dimension_path_counts", "save_mask_picture"]


def image_grid(
    images: np.ndarray, image_shape: tuple[int, int], columns: int | None = None, pad: int = 1
) -> np.ndarray:
    """Tile rows of ``images`` (``[N, H*W]``, values in [0, 1]) into one ``uint8`` picture."""
    n = images.shape[0]
    h, w = image_shape
    if images.shape[1] != h * w:
        raise ValueError(f"images have {images.shape[1]} values, image shape {image_shape} needs {h * w}")
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    grid = np.full((rows * (h + pad) + pad, columns * (w + pad) + pad), 128, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        tile = (np.clip(image.reshape(h, w), 0, 1) * 255).astype(np.uint8)
        grid[pad + r * (h + pad) : pad + r * (h + pad) + h, pad + c * (w + pad) : pad + c * (w + pad) + w] = tile
    return grid


def save_image_grid(
    images: np.ndarray, image_shape: tuple[int, int], path: str | Path, columns: int | None = None, scale: int = 4
) -> None:
    """Write a grid of images as a PNG, each pixel enlarged ``scale`` times."""
    from PIL import Image

    grid = image_grid(images, image_shape, columns)
    picture = Image.fromarray(grid, mode="L")
    picture = picture.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.Resampling.NEAREST)
    picture.save(path)


def save_inpainting(
    originals: np.ndarray, observed: np.ndarray, completions: np.ndarray, image_shape: tuple[int, int], path: str | Path
) -> None:
    """One row per image: the original, what the model is given (hidden pixels grey), then its completions.

    ``originals`` is ``[N, H*W]``, ``observed`` a bool ``[H*W]``, ``completions`` ``[N, K, H*W]``.
    """
    given = np.where(observed, originals, 0.5)
    rows = np.concatenate([originals[:, None], given[:, None], completions], axis=1)
    save_image_grid(rows.reshape(-1, rows.shape[-1]), image_shape, path, columns=rows.shape[1])


# ------------------------------------------------------------------- masks
MAX_DRAWN_UNITS = 40  # widest layer the network picture can show legibly


def dimension_path_counts(model: MADE) -> tuple[Tensor, Tensor]:
    """Paths from each input dimension to each output dimension, both read in the ordering.

    Returns ``(counts, ordering)``: ``counts[i, j]`` is the number of paths (through
    the hidden layers, plus one for a direct connection) from the input at position
    j of the ordering to the output at position i, for the current mask. Units of
    one dimension (a one-hot input, several output parameters) are added together
    and context inputs left out. Autoregressive means strictly lower triangular.
    """
    units = model.path_counts()  # [output units, input units]
    in_dim = torch.arange(model.num_inputs).repeat_interleave(torch.tensor(model.family.inputs_per_dim))
    out_dim = torch.arange(model.num_inputs).repeat_interleave(torch.tensor(model.family.params_per_dim))
    units = units[:, : in_dim.numel()]  # drop context columns
    by_dim = torch.zeros(model.num_inputs, model.num_inputs, dtype=units.dtype)
    by_dim.index_put_((out_dim[:, None].expand_as(units), in_dim[None, :].expand_as(units)), units, accumulate=True)
    ordering = model.ordering.cpu()
    return by_dim[ordering][:, ordering], ordering


def save_mask_picture(model: MADE, path: str | Path, title: str | None = None) -> None:
    """Draw the current mask of a small model as a PNG: the network and its path-count matrix.

    Left, the network from inputs (bottom) to outputs (top): each unit shows its
    degree, each line an allowed connection, dashed curves the direct connection.
    Right, the path counts read in the ordering, which must be strictly lower
    triangular. Needs matplotlib (``pip install 'made[plot]'``).
    """
    widths = [group.width for group in model.network.groups]
    if max(widths) > MAX_DRAWN_UNITS or model.context_size or model.family.name != "bernoulli":
        raise ValueError(
            f"only a small Bernoulli model without context can be drawn (at most {MAX_DRAWN_UNITS} units a layer); "
            f"this one has layers of {widths} units: draw a small configuration with --inputs and --hidden"
        )
    try:
        import matplotlib
    except ImportError:
        raise ValueError("drawing masks needs matplotlib: pip install 'made[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (net, heat) = plt.subplots(
        1, 2, figsize=(11, 5.2), gridspec_kw={"width_ratios": [1.25, 1]}, constrained_layout=True
    )
    _draw_network(net, model, plt.get_cmap("viridis"))
    _draw_path_counts(heat, model)
    if title:
        fig.suptitle(title, fontsize=12)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    _save_compact_png(buffer, path)


def _draw_network(net: Any, model: MADE, cmap: Any) -> None:
    """The units of every group (numbers: degrees) and the allowed connections of the current mask."""
    from matplotlib.patches import FancyArrowPatch

    current = model.current_masks()
    ordering, degrees = current.ordering, list(current.degrees)
    groups = model.network.groups
    d = model.num_inputs
    rows = len(degrees)
    span = max(len(deg) for deg in degrees)
    xs = []
    for level, deg in enumerate(degrees):
        slots = torch.linspace(0, span - 1, len(deg)) if len(deg) > 1 else torch.tensor([(span - 1) / 2])
        if 0 < level < rows - 1:  # hidden units sorted by degree: fewer crossings, same network
            slots = slots.clone()
            slots[deg.argsort(stable=True)] = slots.clone()
        xs.append(slots)

    def skip(source: int, target: int, pairs: list[tuple[int, int]]) -> None:
        """Dashed curves for connections that skip levels (direct connections, residual additions)."""
        for out_unit, in_unit in pairs:
            start, end = (float(xs[source][in_unit]), float(source)), (float(xs[target][out_unit]), float(target))
            bend = 0.25 if start[0] <= end[0] else -0.25
            net.add_patch(
                FancyArrowPatch(
                    start,
                    end,
                    connectionstyle=f"arc3,rad={bend}",
                    arrowstyle="-",
                    linestyle=(0, (3, 2)),
                    color="0.6",
                    lw=0.8,
                    alpha=0.8,
                    zorder=0,
                )
            )

    for level, link in model.network.links():
        pairs = current.links[link.module].cpu().nonzero().tolist()
        if link.source != level - 1:
            skip(link.source, level, pairs)
            continue
        for out_unit, in_unit in pairs:
            color = cmap(degrees[link.source][in_unit].item() / d)
            net.plot(
                [xs[link.source][in_unit], xs[level][out_unit]],
                [link.source, level],
                color=color,
                lw=1.0,
                alpha=0.55,
                zorder=1,
            )
    for level, group in enumerate(groups):
        if group.residual is not None:
            skip(group.residual, level, [(unit, unit) for unit in range(group.width)])
    names = ["inputs", *[_layer_name(group.links[0].module) for group in groups[1:-1]], "outputs"]
    for level, deg in enumerate(degrees):
        for unit, (x, m) in enumerate(zip(xs[level].tolist(), deg.tolist())):
            net.scatter([x], [level], s=430, color=cmap(m / d), edgecolors="black", linewidths=0.8, zorder=3)
            net.text(
                x,
                level,
                str(m),
                ha="center",
                va="center",
                fontsize=9,
                zorder=4,
                color="white" if m / d < 0.6 else "black",
                fontweight="bold",
            )
            if level in (0, rows - 1):
                label = f"$x_{{{unit + 1}}}$" if level == 0 else f"$\\hat{{x}}_{{{unit + 1}}}$"
                net.text(x, level + (-0.32 if level == 0 else 0.32), label, ha="center", va="center", fontsize=10)
        net.text(-0.9, level, names[level], ha="right", va="center", fontsize=10, color="0.25")
    order_text = ", ".join(f"$x_{{{i + 1}}}$" for i in ordering.tolist())
    kinds = [
        kind
        for kind, present in (
            ("direct", model.direct is not None),
            ("residual", any(g.residual is not None for g in groups)),
        )
        if present
    ]
    direct_note = f"\ndashed: {' and '.join(kinds)} connections" if kinds else ""
    net.set_title(f"allowed connections (numbers: degrees){direct_note}\nordering: {order_text}", fontsize=11)
    net.set_xlim(-3.2, span - 0.2)
    net.set_ylim(-0.6, rows - 0.4)
    net.axis("off")


def _layer_name(module: str) -> str:
    """``hidden.0`` -> ``hidden 1``; ``blocks.0.1`` -> ``block 1.2``."""
    kind, *index = module.split(".")
    return f"{'hidden' if kind == 'hidden' else 'block'} {'.'.join(str(int(i) + 1) for i in index)}"


def _draw_path_counts(heat: Any, model: MADE) -> None:
    """The path counts between dimensions, read in the ordering, with the cells that must be 0 shaded."""
    from matplotlib.patches import Rectangle

    counts, ordering = dimension_path_counts(model)
    d = model.num_inputs
    image = counts.numpy()
    heat.imshow(image, cmap="Blues", vmin=0, vmax=max(float(image.max()), 1.0))
    labels = [f"$x_{{{i + 1}}}$" for i in ordering.tolist()]
    heat.set_xticks(range(d), labels)
    heat.set_yticks(range(d), [f"$\\hat{{x}}_{{{i + 1}}}$" for i in ordering.tolist()])
    heat.set_xlabel("input, in the ordering")
    heat.set_ylabel("output, in the ordering")
    if d <= 16:
        for i in range(d):
            for j in range(d):
                value = int(image[i, j])
                heat.text(
                    j,
                    i,
                    str(value),
                    ha="center",
                    va="center",
                    fontsize=10,
                    color="white" if value > 0.6 * image.max() else ("0.6" if value == 0 else "black"),
                )
    for i in range(d):  # shade the cells that must be zero: on and above the diagonal
        for j in range(i, d):
            heat.add_patch(Rectangle((j - 0.5, i - 0.5), 1, 1, facecolor="#f6dede", edgecolor="white", lw=0.5))
    kind = "$M^V M^W$" + (" + $M^A$" if model.direct is not None else "")
    heat.set_title(f"number of paths input → output ({kind});\nshaded cells must be 0: autoregressive", fontsize=11)


def _save_compact_png(buffer: io.BytesIO, path: str | Path) -> None:
    """Re-save a flat-coloured plot with a 128-colour palette: a third of the size, no visible change."""
    from PIL import Image

    buffer.seek(0)
    with Image.open(buffer) as image:
        image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
