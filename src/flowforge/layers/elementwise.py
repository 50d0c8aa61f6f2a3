"""Fixed (or learnable) elementwise maps: ``Scale``, ``Translate`` and ``Logit``."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F

from flowforge.layers.base import FlowLayer
from flowforge.values import Value, sum_per_sample


def as_float_tensor(value: float | list | Tensor, name: str) -> Tensor:
    """Turn a number, a list or a tensor (integer tensors included) into a float tensor."""
    t = torch.as_tensor(value)
    if not t.is_floating_point():
        t = t.to(torch.get_default_dtype())
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return t.detach().clone()


def _store(module: torch.nn.Module, name: str, value: Tensor, learnable: bool) -> None:
    if learnable:
        module.register_parameter(name, torch.nn.Parameter(value))
    else:
        module.register_buffer(name, value)


def _require_tensor(layer: FlowLayer, z: Value) -> Tensor:
    if isinstance(z, tuple):
        raise TypeError(
            f"{type(layer).__name__} acts on a tensor, got a tuple of {len(z)} tensors; "
            "place it before Split or after Merge"
        )
    return z


class Scale(FlowLayer):
    """Multiply by a fixed factor per dimension: ``x = scale * z``.

    Negative factors are allowed; the log-determinant is ``sum(log|scale|)`` over one
    sample's elements.

    Args:
        scale: A number, a list or a tensor broadcastable to one sample (shape
            ``(width,)`` for vectors), non-zero everywhere.
        learnable: Store ``scale`` as a parameter (trained) rather than a float buffer.

    Raises:
        ValueError: If a factor is zero or not finite.

    Example:
        >>> import torch
        >>> from flowforge import Scale
        >>> layer = Scale([2.0, 0.5])
        >>> x, log_det = layer(torch.ones(2, 2))
        >>> x
        tensor([[2.0000, 0.5000],
                [2.0000, 0.5000]])
        >>> log_det  # log 2 + log 0.5
        tensor([0., 0.])
    """

    def __init__(self, scale: float | list | Tensor, learnable: bool = False) -> None:
        super().__init__()
        scale = as_float_tensor(scale, "scale")
        if (scale == 0).any():
            raise ValueError(f"scale must be non-zero to be invertible, got {scale.tolist()}")
        _store(self, "scale", scale, learnable)

    def _log_det(self, z: Tensor, sign: float) -> Tensor:
        log_abs = torch.log(self.scale.to(z.dtype).abs())
        per_sample = log_abs.expand(z.shape[1:]).sum()
        return (sign * per_sample).expand(z.shape[0])

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = _require_tensor(self, z)
        return z * self.scale.to(z.dtype), self._log_det(z, 1.0)

    def inverse(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = _require_tensor(self, z)
        return z / self.scale.to(z.dtype), self._log_det(z, -1.0)


class Translate(FlowLayer):
    """Add a fixed offset per dimension: ``x = z + offset``. Volume preserving.

    Args:
        offset: A number, a list or a tensor broadcastable to one sample.
        learnable: Store ``offset`` as a parameter (trained) rather than a float buffer.

    Raises:
        ValueError: If the offset is not finite.

    Example:
        >>> import torch
        >>> from flowforge import Translate
        >>> layer = Translate([1.0, -1.0])
        >>> layer(torch.zeros(1, 2))
        (tensor([[ 1., -1.]]), tensor([0.]))
        >>> layer.inverse(torch.zeros(1, 2))[0]
        tensor([[-1.,  1.]])
    """

    volume_preserving = True

    def __init__(self, offset: float | list | Tensor, learnable: bool = False) -> None:
        super().__init__()
        _store(self, "offset", as_float_tensor(offset, "offset"), learnable)

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = _require_tensor(self, z)
        return z + self.offset.to(z.dtype), z.new_zeros(z.shape[0])

    def inverse(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = _require_tensor(self, z)
        return z - self.offset.to(z.dtype), z.new_zeros(z.shape[0])


class Logit(FlowLayer):
    """The logit pre-transform of image flows (RealNVP): from ``(0, 1)`` to the real line.

    ``inverse`` (data to latent): ``y = alpha + (1 - 2 alpha) x``, ``z = log y - log(1 - y)``,
    with ``log|dz/dx| = sum(log(1 - 2 alpha) - log y - log(1 - y))`` over each sample's
    elements; ``forward`` is ``x = (sigmoid(z) - alpha) / (1 - 2 alpha)``. ``alpha`` keeps
    data at 0 or 1 (dequantized pixels come close) away from the infinite ends of the
    logit; RealNVP uses 0.05 for CIFAR-10. Data must lie in
    ``(-alpha / (1 - 2 alpha), 1 + alpha / (1 - 2 alpha))``, which contains ``[0, 1]``;
    a sample with an element outside (or on its ends) has zero density: its
    log-determinant is ``-inf`` (``log_prob`` ``-inf``, "outside the support"), not NaN,
    and its latent elements there are 0. Works on tensors of any shape ``(batch, ...)``.
    """

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        if not 0 <= alpha < 0.5:
            raise ValueError(f"Logit's alpha must be in [0, 0.5), got {alpha}")
        self.alpha = float(alpha)
        self._log_range = math.log1p(-2 * self.alpha)  # log(1 - 2 alpha)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = _require_tensor(self, x)
        y = x * (1 - 2 * self.alpha) + self.alpha
        inside = (y > 0) & (y < 1)
        y = torch.where(inside, y, 0.5)  # no NaN (nor its gradient) outside the domain
        log_y, log_1my = torch.log(y), torch.log1p(-y)
        log_det = torch.where(inside, self._log_range - log_y - log_1my, -math.inf)
        return torch.where(inside, log_y - log_1my, 0.0), sum_per_sample(log_det)

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = _require_tensor(self, z)
        x = (torch.sigmoid(z) - self.alpha) / (1 - 2 * self.alpha)
        # log sigmoid(z) + log sigmoid(-z) = -softplus(-z) - softplus(z)
        log_det = -F.softplus(-z) - F.softplus(z) - self._log_range
        return x, sum_per_sample(log_det)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"
