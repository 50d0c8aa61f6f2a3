"""``SplineCoupling``: a coupling layer whose elementwise map is a rational-quadratic spline."""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.layers.coupling import Coupling, _split_pair
from flowforge.transformers.base import SplineTransformer
from flowforge.transformers.spline import DEFAULT_BOUND
from flowforge.values import Value, sum_per_sample


class SplineCoupling(Coupling):
    """Neural spline coupling (Durkan et al. 2019) on a pair ``(z_A, z_B)``.

    ``block(z_A [, context])`` gives ``3 * bins - 1`` numbers for every element of
    ``z_B`` (build it with ``block(dim_A, dim_B, hidden, outputs_per_dim=3 * bins - 1)``);
    each element of ``z_B`` then goes through its own monotone rational-quadratic spline
    on ``[-bound, bound]``, the identity outside. ``z_A`` passes through. A block whose
    output layer is zero (``zero_init=True``) makes the layer the identity.
    """

    def __init__(self, block: torch.nn.Module, bins: int = 8, bound: float = DEFAULT_BOUND) -> None:
        super().__init__(block)
        self.transformer = SplineTransformer(bins, bound)

    def _params(self, zA: Tensor, zB: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        n = self.transformer.params_per_element
        return torch.stack(self.parameters_for(zA, zB, context, n), dim=-1)

    def forward(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        zA, zB = _split_pair(self, z)
        x, log_det = self.transformer.forward(zB, self._params(zA, zB, context))
        return (zA, x), sum_per_sample(log_det)

    def inverse(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        zA, zB = _split_pair(self, z)
        x, log_det = self.transformer.inverse(zB, self._params(zA, zB, context))
        return (zA, x), sum_per_sample(log_det)
