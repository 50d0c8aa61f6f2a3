"""Base distributions over vectors: ``Multivariate`` (the notebook's adapter) and a
learnable ``GaussianMixture``, both modules so ``.to()`` and ``state_dict()`` carry them."""

from flowforge.distributions.mixture import (
    GaussianMixture,
    fit_gaussian_mixture,
    initialize_mixture,
)
from flowforge.distributions.multivariate import Multivariate

__all__ = ["GaussianMixture", "Multivariate", "fit_gaussian_mixture", "initialize_mixture"]
