"""Invertible linear layers: ``LULinear`` (learned) and the fixed ``Permute`` and ``Reverse``."""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.gradients import Batch, Plumbing, has_hooks, owns_handwritten
from flowforge.layers.base import FlowLayer, require_matrix
from flowforge.values import Value


def lu_solve(lower: Tensor, upper: Tensor, rhs: Tensor) -> Tensor:
    """``z`` with ``lower @ upper @ z = rhs`` (``lower`` unit lower triangular): two
    triangular solves, in float32 for float16/bfloat16 (torch has no half-precision
    triangular solve) and the result cast back to ``rhs``'s dtype."""
    dtype = rhs.dtype
    if dtype in (torch.float16, torch.bfloat16):
        lower, upper, rhs = lower.float(), upper.float(), rhs.float()
    y = torch.linalg.solve_triangular(lower, rhs, upper=False, unitriangular=True)
    return torch.linalg.solve_triangular(upper, y, upper=True).to(dtype)


def _permute_columns(z: Tensor, order: Tensor) -> Tensor:
    return z.index_select(1, order)


class Permute(FlowLayer):
    """Reorder the columns: ``x = z[:, permutation]``. Volume preserving.

    ``Permute(width)`` draws a random permutation once, at construction (from
    ``generator`` when given); ``Permute(permutation=[...])`` uses the one given. It is
    kept as a buffer, so a saved model reloads with the same order.
    """

    volume_preserving = True

    def __init__(
        self,
        width: int | None = None,
        *,
        permutation: list[int] | Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if permutation is None:
            if width is None:
                raise ValueError("give Permute a width or a permutation")
            permutation = torch.randperm(width, generator=generator)
        order = torch.as_tensor(permutation, dtype=torch.long)
        if sorted(order.tolist()) != list(range(len(order))):
            raise ValueError(f"not a permutation of 0..{len(order) - 1}: {order.tolist()}")
        self.register_buffer("permutation", order)
        self.register_buffer("inverse_permutation", torch.argsort(order))

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_matrix(self, z, len(self.permutation))
        return _permute_columns(z, self.permutation), z.new_zeros(z.shape[0])

    def inverse(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_matrix(self, z, len(self.permutation))
        return _permute_columns(z, self.inverse_permutation), z.new_zeros(z.shape[0])


class Reverse(FlowLayer):
    """Reverse the order of the columns, for any width. Volume preserving; its own inverse."""

    volume_preserving = True

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_matrix(self, z)
        return z.flip(1), z.new_zeros(z.shape[0])

    inverse = forward

    def handwritten(self) -> ReverseGradients | None:
        """The hand-written form: the feature-major rows reversed, and the gradient likewise."""
        supported = not has_hooks(self) and owns_handwritten(self, "forward", "inverse")
        return ReverseGradients() if supported else None


class ReverseGradients(Plumbing):
    """The hand-written inverse of ``Reverse`` on feature-major rows, and its backward."""

    def inverse(self, z: Tensor, batch: Batch) -> tuple[Tensor, None, None]:
        return z.flip(0), None, None

    def backward(self, saved: None, g: Tensor, batch: Batch) -> Tensor:
        return g.flip(0)


class LULinear(FlowLayer):
    """``x = z W^T + b`` with ``W = P L U``, learned through its LU factors.

    ``P`` is a fixed permutation, ``L`` unit lower triangular and ``U`` upper
    triangular with diagonal ``sign * exp(log_diagonal)``, so ``W`` is invertible for
    any parameter values and ``log|det W| = sum(log_diagonal)`` costs ``O(width)``.
    The inverse solves two triangular systems (in float32 for float16/bfloat16
    inputs, cast back: ``lu_solve``). Starts at a random rotation (the LU
    factors of a random orthogonal matrix) and zero bias. The LU parametrization is
    Glow's (Kingma and Dhariwal, Glow: Generative flow with invertible 1x1
    convolutions, NeurIPS 2018).

    Args:
        width: The number of dimensions.
        generator: Draws the starting rotation (torch's global generator when ``None``).

    Example:
        >>> import torch
        >>> from flowforge import check_flow
        >>> from flowforge.layers import LULinear
        >>> layer = LULinear(3, generator=torch.Generator().manual_seed(0))
        >>> x, log_det = layer(torch.randn(4, 3))
        >>> log_det.abs().max() < 1e-5  # a rotation at first: |det W| = 1
        tensor(True)
        >>> check_flow(layer, torch.randn(4, 3))
    """

    def __init__(self, width: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(width, width, generator=generator))
        p, lower, upper = torch.linalg.lu(q)
        diagonal = upper.diagonal()
        self.register_buffer("permutation", p)
        self.register_buffer("sign", diagonal.sign())
        self.lower = torch.nn.Parameter(lower.tril(-1))
        self.upper = torch.nn.Parameter(upper.triu(1))
        self.log_diagonal = torch.nn.Parameter(diagonal.abs().log())
        self.bias = torch.nn.Parameter(torch.zeros(width))

    def _factors(self, like: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        eye = torch.eye(len(self.bias), dtype=like.dtype, device=like.device)
        lower = self.lower.to(like.dtype).tril(-1) + eye
        diagonal = (self.sign * self.log_diagonal.exp()).to(like.dtype)
        upper = self.upper.to(like.dtype).triu(1) + torch.diag(diagonal)
        return self.permutation.to(like.dtype), lower, upper

    def _log_det(self, z: Tensor) -> Tensor:
        return self.log_diagonal.to(z.dtype).sum().expand(z.shape[0])

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_matrix(self, z, len(self.bias))
        p, lower, upper = self._factors(z)
        weight = p @ lower @ upper
        return z @ weight.T + self.bias.to(z.dtype), self._log_det(z)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = require_matrix(self, x, len(self.bias))
        p, lower, upper = self._factors(x)
        # z W^T = x - b  <=>  W z^T = (x - b)^T  <=>  L U z^T = P^T (x - b)^T.
        rhs = p.T @ (x - self.bias.to(x.dtype)).T
        return lu_solve(lower, upper, rhs).T, -self._log_det(x)

    def extra_repr(self) -> str:
        return f"width={len(self.bias)}"
