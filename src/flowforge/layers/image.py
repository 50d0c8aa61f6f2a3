"""Glow's per-channel layers for images ``(B, C, H, W)``: ``ImageActNorm``, ``InvertibleConv1x1``.

Both act the same way at every pixel, so their log-determinants are ``H·W`` times the
per-pixel one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.layers.linear import LULinear, lu_solve
from flowforge.layers.multiscale import require_image
from flowforge.layers.normalization import ActNorm
from flowforge.values import Value


def _per_channel(t: Tensor, like: Tensor) -> Tensor:
    """A ``(C,)`` tensor shaped ``(1, C, 1, 1)`` in ``like``'s dtype, to broadcast over images."""
    return t.to(like.dtype).view(1, -1, 1, 1)


class ImageActNorm(ActNorm):
    """Glow's activation normalization: ``x = z * exp(log_scale) + shift`` per channel.

    ``log_scale`` and ``shift`` have one entry per channel, shared by every pixel, so the
    log-determinant of ``forward`` is ``H·W·sum(log_scale)``. ``initialize_actnorm``
    (an ``ActNorm``, so it is found) sets them from data so that each channel of the
    images reaching this layer leaves ``inverse`` with zero mean and unit variance over
    the batch and the pixels. Uninitialized, it is the identity.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels)

    def _log_det(self, z: Tensor) -> Tensor:
        return super()._log_det(z) * (z.shape[2] * z.shape[3])

    def _initialize(self, data_side: Tensor, eps: float = 1e-6) -> None:
        # ActNorm's statistics with every pixel of every image as one row of C channels
        super()._initialize(data_side.transpose(1, -1).reshape(-1, self.width), eps)

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_image(self, z, self.width)
        x = z * _per_channel(self.log_scale, z).exp() + _per_channel(self.shift, z)
        return x, self._log_det(z)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = require_image(self, x, self.width)
        if self._pending:
            self._initialize(x)
        z = (x - _per_channel(self.shift, x)) * (-_per_channel(self.log_scale, x)).exp()
        return z, -self._log_det(x)

    def extra_repr(self) -> str:
        return f"channels={self.width}, initialized={bool(self.initialized)}"


class InvertibleConv1x1(LULinear):
    """Glow's invertible 1×1 convolution: ``x[:, :, i, j] = W z[:, :, i, j] + b`` at every pixel.

    ``W = P L U`` is learned through its LU factors as in ``LULinear`` (``P`` fixed,
    ``L`` unit lower triangular, ``U`` upper triangular with ``log|diagonal|`` learned),
    so ``log|det ∂x/∂z| = H·W·sum(log|diag U|)`` costs ``O(C)`` and the inverse solves
    two triangular systems (in float32 for float16/bfloat16, cast back). Starts at a
    random rotation with zero bias.
    """

    def __init__(self, channels: int, *, generator: torch.Generator | None = None) -> None:
        super().__init__(channels, generator=generator)

    def _image_log_det(self, z: Tensor) -> Tensor:
        return self._log_det(z) * (z.shape[2] * z.shape[3])

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_image(self, z, len(self.bias))
        p, lower, upper = self._factors(z)
        weight = p @ lower @ upper
        x = torch.einsum("oc,bchw->bohw", weight, z) + _per_channel(self.bias, z)
        return x, self._image_log_det(z)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = require_image(self, x, len(self.bias))
        b, c, h, w = x.shape
        p, lower, upper = self._factors(x)
        # Columns are pixels: solve L U z = P^T (x - b) for all of them at once.
        rhs = p.T @ (x - _per_channel(self.bias, x)).transpose(0, 1).reshape(c, -1)
        z = lu_solve(lower, upper, rhs)
        return z.reshape(c, b, h, w).transpose(0, 1), -self._image_log_det(x)

    def extra_repr(self) -> str:
        return f"channels={len(self.bias)}"
