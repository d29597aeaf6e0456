r"""Pictures: grids of image-shaped samples, written as PNG with Pillow."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

__all__ = ["image_grid", "save_image_grid", "save_inpainting"]


def image_grid(images: np.ndarray, image_shape: tuple[int, int], columns: int | None = None, pad: int = 1) -> np.ndarray:
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
    picture = picture.resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST)
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
