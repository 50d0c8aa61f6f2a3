"""The notebook's figures, as library functions: each draws into an axis or a figure.

The names and leading arguments are the notebook's (``plot_log_prob``,
``plot_samples``, ``plot_log_prob_and_samples``, ``plot_inverse_samples``,
``part_model``, ``plot_model_steps``). Like the notebook's own helpers they return
``None``: in Jupyter a returned figure would be shown a second time by the inline
backend. Without an ``ax``/``fig`` they draw where the notebook did (pyplot's current
axes, or a new pyplot figure), so its cells work unchanged; with one they touch nothing
else, and the caller owns the figure. None of them calls ``plt.show()``.

Every panel is labelled: a title, its axes (coordinates in the model's standardized
units) and, for a density, a colour bar in nats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.contour import QuadContourSet
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator
from torch import Tensor
from torch.distributions import Distribution

from flowforge.flow import NormalizingFlow
from flowforge.layers import Coupling, Inverse, MaskedAutoregressive

# The layers that count as steps of a flow in ``part_model`` and ``plot_model_steps``.
STEP_LAYERS = (Coupling, MaskedAutoregressive, Inverse)

DENSITY_LABEL = "log-density (nats)"
X_LABELS = ("x₁ (standardized)", "x₂ (standardized)")
Z_LABELS = ("z₁ (latent)", "z₂ (latent)")
SHORT_LABELS = ("x₁", "x₂")
DENSITY_LEVELS = 12  # filled-contour levels of a log-density panel

_CHUNK = 1 << 16


def _current_axes() -> Axes:
    import matplotlib.pyplot as plt

    return plt.gca()


def _new_figure(figsize: tuple[float, float]) -> Figure:
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize, layout="constrained")


def _placement(model: torch.nn.Module | Distribution) -> tuple[torch.device, torch.dtype]:
    """The device and floating dtype of a model's tensors (the CPU and float32 by default)."""
    if isinstance(model, torch.nn.Module):
        for t in (*model.parameters(), *model.buffers()):
            if t.is_floating_point():
                return t.device, t.dtype
    return torch.device("cpu"), torch.get_default_dtype()


def _log_prob(model: torch.nn.Module | Distribution, x: Tensor) -> np.ndarray:
    """``model.log_prob`` of the rows of ``x`` in chunks, without autograd, as numpy."""
    device, dtype = _placement(model)
    out = []
    with torch.no_grad():
        for chunk in x.split(_CHUNK):
            out.append(model.log_prob(chunk.to(device, dtype)).double().cpu().numpy())
    return np.concatenate(out)


def _sample(model: torch.nn.Module | Distribution, n: int) -> np.ndarray:
    with torch.no_grad():
        samples = model.sample([n]) if isinstance(model, Distribution) else model.sample(n)
    return samples.detach().double().cpu().numpy()


def _label_axes(ax: Axes, title: str, labels: tuple[str, str] = X_LABELS) -> None:
    ax.set_title(title)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])


