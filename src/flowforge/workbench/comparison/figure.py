"""One figure for a comparison: per model, its density (or discriminator) and its samples."""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from flowforge.workbench.comparison.run import TRUTH, Comparison

LIMIT = 3.0  # the plane shown, [-LIMIT, LIMIT]² in model units
RESOLUTION = 150
SHOWN_SAMPLES = 2000
LOG_DENSITY_RANGE = 10.0  # nats below the truth's peak that the colour scale spans


def plane_grid(limit: float = LIMIT, resolution: int = RESOLUTION) -> tuple[Tensor, np.ndarray]:
    """Points of a square grid ``(resolution², 2)`` float64 and the axis values."""
    axis = np.linspace(-limit, limit, resolution)
    xx, yy = np.meshgrid(axis, axis)
    return torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1)), axis


def surface_panel(ax, values: np.ndarray, label: str, vmin: float, vmax: float):
    """Draw a ``(RESOLUTION, RESOLUTION)`` surface over ``[-LIMIT, LIMIT]²`` into ``ax``: a
    log-density clipped to ``[vmin, vmax]`` nats (black where ``-inf``), or a discriminator's
    P(real) when ``label`` says so. Returns the image (for a colour bar)."""
    extent = (-LIMIT, LIMIT, -LIMIT, LIMIT)
    if label.startswith("discriminator"):
        return ax.imshow(values, origin="lower", extent=extent, cmap="RdBu_r", vmin=0, vmax=1)
    from matplotlib import colormaps

    masked = np.ma.masked_invalid(np.where(np.isneginf(values), np.nan, values))
    cmap = colormaps["viridis"].with_extremes(bad="black")  # black: log-density -inf
    clipped = np.clip(masked, vmin, vmax)
    return ax.imshow(clipped, origin="lower", extent=extent, cmap=cmap, vmin=vmin, vmax=vmax)


def _samples_panel(
    ax, sample: Tensor, truth_surface: np.ndarray | None, axis: np.ndarray, level: float
):
    x = sample[:SHOWN_SAMPLES].numpy()
    if truth_surface is not None:
        ax.contour(axis, axis, truth_surface, levels=[level], colors="0.6", linewidths=0.6)
    ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.35, color="C3", rasterized=True)
    off = int((np.abs(x) > LIMIT).any(axis=1).sum())
    if off:
        ax.text(0.03, 0.03, f"{off} of {len(x)} off-frame", transform=ax.transAxes, fontsize=7)
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)


def no_density_panel(ax, text: str = "no closed-form\ndensity provided") -> None:
    """An empty panel that says the truth has no density to draw."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9)
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)


def top_of_scale(truth_surface: np.ndarray | None, surfaces: list[np.ndarray]) -> float:
    """The colour scale's top (nats): the truth's peak, or without a truth the median of
    the models' peaks (one model's spike cannot wash out the others)."""
    if truth_surface is not None:
        return float(truth_surface.max()) + 0.5
    peaks = [float(v[np.isfinite(v)].max()) for v in surfaces if np.isfinite(v).any()]
    return float(np.median(peaks)) + 0.5 if peaks else 0.0


def comparison_figure(c: Comparison) -> Figure:
    """Columns: the truth, then each model. Top: log-density (black where it is ``-inf``)
    or the GAN discriminator's P(real), and a note where the truth has no known density;
    bottom: samples over the truth's contour (where it has one).

    Returns the matplotlib ``Figure`` (no pyplot; save it with ``figures.save_figure``).
    """
    grid, axis = plane_grid()
    shape = (len(axis), len(axis))
    truth_surface = c.truth.log_prob(grid).numpy().reshape(shape) if c.truth.has_density else None
    columns = [("truth", truth_surface, "log-density (nats)")]
    for name, model in c.models.items():
        values = model.surface(grid).double().numpy().reshape(shape)
        columns.append((name, values, model.surface_label))
    densities = [v for _, v, label in columns[1:] if not label.startswith("discriminator")]
    vmax = top_of_scale(truth_surface, densities)
    vmin = vmax - LOG_DENSITY_RANGE
    fig = Figure(figsize=(2.4 * len(columns), 5.0), layout="constrained")
    axes = fig.subplots(2, len(columns), squeeze=False, sharex=True, sharey=True)
    for j, (name, values, label) in enumerate(columns):
        axes[0, j].set_title(f"{name}\n{label}", fontsize=8)
        if values is None:
            no_density_panel(axes[0, j])
        else:
            image = surface_panel(axes[0, j], values, label, vmin, vmax)
            if label.startswith("discriminator") or j == 0:
                fig.colorbar(image, ax=axes[0, j], shrink=0.7)
        sample = c.samples[TRUTH if j == 0 else name]
        _samples_panel(axes[1, j], sample, truth_surface, axis, vmax - 6.0)
        axes[1, j].set_title("samples", fontsize=8)
    for ax in axes.ravel():
        ax.set_aspect("equal")
        ax.tick_params(labelsize=6)
    return fig
