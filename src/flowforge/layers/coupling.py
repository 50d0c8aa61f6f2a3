"""Coupling layers: transform ``z_B`` with parameters computed from ``z_A`` (and context)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from flowforge.layers.base import FlowLayer
from flowforge.nets import input_width
from flowforge.values import Value, describe, sum_per_sample

LogScaleFunction = Callable[[Tensor], Tensor]


def exp_log_scale(raw: Tensor) -> Tensor:
    """The notebook's choice: the network output is the log-scale itself (unbounded)."""
    return raw


class SoftClampLogScale(torch.nn.Module):
    """``s = bound * tanh(raw / bound)``: the identity near 0, bounded by ``±bound``.

    The scale ``exp(s)`` stays within ``[exp(-bound), exp(bound)]`` however large the
    network output grows, so neither direction can overflow to ``inf`` or ``NaN``.
    A module whose constant is a (non-persistent) buffer: it follows the layer's device
    and dtype, and a tensor constant is cheaper than a Python number in the training
    step. Dividing by the bound (not multiplying by a stored reciprocal, which rounds)
    keeps the slope at 0 exactly 1 in every dtype.
    """

    def __init__(self, bound: float = 5.0) -> None:
        super().__init__()
        if not bound > 0:
            raise ValueError(f"the log-scale bound must be positive, got {bound}")
        self.bound = float(bound)
        self.register_buffer("_bound", torch.tensor(self.bound), persistent=False)

    def forward(self, raw: Tensor) -> Tensor:
        return torch.tanh(raw / self._bound) * self._bound

    def extra_repr(self) -> str:
        return f"bound={self.bound}"


def sigmoid_log_scale(raw: Tensor) -> Tensor:
    """nflows' choice: ``scale = sigmoid(raw + 2) + 1e-3``, in ``(0.001, 1.001)``."""
    return torch.log(torch.sigmoid(raw + 2.0) + 1e-3)


LOG_SCALE_FUNCTIONS: dict[str, Callable[[], LogScaleFunction]] = {
    "exp": lambda: exp_log_scale,
    "soft_clamp": SoftClampLogScale,
    "sigmoid": lambda: sigmoid_log_scale,
}


def log_scale_function(spec: str | LogScaleFunction) -> LogScaleFunction:
    """Resolve a log-scale choice: a name in ``LOG_SCALE_FUNCTIONS`` or a callable."""
    if callable(spec):
        return spec
    try:
        return LOG_SCALE_FUNCTIONS[spec]()
    except KeyError:
        raise ValueError(
            f"unknown log_scale {spec!r}; choose one of {sorted(LOG_SCALE_FUNCTIONS)} "
            "or pass a function from raw network output to log-scale"
        ) from None


def conditioner_input(zA: Tensor, context: tuple[Tensor, ...]) -> Tensor:
    """``z_A`` with the context columns appended: the input of a coupling's network."""
    if not context:
        return zA
    parts = [zA] + [c.reshape(c.shape[0], -1).to(zA.dtype) for c in context]
    return torch.cat(parts, dim=1)


def _split_pair(layer: FlowLayer, z: Value) -> tuple[Tensor, Tensor]:
    if not (isinstance(z, tuple) and len(z) == 2):
        raise TypeError(
            f"{type(layer).__name__} expects a pair (z_A, z_B), got {describe(z)}; "
            "put a Split() before the first coupling layer"
        )
    return z


