"""The figures of a target run (``runs.target_kind``): the target's log-density beside the
flow's, the flow's samples on the target, the mass per mode, and the loss per round."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from matplotlib.figure import Figure

GRID = 200
SHOWN = 5000
FLOOR = 12.0  # nats below the peak shown on the density panels


def _grid(target) -> tuple[np.ndarray, np.ndarray, torch.Tensor]:
    low, high = (torch.as_tensor(b, dtype=torch.float64) for b in target.bounds)
    xs = torch.linspace(float(low[0]), float(high[0]), GRID, dtype=torch.float64)
    ys = torch.linspace(float(low[1]), float(high[1]), GRID, dtype=torch.float64)
    points = torch.cartesian_prod(xs, ys)
    return xs.numpy(), ys.numpy(), points


def _density(model, target, metrics: Mapping, seed: int) -> Figure | None:
    """Both log-densities, normalized (the target by its log Z, or by the flow's log Ẑ
    when unknown), on one colour scale clipped ``FLOOR`` nats below the peak."""
    if target.dim != 2 or target.bounds is None:
        return None
    xs, ys, points = _grid(target)
    log_z = target.log_normalizer
    if log_z is None:
        log_z = metrics.get("diagnosis", {}).get("log_z", 0.0)
    with torch.no_grad():
        log_p = (target.log_prob(points).double() - log_z).reshape(GRID, GRID).numpy()
        log_q = model.log_prob(points.float()).double().reshape(GRID, GRID).numpy()
    top = float(np.nanmax(log_p))
    figure = Figure(figsize=(10, 4.2))
    axes = figure.subplots(1, 2, sharey=True)
    for ax, values, title in zip(axes, (log_p, log_q), ("target log p(x)", "flow log q(x)")):
        shown = np.clip(np.nan_to_num(values, nan=-np.inf), top - FLOOR, top)
        mesh = ax.pcolormesh(xs, ys, shown.T, vmin=top - FLOOR, vmax=top, shading="auto")
        ax.set_title(f"{title} (nats, clipped {FLOOR:g} below the peak)", fontsize=9)
        ax.set_xlabel("x₁")
        ax.set_aspect("equal")
    axes[0].set_ylabel("x₂")
    figure.colorbar(mesh, ax=list(axes), shrink=0.8)
    return figure


def _samples(model, target, metrics: Mapping, seed: int) -> Figure:
    """``SHOWN`` samples of the flow (first two coordinates) over the target's contours."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        x = model.sample(SHOWN).double().numpy()
    figure = Figure(figsize=(5, 4.5))
    ax = figure.subplots()
    if target.dim == 2 and target.bounds is not None:
        xs, ys, points = _grid(target)
        with torch.no_grad():
            log_p = target.log_prob(points).double().reshape(GRID, GRID).numpy()
        top = float(np.nanmax(log_p))
        ax.contour(
            xs, ys, log_p.T, levels=np.linspace(top - FLOOR, top, 7), colors="0.6", linewidths=0.6
        )
    ax.scatter(x[:, 0], x[:, 1], s=1, alpha=0.4, color="C3")
    ax.set_title(f"{SHOWN:,} samples of the flow on the target's contours", fontsize=9)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    return figure


def _mode_mass(model, target, metrics: Mapping, seed: int) -> Figure | None:
    """The importance-weighted mass of each mode beside its weight (mixtures only)."""
    d = metrics.get("diagnosis", {})
    mass = d.get("mode_mass")
    if mass is None or getattr(target, "weights", None) is None:
        return None
    weights = np.asarray(target.weights, dtype=float)
    mass = np.asarray(mass, dtype=float)
    figure = Figure(figsize=(max(5, 0.18 * len(mass) + 2), 3.5))
    ax = figure.subplots()
    index = np.arange(len(mass))
    ax.bar(index, mass, color="C0", label="flow (importance-weighted)")
    ax.step(index, weights, where="mid", color="k", label="true weight")
    ax.fill_between(
        index, weights / 2, weights * 2, step="mid", color="0.8", alpha=0.5, label="factor 2"
    )
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("mode")
    ax.set_ylabel("mass")
    ax.legend(fontsize=8)
    return figure


def _loss(model, target, metrics: Mapping, seed: int) -> Figure:
    """The mean loss of every round (``E_q[log q - log p]`` for reverse KL)."""
    figure = Figure(figsize=(5, 3.5))
    ax = figure.subplots()
    ax.plot(np.arange(1, len(metrics["train_loss"]) + 1), metrics["train_loss"])
    ax.set_xlabel("round")
    ax.set_ylabel("mean loss (nats)")
    return figure


FIGURES: dict[str, tuple[str, Callable[..., Figure | None]]] = {
    "density.png": (
        "The target's log-density (normalized by its log Z) beside the flow's, on one "
        "colour scale clipped 12 nats below the peak: a mode the flow dropped is a bright "
        "patch on the left with none on the right.",
        _density,
    ),
    "samples.png": ("Samples of the flow over the target's log-density contours.", _samples),
    "mode_mass.png": (
        "Mass per mode: the flow's importance-weighted mass (bars) against the true weight "
        "(line) and the factor-of-two band (grey).",
        _mode_mass,
    ),
    "loss.png": ("The mean loss of every round of training.", _loss),
}


def target_figures(model, target, metrics: Mapping, *, seed: int = 0) -> dict[str, Figure]:
    """The figures of ``FIGURES`` that apply to ``target``."""
    model = model.eval()
    drawn = {name: draw(model, target, metrics, seed) for name, (_, draw) in FIGURES.items()}
    return {name: figure for name, figure in drawn.items() if figure is not None}
