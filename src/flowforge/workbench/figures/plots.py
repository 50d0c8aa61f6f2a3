"""The notebook's figures, as library functions: each draws into an axis or a figure and returns it.

The names and leading arguments are the notebook's (``plot_log_prob``,
``plot_samples``, ``plot_log_prob_and_samples``, ``plot_inverse_samples``,
``part_model``, ``plot_model_steps``). Without an ``ax``/``fig`` they draw where the
notebook did (pyplot's current axes, or a new pyplot figure), so its cells work
unchanged; with one they touch nothing else. None of them calls ``plt.show()``.

All coordinates are in the model's (standardized) units; densities are in nats.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from torch import Tensor
from torch.distributions import Distribution

from flowforge.flow import NormalizingFlow
from flowforge.layers import Coupling, Inverse, MaskedAutoregressive

# The layers that count as steps of a flow in ``part_model`` and ``plot_model_steps``.
STEP_LAYERS = (Coupling, MaskedAutoregressive, Inverse)

_CHUNK = 1 << 16


def _current_axes() -> Axes:
    import matplotlib.pyplot as plt

    return plt.gca()


def _new_figure(figsize: tuple[float, float]) -> Figure:
    import matplotlib.pyplot as plt

    return plt.figure(figsize=figsize)


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


def plot_log_prob(
    model: torch.nn.Module | Distribution,
    xmin: float = -2.5,
    xmax: float = 2.5,
    steps: int = 500,
    min_prob: float = -10,
    colorbar: bool = True,
    *,
    ax: Axes | None = None,
) -> Figure:
    """Filled contours of ``model``'s log-density over the square ``[xmin, xmax]^2`` (nats).

    ``model`` is anything with ``log_prob`` of ``(n, 2)`` points (a flow, a
    ``Multivariate``, a torch distribution). Values below ``min_prob`` are clipped (see
    ``log_prob_grid``). Draws into ``ax`` (default: the current axes); returns its figure.
    """
    ax = ax if ax is not None else _current_axes()
    x0, x1, y = log_prob_grid(model, xmin, xmax, steps, min_prob)
    contours = ax.contourf(x0, x1, y)
    if colorbar:
        ax.figure.colorbar(contours, ax=ax)
    return ax.figure


def plot_samples(
    model: torch.nn.Module | Distribution,
    n: int = 10000,
    xmin: float = -2.5,
    xmax: float = 2.5,
    *,
    ax: Axes | None = None,
    style: str = "b.",
    alpha: float = 0.1,
) -> Figure:
    """``n`` samples of ``model`` as dots over the square ``[xmin, xmax]^2``; returns the figure."""
    ax = ax if ax is not None else _current_axes()
    samples = _sample(model, n)
    ax.plot(samples[:, 0], samples[:, 1], style, alpha=alpha)
    ax.set_xlim(xmin, xmax)
    ax.set_ylim(xmin, xmax)
    return ax.figure


def plot_log_prob_and_samples(
    model: torch.nn.Module | Distribution,
    n: int = 10000,
    xmin: float = -2.5,
    xmax: float = 2.5,
    steps: int = 500,
    min_prob: float = -10,
    *,
    fig: Figure | None = None,
) -> Figure:
    """Log-density (left) and ``n`` samples (right) side by side, as in the notebook's 10.3 (b)."""
    fig = fig if fig is not None else _new_figure((12, 4))
    plot_log_prob(model, xmin, xmax, steps, min_prob, ax=fig.add_subplot(1, 2, 1))
    plot_samples(model, n, xmin, xmax, ax=fig.add_subplot(1, 2, 2))
    return fig


def plot_samples_on_data(
    model: torch.nn.Module | Distribution,
    data: Tensor | np.ndarray,
    n: int = 10000,
    xmin: float = -2.5,
    xmax: float = 2.5,
    *,
    ax: Axes | None = None,
) -> Figure:
    """The data (red) with ``n`` model samples over it (blue), as in the notebook's 10.5 (d)."""
    ax = ax if ax is not None else _current_axes()
    points = np.asarray(torch.as_tensor(data).detach().cpu())
    ax.plot(points[:, 0], points[:, 1], "r.", alpha=0.05)
    return plot_samples(model, n, xmin, xmax, ax=ax)


