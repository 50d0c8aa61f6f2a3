"""Fixed (or learnable) elementwise maps: ``Scale`` and ``Translate``."""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.layers.base import FlowLayer
from flowforge.values import Value


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

    ``scale`` is a number, a list or a tensor broadcastable to one sample (shape
    ``(width,)`` for vectors); it is stored as a float buffer, or as a parameter when
    ``learnable=True``. Negative factors are allowed; the log-determinant is
    ``sum(log|scale|)`` over one sample's elements.
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

    ``offset`` is a number, a list or a tensor broadcastable to one sample; it is
    stored as a float buffer, or as a parameter when ``learnable=True``.
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
