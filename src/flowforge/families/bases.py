"""Base distributions by name, as builders and run configs name them (``base="normal"``)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import Normal, Uniform

from flowforge.distributions import Multivariate
from flowforge.distributions.mixture import GaussianMixture

BASES: dict[str, Callable[[int], torch.nn.Module]] = {
    "normal": lambda width: Multivariate(width, Normal(0.0, 1.0)),
    # Wide enough to cover standardized data at initialization (the flow starts near
    # the identity), yet bounded: the course notebook's exercise with a uniform base.
    "uniform": lambda width: Multivariate(width, Uniform(-3.0, 3.0)),
    # 24 learnable full-covariance Gaussians; fit them with initialize_mixture(model, data).
    "mixture": lambda width: GaussianMixture(width, 24),
}


def base_distribution(name: str, width: int) -> torch.nn.Module:
    """A named base distribution over ``width`` dimensions: ``"normal"``, ``"uniform"`` or
    ``"mixture"`` (a ``GaussianMixture`` of 24 components, to be fitted by
    ``initialize_mixture`` before training)."""
    try:
        return BASES[name](width)
    except KeyError:
        raise ValueError(f"unknown base {name!r}; choose one of {sorted(BASES)}") from None