def _mass_levels(base: torch.nn.Module, probabilities: Sequence[float]) -> np.ndarray:
    """Log-density levels whose upper sets hold ``probabilities`` of the base's mass."""
    with torch.no_grad():
        draws = base.sample(20_000)
        log_p = base.log_prob(draws).double().cpu().numpy()
    return np.unique(np.quantile(log_p, [1 - p for p in probabilities]))


def _draw_base_density(ax: Axes, base: torch.nn.Module, limit: float) -> None:
    """Contours of ``base``'s density that enclose 39%, 86% and 99% of its mass."""
    levels = _mass_levels(base, (0.99, 0.86, 0.39))
    x0, x1, y = log_prob_grid(base, -limit, limit, 200, min_prob=levels[0] - 1)
    if len(levels) == 1:  # a flat density (uniform base): draw its support's edge
        levels = levels - 0.5
    ax.contour(x0, x1, y, levels=levels, colors="k", linewidths=1.0)
    ax.set_title("data in latent space; lines: base density (39/86/99% of its mass)")


def plot_inverse_samples(
    model: NormalizingFlow,
    data: Tensor | np.ndarray,
    *,
    ax: Axes | None = None,
    show_base: bool = True,
) -> Figure:
    """The data pushed back to latent space (``model.flow.inverse``), as in the notebook's 10.5 (f).

    With ``show_base`` the base distribution's density is drawn as contour lines for
    reference: a well-trained flow maps the data onto them.
    """
    ax = ax if ax is not None else _current_axes()
    device, dtype = _placement(model)
    x = torch.as_tensor(np.asarray(data) if not isinstance(data, Tensor) else data)
    with torch.no_grad():
        z, _ = model.flow.inverse(x.to(device, dtype))
    z = z.detach().double().cpu().numpy()
    ax.scatter(z[:, 0], z[:, 1], c="b", alpha=0.1)
    if show_base and len(z):
        finite = z[np.isfinite(z).all(axis=1)]
        limit = max(3.5, float(np.quantile(np.abs(finite), 0.999))) if len(finite) else 3.5
        _draw_base_density(ax, model.base_distribution, limit)
        ax.set_xlim(-limit, limit)
        ax.set_ylim(-limit, limit)
    return ax.figure


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


def plot_model_steps(
    model: NormalizingFlow,
    steps: int,
    *,
    fig: Figure | None = None,
    grid_steps: int = 500,
) -> Figure:
    """The log-density after 0, 1, ..., ``steps - 1`` coupling layers, in one row (10.5 g)."""
    fig = fig if fig is not None else _new_figure((3 * steps, 3))
    for i in range(steps):
        ax = fig.add_subplot(1, steps, i + 1)
        plot_log_prob(part_model(model, i), steps=grid_steps, colorbar=False, ax=ax)
        ax.set_title(_step_title(i))
    return fig


def plot_compare_model_steps(
    models: Mapping[str, NormalizingFlow],
    steps: int,
    *,
    fig: Figure | None = None,
    grid_steps: int = 500,
) -> Figure:
    """``plot_model_steps`` for several models, one row each, labelled by the mapping's keys.

    The notebook's question 10.5 (h): do two trainings learn the same layers?
    """
    rows = len(models)
    fig = fig if fig is not None else _new_figure((3 * steps, 3 * rows))
    for r, (name, model) in enumerate(models.items()):
        for i in range(steps):
            ax = fig.add_subplot(rows, steps, r * steps + i + 1)
            plot_log_prob(part_model(model, i), steps=grid_steps, colorbar=False, ax=ax)
            ax.set_title(_step_title(i) if r == 0 else "")
            if i == 0:
                ax.set_ylabel(name)
    return fig


def plot_learning_curves(
    history: Mapping[str, Sequence[float]] | object, *, ax: Axes | None = None
) -> Figure:
    """Training and held-out NLL (nats per point) per epoch.

    ``history`` is a ``History`` or a mapping with ``train_nll`` and ``heldout_nll``
    (as in a run's ``metrics.json``); missing held-out values (``None``/NaN) are skipped.
    """
    ax = ax if ax is not None else _current_axes()
    get = history.get if isinstance(history, Mapping) else lambda k: getattr(history, k)
    for key, label in (("train_nll", "training (running mean)"), ("heldout_nll", "held-out")):
        values = np.array([np.nan if v is None else v for v in get(key)], dtype=float)
        if np.isfinite(values).any():
            ax.plot(np.arange(1, len(values) + 1), values, "o-", label=label, markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("NLL (nats per point)")
    ax.legend()
    ax.grid(alpha=0.3)
    return ax.figure
