"""Learning curves: training and held-out NLL per epoch, readable however training began.

A run's first epochs can lie far above the rest; drawn in full, the later epochs would be
a flat line, so ``curve_limits`` leaves such epochs out of the y-range and the title says
so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from flowforge.workbench.figures.plots import _current_axes

# Epochs that may be left out of the learning curves' y-range, at most.
CLIPPED_EPOCHS = 5


def curve_limits(values: np.ndarray) -> tuple[float, float, int]:
    """The y-range of learning curves ``values`` (``(curves, epochs)``, NaN where missing)
    and how many first epochs it leaves out (the last of them lies above the range).

    The first epochs (up to ``CLIPPED_EPOCHS``, a tenth of them) are left out when they
    lie so far above the rest that drawn in full the later epochs would be a flat line
    (they would fill under a third of the axis).
    """
    epochs = values.shape[1]
    finite = values[np.isfinite(values)]
    if not len(finite):
        return 0.0, 1.0, 0
    skip = min(CLIPPED_EPOCHS, max(1, epochs // 10)) if epochs >= 4 else 0
    later = values[:, skip:]
    later = later[np.isfinite(later)]
    low, high = float(finite.min()), float(finite.max())
    clipped = 0
    if skip and len(later):
        spread = float(later.max() - later.min())
        if high - low > 3 * spread:
            first = np.where(np.isfinite(values[:, :skip]), values[:, :skip], -np.inf).max(axis=0)
            above = np.flatnonzero(first > later.max() + spread)
            clipped = int(above.max()) + 1 if len(above) else 0
            kept = values[:, clipped:]
            high = float(kept[np.isfinite(kept)].max())
    margin = 0.05 * (high - low) or 0.05 * max(abs(high), 1.0)
    return low - margin, high + margin, clipped


def plot_learning_curves(
    history: Mapping[str, Sequence[float]] | object,
    *,
    ax: Axes | None = None,
    unit: str = "nats per point",
    dims: int | None = None,
    heldout_label: str = "held-out",
) -> None:
    """Training and held-out NLL (in ``unit``) per epoch, with integer epoch ticks; with
    ``dims`` (pixels per image) a second y-axis gives it in bits per dimension;
    ``heldout_label`` names the held-out curve (say, ``"test set"``).

    ``history`` is a ``History`` or a mapping with ``train_nll`` and ``heldout_nll``
    (as in a run's ``metrics.json``); missing held-out values (``None``/NaN) are skipped.
    When the first epochs lie far above the rest they are clipped (``curve_limits``) and
    the axes say so.
    """
    ax = ax if ax is not None else _current_axes()
    get = history.get if isinstance(history, Mapping) else lambda k: getattr(history, k)
    curves = []
    for key, label in (("train_nll", "training (running mean)"), ("heldout_nll", heldout_label)):
        values = np.array([np.nan if v is None else v for v in get(key)], dtype=float)
        curves.append(values)
        if np.isfinite(values).any():
            ax.plot(np.arange(1, len(values) + 1), values, "o-", label=label, markersize=3)
    epochs = max(len(c) for c in curves)
    padded = np.full((len(curves), epochs), np.nan)
    for row, values in zip(padded, curves):
        row[: len(values)] = values
    low, high, clipped = curve_limits(padded)
    ax.set_ylim(low, high)
    title = "learning curves"
    if clipped:
        first = "epoch 1" if clipped == 1 else f"epochs 1–{clipped}"
        title += f" ({first} clipped: up to {np.nanmax(padded[:, :clipped]):.4g})"
    ax.set_title(title)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"NLL ({unit})")
    if dims:
        scale = dims * math.log(2)
        right = ax.secondary_yaxis("right", functions=(lambda y: y / scale, lambda b: b * scale))
        right.set_ylabel("bits per dimension")
    ax.legend()
    ax.grid(alpha=0.3)