class Coupling(FlowLayer):
    """Base of coupling layers: runs the conditioner with clear errors.

    Subclasses call ``self.parameters_for(zA, zB, context, n)`` to get the network
    output as ``n`` tensors shaped like ``z_B``.
    """

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__()
        self.block = block

    def parameters_for(
        self, zA: Tensor, zB: Tensor, context: tuple[Tensor, ...], n: int
    ) -> tuple[Tensor, ...]:
        h = conditioner_input(zA, context)
        try:
            out = self.block(h)
        except RuntimeError as error:
            raise self._explain(h, zA, error) from error
        parts = torch.chunk(out, n, dim=1)
        if len(parts) != n or parts[0].shape != zB.shape:
            raise ValueError(
                f"{type(self).__name__}'s block outputs width {out.shape[1]}, but z_B has "
                f"shape {tuple(zB.shape)}: the block must output {n} × (width of z_B) = "
                f"{n * zB.shape[1]} columns, e.g. block(dim_A, dim_B={zB.shape[1]}, ...)"
            )
        return parts

    def _explain(self, h: Tensor, zA: Tensor, error: RuntimeError) -> Exception:
        expected = input_width(self.block)
        if expected is not None and expected != h.shape[1]:
            return ValueError(
                f"{type(self).__name__}'s block expects input width {expected}, but it got "
                f"z_A of width {zA.shape[1]} plus {h.shape[1] - zA.shape[1]} context columns; "
                f"build it with block(dim_A={zA.shape[1]}, ..., "
                f"context_width={h.shape[1] - zA.shape[1]})"
            )
        return error


class AffineCoupling(Coupling):
    """RealNVP's affine coupling on a pair ``(z_A, z_B)``.

    ``s, t = block(z_A [, context])``, then ``forward``: ``z_B' = exp(s) * z_B + t``,
    with log-determinant ``sum(s)``; ``z_A`` passes through unchanged. The block must
    output ``2 * width(z_B)`` columns (``block(dim_A, dim_B, hidden)`` does).

    ``log_scale`` chooses how the raw network output becomes ``s``: ``"soft_clamp"``
    (default, ``s = bound * tanh(raw / bound)``, so an exploding network cannot
    overflow), ``"exp"`` (the notebook's plain ``exp(raw)``), ``"sigmoid"`` (nflows'
    bounded scale), or any callable.
    """

    def __init__(
        self,
        block: torch.nn.Module,
        log_scale: str | LogScaleFunction = "soft_clamp",
    ) -> None:
        super().__init__(block)
        self.log_scale = log_scale_function(log_scale)

    def _shift_and_log_scale(
        self, zA: Tensor, zB: Tensor, context: tuple[Tensor, ...]
    ) -> tuple[Tensor, Tensor]:
        raw_s, t = self.parameters_for(zA, zB, context, 2)
        return self.log_scale(raw_s), t

    def forward(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        zA, zB = _split_pair(self, z)
        s, t = self._shift_and_log_scale(zA, zB, context)
        return (zA, torch.addcmul(t, torch.exp(s), zB)), sum_per_sample(s)

    def inverse(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        zA, zB = _split_pair(self, z)
        s, t = self._shift_and_log_scale(zA, zB, context)
        minus_s = -s  # shared by the scale and the log-determinant
        return (zA, (zB - t) * torch.exp(minus_s)), sum_per_sample(minus_s)

    def extra_repr(self) -> str:
        if isinstance(self.log_scale, torch.nn.Module):
            return ""  # printed as a child module
        return f"log_scale={getattr(self.log_scale, '__name__', repr(self.log_scale))}"


class AdditiveCoupling(Coupling):
    """NICE's additive coupling on a pair ``(z_A, z_B)``: ``z_B' = z_B + t``.

    ``t = block(z_A [, context])`` has the width of ``z_B`` (build the block with
    ``outputs_per_dim=1``); ``z_A`` passes through. Volume preserving: both
    log-determinants are zero.
    """

    volume_preserving = True

    def forward(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        zA, zB = _split_pair(self, z)
        (t,) = self.parameters_for(zA, zB, context, 1)
        return (zA, zB + t), zB.new_zeros(zB.shape[0])

    def inverse(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        zA, zB = _split_pair(self, z)
        (t,) = self.parameters_for(zA, zB, context, 1)
        return (zA, zB - t), zB.new_zeros(zB.shape[0])
