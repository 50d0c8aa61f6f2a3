"""Figures of image flows: grids of images, and the latents of a multi-scale flow per scale.

Every function draws on a given axis or figure (``plot_image_grid`` returns the drawn
image, for a colour bar; the others the figure); nothing here calls ``pyplot``.
Every image panel has a title and its colour scale a labelled bar.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from torch import Tensor

from flowforge.dequantization import DequantizedFlow


def tile(images: np.ndarray, columns: int, gap: float = np.nan) -> np.ndarray:
    """One 2-D array of ``images`` ``(n, H, W)`` in rows of ``columns``, one pixel apart.

    Empty cells and the gaps are ``gap`` (NaN: drawn as the background).
    """
    n, h, w = images.shape
    rows = max(1, math.ceil(n / columns))
    canvas = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), gap, dtype=float)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        canvas[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = image
    return canvas


def plot_image_grid(
    images: Tensor | np.ndarray,
    image_shape: tuple[int, int, int],
    *,
    ax: Axes,
    levels: int | None = None,
    columns: int = 8,
    title: str | None = None,
) -> AxesImage:
    """Draw flat images ``(n, C·H·W)`` (one channel shown: the first) as a grid; returns
    the drawn image (for a colour bar).

    Pixel values run from 0 (white) to ``levels - 1`` (black), the digits' look; without
    ``levels`` the colour scale is the images' own range.
    """
    array = np.asarray(torch.as_tensor(images).detach().cpu().double())
    c, h, w = image_shape
    grid = tile(array.reshape(len(array), c, h, w)[:, 0], columns)
    vmin, vmax = (0, levels - 1) if levels else (np.nanmin(grid), np.nanmax(grid))
    drawn = ax.imshow(grid, cmap="gray_r", vmin=vmin, vmax=vmax, interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return drawn


def plot_samples_and_data(
    model: DequantizedFlow, data: Tensor, *, fig: Figure, n: int = 64, columns: int = 8
) -> Figure:
    """``n`` samples of ``model`` beside ``n`` images of ``data`` (flat pixel rows), with
    one colour bar of the pixel values."""
    with torch.no_grad():
        samples = model.sample(n)
    left, right = fig.subplots(1, 2)
    options = dict(levels=model.levels, columns=columns)
    plot_image_grid(samples, model.image_shape, ax=left, title=f"{n} model samples", **options)
    drawn = plot_image_grid(
        data[:n], model.image_shape, ax=right, title=f"{n} training images", **options
    )
    label = f"pixel value (0 to {model.levels - 1})"
    fig.colorbar(drawn, ax=[left, right], label=label, shrink=0.8)
    return fig


def _channels_side_by_side(latent: Tensor) -> np.ndarray:
    """``(C, H, W)`` as one ``(H, C·(W+1)-1)`` strip, for showing a latent part."""
    array = np.asarray(latent.detach().cpu().double())
    return tile(array, columns=array.shape[0])


def plot_latents(model: DequantizedFlow, data: Tensor, *, fig: Figure, examples: int = 3) -> Figure:
    """One row per scale of a multi-scale flow: the histogram of that scale's latent values
    over ``data`` against the standard normal density, then the latent of ``examples``
    images (each channel a small image, side by side; the colour scale is ±3)."""
    with torch.no_grad():
        was_training = model.training
        model.eval()
        try:
            parts = model.latents(data)
        finally:
            model.train(was_training)
    axes = fig.subplots(len(parts), 1 + examples, squeeze=False)
    grid = np.linspace(-4, 4, 200)
    drawn = None
    for scale, (row, part) in enumerate(zip(axes, parts), start=1):
        values = part.detach().cpu().double().flatten().numpy()
        row[0].hist(values, bins=60, range=(-4, 4), density=True, color="0.6", label="latents")
        normal = np.exp(-(grid**2) / 2) / math.sqrt(2 * math.pi)
        row[0].plot(grid, normal, "k-", lw=1, label="N(0, 1)")
        shape = "×".join(str(n) for n in part.shape[1:])
        row[0].set_title(f"scale {scale}: latent {shape} ({values.size // len(part)} dims)")
        row[0].set_xlabel("latent value")
        row[0].set_ylabel("density")
        row[0].legend(fontsize="small", loc="upper right")
        for i, ax in enumerate(row[1:]):
            if part.dim() == 4 and i < len(part):
                strip = _channels_side_by_side(part[i])
                drawn = ax.imshow(strip, cmap="RdBu_r", vmin=-3, vmax=3)
                ax.set_title(f"image {i + 1}: {part.shape[1]} channels")
            ax.set_axis_off()
    if drawn is not None:
        fig.colorbar(drawn, ax=axes[:, 1:].ravel().tolist(), label="latent value", shrink=0.8)
    return fig
