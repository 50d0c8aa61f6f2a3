"""A run's figures: drawn without pyplot (no global state, no display) and saved as PNG.

``run_figures`` draws the notebook's figures for a trained model of points,
``conditional_figures`` those of a model of points given a label, ``image_run_figures``
those of a model of images; a run's kind (``flowforge.workbench.runs.kinds``) chooses
which, and gives their captions. ``save_figure`` writes one atomically through
matplotlib's Agg renderer.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import Tensor

from flowforge.flow import NormalizingFlow
from flowforge.workbench.figures import curves, plots
from flowforge.workbench.figures.plots import STEP_LAYERS
from flowforge.workbench.files import atomic_write_bytes

FIGURE_DPI = 100
POINTS_SHOWN = 20_000  # data points drawn in the scatter figures


def coupling_count(model: NormalizingFlow) -> int:
    """How many coupling layers ``model`` has (the panels of ``plot_model_steps`` minus one)."""
    return sum(isinstance(layer, STEP_LAYERS) for layer in model.flow.layers)


def _density_and_samples(model, data, history, suptitle: str | None = None) -> Figure:
    fig = Figure(figsize=(12, 4.4 if suptitle else 4), layout="constrained")
    plots.plot_log_prob_and_samples(model, fig=fig, suptitle=suptitle)
    return fig


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
    fig = Figure(figsize=(3 * steps + 1, 3.2), layout="constrained")
    plots.plot_model_steps(model, steps, fig=fig)
    return fig


def _learning_curves(model, data, history) -> Figure:
    fig = Figure(figsize=(6, 4))
    curves.plot_learning_curves(history, ax=fig.add_subplot())
    return fig


LEARNING_CURVES_CAPTION = (
    "Training NLL (the running mean over each epoch) and held-out NLL after each epoch, in "
    "nats per point (standardized units); the notebook's target for the two moons is a "
    "held-out NLL below 1.9 nats. A held-out curve that rises while the training curve "
    "falls is overfitting."
)

# File name -> (caption, drawing function). Each caption names the notebook's question
# (sections 10.5 and 10.6) that the figure answers.
FIGURES: dict[str, tuple[str, Callable[..., Figure]]] = {
    "density_and_samples.png": (
        "10.5 (c): the trained model's log-density (nats, clipped below -10) and 10,000 of "
        "its samples. 10.5 (e), for the two moons: the density is not zero on the bridge between "
        "the moons. A "
        "flow is a smooth invertible map of a connected base (a Gaussian), so its image is "
        "connected: it cannot cut the plane into two separate moons and must leave some "
        "probability on a path joining them.",
        _density_and_samples,
    ),
    "samples_on_data.png": (
        "10.5 (d): 10,000 model samples (blue) with the training data drawn over them (red). "
        "Where blue shows without red, the model puts mass where there is no data (the "
        "bridge of 10.5 e).",
        _samples_on_data,
    ),
    "latent.png": (
        "10.5 (f)/(g): the training data pushed back through the inverse flow. Expect the "
        "base distribution (a standard normal: about 39%, 86% and 99% of the points inside "
        "the three lines); gaps or clumps show where the flow fails. 10.6 (a): unlike a "
        "GAN's generator, a flow has this inverse and an exact density. 10.6 (b): with a "
        "uniform base (--base uniform) the data must fill a bounded square, and points "
        "mapped outside it get zero density.",
        _latent,
    ),
    "model_steps.png": (
        "10.5 (h): the log-density after 0, 1, ... coupling layers, all on one colour scale "
        "(nats, clipped below -10). Train again with another --seed and compare the two "
        "runs with flowforge compare-runs RUN_A RUN_B: are the models similar? (Usually "
        "the final densities agree and the intermediate steps differ.)",
        _model_steps,
    ),
    "learning_curves.png": (LEARNING_CURVES_CAPTION, _learning_curves),
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

    fig = Figure(figsize=(11, 5.4), layout="constrained")
    plot_samples_and_data(model, data, fig=fig)
    return fig


def _image_latents(model, data, history) -> Figure:
    from flowforge.workbench.figures.images import plot_latents

    parts = len(model.latents(data[:1]))
    fig = Figure(figsize=(13, 2.9 * parts), layout="constrained")
    plot_latents(model, data, fig=fig)
    return fig


def _image_learning_curves(model, data, history) -> Figure:
    dims = history.get("heldout", {}).get("dims") if isinstance(history, Mapping) else None
    fig = Figure(figsize=(6.5, 4))
    curves.plot_learning_curves(
        history,
        ax=fig.add_subplot(),
        unit="nats per image",
        dims=dims or math.prod(model.image_shape),
        heldout_label="test set",
    )
    return fig


# The figures of a run on images (a ``DequantizedFlow``): file name -> (caption, drawing).
IMAGE_FIGURES: dict[str, tuple[str, Callable[..., Figure]]] = {
    "samples.png": (
        "10.6 (c), the manifold hypothesis: 64 samples of the model (left) beside 64 "
        "training images (right), pixel values 0 (white) to the highest level (black). "
        "Real digits lie near a thin set of all 8×8 images; a flow spreads its mass over "
        "the whole space, so its samples are noisier than the data.",
        _image_samples,
    ),
    "latents.png": (
        "10.5 (f)/(g) for images: the training images pushed back through the inverse "
        "flow, one row per scale of the multi-scale flow. Left: the histogram of the "
        "scale's latent values against N(0, 1), the base they should follow; right: three "
        "images' latents, each channel a small image, on the colour scale shown.",
        _image_latents,
    ),
    "learning_curves.png": (
        "Training NLL (the running mean over each epoch) and test-set NLL after each "
        "epoch, in nats per image (left axis) and bits per dimension (right axis).",
        _image_learning_curves,
    ),
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


def _given(label: int | str) -> str:
    return f"given label {label}: log-density of p(x | label {label}) and its samples"


def conditional_caption(name: str) -> str:
    """The caption of a figure ``conditional_figures`` draws, from its file name."""
    label = name.removeprefix("density_given_label_").removesuffix(".png")
    return (
        f"10.5 (c) for a conditional flow, {_given(label)} (nats, clipped below -10). For the "
        "two moons label 0 is the outer moon and 1 the inner one; given its label each "
        "moon is one connected piece, so no bridge is needed (compare 10.5 e)."
    )


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
            figures[_conditional_name(label)] = _density_and_samples(
                given, None, history, suptitle=_given(label)
            )
        figures["learning_curves.png"] = _learning_curves(model, None, history)
    return figures