def log_prob_grid(
    model: torch.nn.Module | Distribution,
    xmin: float = -2.5,
    xmax: float = 2.5,
    steps: int = 500,
    min_prob: float = -10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The log-density on a ``steps x steps`` grid over ``[xmin, xmax]^2``, as plotted.

    Returns ``(x0, x1, log_p)``, each ``(steps, steps)`` (``indexing="ij"``); values below
    ``min_prob`` (including ``-inf`` outside a bounded support) are set to
    ``min_prob - 1``, as in the notebook, so the colour scale shows the interesting range.
    """
    x0, x1 = torch.meshgrid(
        torch.linspace(xmin, xmax, steps=steps),
        torch.linspace(xmin, xmax, steps=steps),
        indexing="ij",
    )
    x = torch.stack([x0.flatten(), x1.flatten()], dim=1)
    y = _log_prob(model, x).reshape(x0.shape)
    y[y < min_prob] = min_prob - 1
    return x0.numpy(), x1.numpy(), y


def density_levels(grids: Sequence[np.ndarray], min_prob: float) -> list[float]:
    """Round contour levels from ``min_prob - 1`` (the clipped value, or below) to the
    highest value of the log-density ``grids`` (or above), so that every point is filled
    and one colour bar is true for every panel drawn with them."""
    top = max(float(np.max(y)) for y in grids)
    top = top if top > min_prob - 1 else min_prob
    return MaxNLocator(nbins=DENSITY_LEVELS).tick_values(min_prob - 1, top).tolist()


def _draw_density(
    ax: Axes, grid: tuple[np.ndarray, np.ndarray, np.ndarray], levels: list[float]
) -> QuadContourSet:
    """Filled contours of a ``log_prob_grid`` at ``levels``."""
    x0, x1, y = grid
    return ax.contourf(x0, x1, y, levels=levels)


def plot_log_prob(
    model: torch.nn.Module | Distribution,
    xmin: float = -2.5,
    xmax: float = 2.5,
    steps: int = 500,
    min_prob: float = -10,
    colorbar: bool = True,
    *,
    ax: Axes | None = None,
    title: str = "log-density",
) -> None:
    """Filled contours of ``model``'s log-density over the square ``[xmin, xmax]^2`` (nats).

    ``model`` is anything with ``log_prob`` of ``(n, 2)`` points (a flow, a
    ``Multivariate``, a torch distribution). Values below ``min_prob`` are clipped (see
    ``log_prob_grid``). Draws into ``ax`` (default: the current axes), with ``title``,
    axis labels and (``colorbar``) a colour bar labelled in nats.
    """
    ax = ax if ax is not None else _current_axes()
    grid = log_prob_grid(model, xmin, xmax, steps, min_prob)
    contours = _draw_density(ax, grid, density_levels([grid[2]], min_prob))
    _label_axes(ax, title)
    if colorbar:
        ax.figure.colorbar(contours, ax=ax, label=DENSITY_LABEL)


def plot_samples(
    model: torch.nn.Module | Distribution,
    n: int = 10000,
    xmin: float = -2.5,
    xmax: float = 2.5,
    *,
    ax: Axes | None = None,
    style: str = "b.",
    alpha: float = 0.1,
    title: str | None = None,
) -> None:
    """``n`` samples of ``model`` as dots over the square ``[xmin, xmax]^2``, titled
    ``title`` (default: ``"10,000 samples"``)."""
    ax = ax if ax is not None else _current_axes()
    samples = _sample(model, n)
    ax.plot(samples[:, 0], samples[:, 1], style, alpha=alpha)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(xmin, xmax)
    _label_axes(ax, title if title is not None else f"{n:,} samples")


def plot_log_prob_and_samples(
    model: torch.nn.Module | Distribution,
    n: int = 10000,
    xmin: float = -2.5,
    xmax: float = 2.5,
    steps: int = 500,
    min_prob: float = -10,
    *,
    fig: Figure | None = None,
    suptitle: str | None = None,
) -> None:
    """Log-density (left) and ``n`` samples (right) side by side, as in the notebook's
    10.3 (b); ``suptitle`` above both (say, which label a conditional model is given)."""
    fig = fig if fig is not None else _new_figure((12, 4))
    plot_log_prob(model, xmin, xmax, steps, min_prob, ax=fig.add_subplot(1, 2, 1))
    plot_samples(model, n, xmin, xmax, ax=fig.add_subplot(1, 2, 2))
    if suptitle:
        fig.suptitle(suptitle)


def plot_samples_on_data(
    model: torch.nn.Module | Distribution,
    data: Tensor | np.ndarray,
    n: int = 10000,
    xmin: float = -2.5,
    xmax: float = 2.5,
    *,
    ax: Axes | None = None,
) -> None:
    """``n`` model samples (blue) with the data drawn over them (red), as in the
    notebook's 10.5 (d); a legend with opaque markers says which is which."""
    ax = ax if ax is not None else _current_axes()
    points = np.asarray(torch.as_tensor(data).detach().cpu())
    plot_samples(model, n, xmin, xmax, ax=ax, title=f"{n:,} model samples and the data")
    ax.plot(points[:, 0], points[:, 1], "r.", alpha=0.3, markersize=2)
    ax.legend(
        handles=[
            Line2D([], [], color="b", marker=".", ls="", markersize=8, label="model samples"),
            Line2D([], [], color="r", marker=".", ls="", markersize=8, label="data"),
        ],
        loc="upper right",
    )


def _mass_levels(base: torch.nn.Module, probabilities: Sequence[float]) -> np.ndarray:
    """Log-density levels whose upper sets hold ``probabilities`` of the base's mass."""
    with torch.no_grad():
        draws = base.sample(20_000)
        log_p = base.log_prob(draws).double().cpu().numpy()
    return np.unique(np.quantile(log_p, [1 - p for p in probabilities]))


def _draw_base_density(ax: Axes, base: torch.nn.Module, limit: float) -> Line2D:
    """Contours of ``base``'s density that enclose 39%, 86% and 99% of its mass; returns
    a legend handle for them."""
    levels = _mass_levels(base, (0.99, 0.86, 0.39))
    x0, x1, y = log_prob_grid(base, -limit, limit, 200, min_prob=levels[0] - 1)
    if len(levels) == 1:  # a flat density (uniform base): draw its support's edge
        levels = levels - 0.5
        label = "base density: edge of its support"
    else:
        label = "base density: 39/86/99% of its mass"
    ax.contour(x0, x1, y, levels=levels, colors="k", linewidths=1.0, linestyles="solid")
    return Line2D([], [], color="k", lw=1.0, label=label)


def plot_inverse_samples(
    model: NormalizingFlow,
    data: Tensor | np.ndarray,
    *,
    ax: Axes | None = None,
    show_base: bool = True,
) -> None:
    """The data pushed back to latent space (``model.flow.inverse``), as in the notebook's 10.5 (f).

    With ``show_base`` the base distribution's density is drawn as contour lines for
    reference (a well-trained flow maps the data onto them); a legend says what each is.
    """
    ax = ax if ax is not None else _current_axes()
    device, dtype = _placement(model)
    x = torch.as_tensor(np.asarray(data) if not isinstance(data, Tensor) else data)
    with torch.no_grad():
        z, _ = model.flow.inverse(x.to(device, dtype))
    z = z.detach().double().cpu().numpy()
    ax.scatter(z[:, 0], z[:, 1], c="b", alpha=0.1)
    handles = [Line2D([], [], color="b", marker="o", ls="", label="data, through the inverse")]
    if show_base and len(z):
        finite = z[np.isfinite(z).all(axis=1)]
        limit = max(3.5, float(np.quantile(np.abs(finite), 0.999))) if len(finite) else 3.5
        handles.append(_draw_base_density(ax, model.base_distribution, limit))
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    _label_axes(ax, "the data in latent space", Z_LABELS)
    ax.legend(handles=handles, loc="upper right", fontsize="small")


def part_model(
    model: NormalizingFlow,
    num_coupling_layers: int,
    counted: type | tuple[type, ...] = STEP_LAYERS,
) -> NormalizingFlow:
    """A flow that shares ``model``'s base and layers but keeps only its first
    ``num_coupling_layers`` coupling layers (all other layers stay), as in the notebook;
    autoregressive layers (and ``Inverse`` ones) count as coupling layers.

    ``counted`` are the layer types that count as coupling layers.
    """
    layers = []
    for layer in model.flow.layers:
        if isinstance(layer, counted):
            if num_coupling_layers > 0:
                num_coupling_layers -= 1
                layers.append(layer)
        else:
            layers.append(layer)
    return NormalizingFlow(model.base_distribution, *layers)


def _step_title(i: int) -> str:
    return f"{i} coupling{'' if i == 1 else 's'}"


def _draw_step_rows(
    fig: Figure, models: Sequence[NormalizingFlow], steps: int, grid_steps: int
) -> np.ndarray:
    """The log-density of each model after 0 ... ``steps - 1`` couplings, one row per
    model, all on one colour scale with one labelled colour bar; returns the axes.
    The panels are small, so their axis labels are short (``x₁``, ``x₂``)."""
    min_prob = -10
    grids = [
        [log_prob_grid(part_model(m, i), steps=grid_steps, min_prob=min_prob) for i in range(steps)]
        for m in models
    ]
    levels = density_levels([g[2] for row in grids for g in row], min_prob)
    axes = fig.subplots(len(models), steps, squeeze=False)
    for row, row_grids in zip(axes, grids):
        for i, (ax, grid) in enumerate(zip(row, row_grids)):
            contours = _draw_density(ax, grid, levels)
            _label_axes(ax, _step_title(i), SHORT_LABELS)
    fig.colorbar(contours, ax=axes.ravel().tolist(), label=DENSITY_LABEL)
    return axes


def plot_model_steps(
    model: NormalizingFlow,
    steps: int,
    *,
    fig: Figure | None = None,
    grid_steps: int = 500,
) -> None:
    """The log-density after 0, 1, ..., ``steps - 1`` coupling layers, in one row (10.5 g),
    on one colour scale (one colour bar, in nats)."""
    fig = fig if fig is not None else _new_figure((3 * steps + 1, 3))
    _draw_step_rows(fig, [model], steps, grid_steps)


def plot_compare_model_steps(
    models: Mapping[str, NormalizingFlow],
    steps: int,
    *,
    fig: Figure | None = None,
    grid_steps: int = 500,
) -> None:
    """``plot_model_steps`` for several models, one row each, labelled by the mapping's
    keys, all on one colour scale.

    The notebook's question 10.5 (h): do two trainings learn the same layers?
    """
    rows = len(models)
    fig = fig if fig is not None else _new_figure((3 * steps + 1, 3 * rows))
    axes = _draw_step_rows(fig, list(models.values()), steps, grid_steps)
    for name, row in zip(models, axes):
        row[0].set_ylabel(f"{name}\n{SHORT_LABELS[1]}")
