"""Base distributions over vectors: ``Multivariate`` (the notebook's adapter), a
learnable ``GaussianMixture`` and its heavy-tailed kin ``StudentTMixture``, all modules
so ``.to()`` and ``state_dict()`` carry them."""

from flowforge.distributions.mixture import (
    GaussianMixture,
    StudentTMixture,
    fit_gaussian_mixture,
    initialize_mixture,
)
from flowforge.distributions.multivariate import Multivariate

__all__ = [
    "GaussianMixture",
    "Multivariate",
    "StudentTMixture",
    "fit_gaussian_mixture",
    "initialize_mixture",
]
