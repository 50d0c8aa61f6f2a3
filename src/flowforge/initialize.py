"""The explicit, data-dependent start of a fresh model, run once before training."""

from __future__ import annotations

import torch

from flowforge.distributions.mixture import initialize_mixture
from flowforge.layers.normalization import initialize_actnorm


def initialize_from_data(
    model: torch.nn.Module, data: torch.Tensor, *context: torch.Tensor, seed: int = 0
) -> None:
    """Initialize ``model``'s ``ActNorm`` layers from ``data`` ``(n, width)``, then fit its
    ``GaussianMixture`` base (if it has one) to the data's latent image. Layers and bases
    already initialized are left alone; a model with neither is unchanged."""
    initialize_actnorm(model, data, *context)
    initialize_mixture(model, data, *context, seed=seed)
