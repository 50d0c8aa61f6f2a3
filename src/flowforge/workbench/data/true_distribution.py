"""A data set's true distribution, seen in the models' standardized units.

A subclass describes the distribution in the data's original units: ``original_sample``
always, and ``original_log_prob`` where its density is known (``has_density``). This
base maps both through the training data's ``Standardization`` ``s``: a point ``x`` in
model units is ``s⁻¹(x)`` in original units, so

    log p_model(x) = log p(s⁻¹(x)) + log|det ∂s⁻¹/∂x| = log p(s⁻¹(x)) − s.log_abs_det,

and the entropy in model units is the original one plus ``s.log_abs_det``
(``= −Σ log std``): standardizing a set whose columns have standard deviations
above 1 lowers its entropy by ``Σ log std``.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import numpy as np
import torch
from torch import Tensor

from flowforge.errors import NoDensityError
from flowforge.evaluate import NLLEstimate, nll_estimate
from flowforge.workbench.data.standardize import Standardization

WIDTH = 2  # every data set of the suite lies in the plane


class TrueDistribution(ABC):
    """The distribution a data set is drawn from; model units when ``standardization`` is set.

    Subclasses are frozen dataclasses with a ``standardization`` field (``None`` for the
    original units) and implement ``original_sample``, ``detail`` and, when
    ``has_density``, ``original_log_prob``. Points are ``(n, 2)`` float64 tensors;
    log-densities are ``(n,)`` float64, in nats.
    """

    standardization: Standardization | None
    has_density: bool = True

    @abstractmethod
    def original_sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` points in original units, ``(n, 2)`` float64, drawn with ``generator``."""

    def original_log_prob(self, x: Tensor) -> Tensor:
        """Log-density in nats of each row of ``x`` (``(n, 2)`` float64, original units)."""
        raise NoDensityError(self.no_density_message())

    @property
    @abstractmethod
    def detail(self) -> float:
        """The width of the distribution's finest feature (the noise's standard deviation,
        for most sets), in original units: the bandwidth of the fine MMD."""

    def no_density_message(self) -> str:
        return f"{type(self).__name__} has no closed-form density here: no entropy, gap or KL"

    def check_standardization(self) -> None:
        """Raise ``ValueError`` unless the standardization (if any) is 2-D."""
        if self.standardization is not None and self.standardization.width != WIDTH:
            raise ValueError(
                f"the data is 2-D, but the standardization has width {self.standardization.width}"
            )

    @property
    def log_abs_det(self) -> float:
        """``log|det ∂(standardized)/∂(original)|`` (0 without a standardization)."""
        return 0.0 if self.standardization is None else self.standardization.log_abs_det

    @property
    def noise_scale(self) -> float:
        """``detail`` in model units (divided by the geometric mean of the column stds)."""
        if self.standardization is None:
            return self.detail
        return self.detail / math.exp(np.mean(np.log(self.standardization.std)))

    def to_original(self, x: Tensor) -> Tensor:
        """Model units -> the data's original units, as a float64 ``(n, 2)`` tensor."""
        x = torch.as_tensor(x, dtype=torch.float64)
        if x.dim() != 2 or x.shape[1] != WIDTH:
            raise ValueError(f"expected points of shape (n, {WIDTH}), got {tuple(x.shape)}")
        return x if self.standardization is None else self.standardization.inverse_transform(x)

    def log_prob(self, x: Tensor, chunk_size: int = 1 << 16) -> Tensor:
        """Log-density of each row of ``x`` (``(n, 2)``, model units): ``(n,)`` float64, nats.

        Raises ``NoDensityError`` for a distribution without a known density.
        """
        if not self.has_density:
            raise NoDensityError(self.no_density_message())
        x = self.to_original(x)
        parts = [self.original_log_prob(part) for part in x.split(chunk_size)]
        return (torch.cat(parts) if parts else x.new_empty(0)) - self.log_abs_det

    def sample(self, n: int, seed: int | None = None) -> Tensor:
        """``n`` points of this distribution in model units: ``(n, 2)`` float64, the same
        points for the same ``seed``."""
        if int(n) != n or n < 0:
            raise ValueError(f"n must be a non-negative integer, got {n!r}")
        g = torch.Generator().manual_seed(seed if seed is not None else torch.seed())
        x = self.original_sample(int(n), g)
        return x if self.standardization is None else self.standardization.transform(x)

    def entropy(self, n: int = 200_000, seed: int = 0) -> NLLEstimate:
        """Differential entropy ``−E[log p(X)]`` in nats (model units), by Monte Carlo with
        its standard error: the lowest expected NLL any model can reach on this data."""
        return nll_estimate(self.log_prob(self.sample(n, seed)))
