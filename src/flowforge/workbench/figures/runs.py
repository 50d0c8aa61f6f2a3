"""A run's figures: drawn without pyplot (no global state, no display) and saved as PNG.

``run_figures`` draws the notebook's figures for a trained model of points,
``conditional_figures`` those of a model of points given a label, ``image_run_figures``
those of a model of images; a run's kind (``flowforge.workbench.runs.kinds``) chooses
which, and gives their captions. ``save_figure`` writes one atomically through
matplotlib's Agg renderer.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor

from flowforge.flow import NormalizingFlow
from flowforge.workbench.figures import plots
from flowforge.workbench.figures.plots import STEP_LAYERS
from flowforge.workbench.files import atomic_write_bytes

FIGURE_DPI = 100
POINTS_SHOWN = 20_000  # data points drawn in the scatter figures


def coupling_count(model: NormalizingFlow) -> int:
    """How many coupling layers ``model`` has (the panels of ``plot_model_steps`` minus one)."""
    return sum(isinstance(layer, STEP_LAYERS) for layer in model.flow.layers)


def _density_and_samples(model, data, history) -> Figure:
    return plots.plot_log_prob_and_samples(model, fig=Figure(figsize=(12, 4)))


def _samples_on_data(model, data, history) -> Figure:
    fig = Figure(figsize=(6, 6))
    plots.plot_samples_on_data(model, data, ax=fig.add_subplot())
    return fig


def _latent(model, data, history) -> Figure:
    fig = Figure(figsize=(6, 6))
    plots.plot_inverse_samples(model, data, ax=fig.add_subplot())
    return fig


def _model_steps(model, data, history) -> Figure:
    steps = coupling_count(model) + 1
    return plots.plot_model_steps(model, steps, fig=Figure(figsize=(3 * steps, 3)))


def _learning_curves(model, data, history) -> Figure:
    fig = Figure(figsize=(6, 4))
    plots.plot_learning_curves(history, ax=fig.add_subplot())
    return fig


# File name -> (caption, drawing function).
FIGURES: dict[str, tuple[str, Callable[..., Figure]]] = {
    "density_and_samples.png": (
        "Log-density (clipped below -10) and samples",
        _density_and_samples,
    ),
    "samples_on_data.png": ("Model samples (blue) over the data (red)", _samples_on_data),
    "latent.png": ("The data mapped back to latent space, with the base density", _latent),
    "model_steps.png": ("Log-density after 0, 1, ... coupling layers", _model_steps),
    "learning_curves.png": ("Training and held-out NLL per epoch", _learning_curves),
}


def run_figures(
    model: NormalizingFlow,
    data: Tensor,
    history: Mapping | object,
    *,
    seed: int = 0,
) -> dict[str, Figure]:
    """All of ``FIGURES`` for a trained ``model`` and its (standardized) training ``data``.

    The samples are drawn with ``seed``, without disturbing torch's global random state,
    so redrawing a run gives the same figures. At most ``POINTS_SHOWN`` data points are drawn.
    """
    return _draw_all(FIGURES, model, data[:POINTS_SHOWN], history, seed)


def _draw_all(
    table: Mapping[str, tuple[str, Callable[..., Figure]]],
    model,
    data: Tensor,
    history: Mapping | object,
    seed: int,
) -> dict[str, Figure]:
    """Every figure of ``table`` (file name -> (caption, drawing)), with random draws
    seeded by ``seed`` and torch's global random state left as it was."""
    figures = {}
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for name, (_, draw) in table.items():
            figures[name] = draw(model, data, history)
    return figures


def _image_samples(model, data, history) -> Figure:
    from flowforge.workbench.figures.images import plot_samples_and_data

    return plot_samples_and_data(model, data, fig=Figure(figsize=(10, 5)))


def _image_latents(model, data, history) -> Figure:
    from flowforge.workbench.figures.images import plot_latents

    parts = len(model.latents(data[:1]))
    return plot_latents(model, data, fig=Figure(figsize=(12, 2.4 * parts)))


# The figures of a run on images (a ``DequantizedFlow``): file name -> (caption, drawing).
IMAGE_FIGURES: dict[str, tuple[str, Callable[..., Figure]]] = {
    "samples.png": (
        "64 samples of the model (left) and 64 training images (right), pixel values 0 "
        "(white) to the highest level (black)",
        _image_samples,
    ),
    "latents.png": (
        "The training images mapped to the latent space, one row per scale: the histogram "
        "of the scale's latent values against N(0, 1), and three images' latents (each "
        "channel a small image)",
        _image_latents,
    ),
    "learning_curves.png": FIGURES["learning_curves.png"],
}


def image_run_figures(
    model, data: Tensor, history: Mapping | object, *, seed: int = 0
) -> dict[str, Figure]:
    """All of ``IMAGE_FIGURES`` for a trained image flow (a ``DequantizedFlow``) and its
    training images ``data`` (flat pixel rows); samples drawn with ``seed``."""
    return _draw_all(IMAGE_FIGURES, model, data, history, seed)


def save_figure(figure: Figure, path: str | os.PathLike) -> Path:
    """Write ``figure`` as a PNG file, atomically (Agg renderer)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def _conditional_name(label: int) -> str:
    return f"density_given_label_{label}.png"


def conditional_caption(name: str) -> str:
    """The caption of a figure ``conditional_figures`` draws, from its file name."""
    label = name.removeprefix("density_given_label_").removesuffix(".png")
    return f"Log-density p(x | label {label}) (clipped below -10) and samples given label {label}"


def conditional_figures(
    model: NormalizingFlow,
    classes: int,
    history: Mapping | object,
    *,
    seed: int = 0,
) -> dict[str, Figure]:
    """The figures of a flow conditioned on one-hot labels: the density and samples given
    each label (``density_given_label_K.png``), and the learning curves."""
    from flowforge.conditional import Conditioned, label_context

    figures = {}
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        for label in range(classes):
            given = Conditioned(model, label_context(torch.tensor([label]), classes)[0])
            figures[_conditional_name(label)] = _density_and_samples(given, None, history)
        figures["learning_curves.png"] = _learning_curves(model, None, history)
    return figures
