"""Multi-scale plumbing for images: ``Squeeze``, ``FactorOut``, ``OnLast``, ``Flatten``.

Images are ``(batch, channels, height, width)`` tensors. These layers only move numbers,
so their log-determinants are zero. They are named, like ``ActNorm``, after what they
do in the data-to-latent direction (``inverse``), the direction in which a multi-scale
flow is usually drawn (RealNVP, Glow): squeeze the image, factor out half of its
channels, go on with the other half, and finally flatten every factored-out part into
the latent vector. ``forward`` (sampling) undoes each step.

A multi-scale value is a flat tuple ``(z_1, ..., z_k, h)``: the parts factored out so
far and, last, the tensor still being transformed; ``OnLast`` applies a layer to ``h``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from flowforge.layers.base import FlowLayer
from flowforge.values import Value, describe, per_sample, zero_log_det

Shape = tuple[int, ...]


def require_image(layer: torch.nn.Module, z: Value, channels: int | None = None) -> Tensor:
    """``z`` itself if it is a ``(batch, channels, height, width)`` tensor, else an error."""
    name = type(layer).__name__
    if not isinstance(z, Tensor) or z.dim() != 4:
        raise TypeError(
            f"{name} acts on images of shape (batch, channels, height, width), got "
            f"{describe(z)}; after a FactorOut wrap it as OnLast({name}(...))"
        )
    if channels is not None and z.shape[1] != channels:
        raise ValueError(
            f"{name} was built for {channels} channels, got an image of shape "
            f"{tuple(z.shape[1:])}: build it for {z.shape[1]} channels"
        )
    return z


class Squeeze(FlowLayer):
    """Trade space for channels: ``inverse`` maps ``(C, H, W)`` to ``(4C, H/2, W/2)``.

    Each 2×2 block of pixels becomes four channels at one pixel: input channel ``c`` at
    ``(2y + i, 2x + j)`` goes to channel ``4c + 2i + j`` at ``(y, x)``. ``forward`` puts
    the pixels back. Height and width must be even. Volume preserving.
    """

    volume_preserving = True

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = require_image(self, x)
        b, c, h, w = x.shape
        if h % 2 or w % 2:
            raise ValueError(
                f"Squeeze needs an even height and width, got an image of {h}×{w}; "
                "pad or crop it to even sizes first"
            )
        z = x.reshape(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
        return z.reshape(b, 4 * c, h // 2, w // 2), zero_log_det(x)

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_image(self, z)
        b, c, h, w = z.shape
        if c % 4:
            raise ValueError(
                f"Squeeze.forward (unsqueeze) needs a channel count divisible by 4, got {c}"
            )
        x = z.reshape(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
        return x.reshape(b, c // 4, 2 * h, 2 * w), zero_log_det(z)


def _last(layer: FlowLayer, value: Value) -> tuple[tuple[Tensor, ...], Tensor]:
    """``(earlier parts, last tensor)`` of a tensor or a tuple."""
    if isinstance(value, Tensor):
        return (), value
    if isinstance(value, tuple) and value:
        return value[:-1], value[-1]
    raise TypeError(f"{type(layer).__name__} expects a tensor or a tuple, got {describe(value)}")


class FactorOut(FlowLayer):
    """Set half the channels aside: ``inverse`` maps ``(..., h)`` to ``(..., z, h')``.

    ``h`` (the last tensor of the value, or the value itself) is ``(B, C, H, W)``; its
    first ``C // 2`` channels become the factored-out ``z``, which later layers leave
    alone (it goes straight to the base distribution), and the other ``C - C // 2``
    channels go on as ``h'``. ``forward`` concatenates the last two tensors again.
    Volume preserving.
    """

    volume_preserving = True

    def inverse(self, x: Value, *context: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        done, h = _last(self, x)
        h = require_image(self, h)
        if h.shape[1] < 2:
            raise ValueError(
                f"FactorOut needs at least 2 channels to set half aside, got {h.shape[1]}; "
                "put a Squeeze before it"
            )
        out = h.shape[1] // 2
        return (*done, h[:, :out], h[:, out:]), zero_log_det(x)

    def forward(self, z: Value, *context: Tensor) -> tuple[Value, Tensor]:
        if not (isinstance(z, tuple) and len(z) >= 2):
            raise TypeError(f"FactorOut.forward expects a tuple (..., z, h), got {describe(z)}")
        *done, out, h = z
        out, h = require_image(self, out), require_image(self, h)
        channels = out.shape[1] + h.shape[1]
        if out.shape[1] != channels // 2 or out.shape[2:] != h.shape[2:]:
            raise ValueError(
                f"FactorOut.forward got parts of shapes {tuple(out.shape[1:])} and "
                f"{tuple(h.shape[1:])}; it joins a part of C // 2 channels to one of "
                "C - C // 2 channels with the same height and width"
            )
        merged = torch.cat((out, h), dim=1)
        return (tuple(done) + (merged,) if done else merged), zero_log_det(z)


class OnLast(FlowLayer):
    """Apply ``layer`` to the last tensor of a tuple, leaving the others as they are.

    After a ``FactorOut`` the value is ``(z_1, ..., h)``; ``OnLast(layer)`` transforms
    ``h`` only (a bare tensor is handed to ``layer`` as it is). ``layer`` must map a
    tensor to a tensor; context is passed on. Its log-determinant is ``layer``'s.
    """

    def __init__(self, layer: FlowLayer) -> None:
        super().__init__()
        self.layer = layer
        self.volume_preserving = getattr(layer, "volume_preserving", False)

    def _on_last(self, value: Value, step, context: tuple[Tensor, ...]) -> tuple[Value, Tensor]:
        done, h = _last(self, value)
        out, log_det = step(h, *context)
        if not isinstance(out, Tensor):
            raise TypeError(
                f"OnLast needs a layer that maps a tensor to a tensor; "
                f"{type(self.layer).__name__} returned {describe(out)}"
            )
        return ((*done, out) if done else out), log_det

    def forward(self, z: Value, *context: Tensor) -> tuple[Value, Tensor]:
        return self._on_last(z, self.layer.forward, context)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Value, Tensor]:
        return self._on_last(x, self.layer.inverse, context)


def _shapes(shapes: Sequence[int] | Sequence[Sequence[int]]) -> tuple[Shape, ...]:
    """One shape ``(C, H, W)`` or several, as a tuple of shapes of positive sizes."""
    if shapes and all(isinstance(s, int) for s in shapes):
        shapes = [shapes]
    result = tuple(tuple(int(n) for n in s) for s in shapes)
    if not result or any(not s or min(s) < 1 for s in result):
        raise ValueError(f"Flatten needs one or more shapes of positive sizes, got {shapes!r}")
    return result


class Flatten(FlowLayer):
    """Flatten image parts into one vector: ``inverse`` maps ``(B, *s_1), ..., (B, *s_k)``
    (a tuple, or one tensor when ``k = 1``) to ``(B, D)``, ``D = sum(prod(s_i))``.

    ``shapes`` are the per-sample shapes of the parts, e.g. ``Flatten((1, 8, 8))`` or
    ``Flatten([(2, 4, 4), (4, 2, 2), (4, 2, 2)])``. ``forward`` cuts the vector and
    reshapes the pieces. Put it at the latent end of a multi-scale flow, so the base
    distribution sees vectors. ``Unflatten`` is the same map the other way round.
    Volume preserving.
    """

    volume_preserving = True

    def __init__(self, shapes: Sequence[int] | Sequence[Sequence[int]]) -> None:
        super().__init__()
        self.shapes = _shapes(shapes)
        self.sizes = [math.prod(s) for s in self.shapes]

    @property
    def width(self) -> int:
        """``D``, the length of the flat vector."""
        return sum(self.sizes)

    def _flatten(self, x: Value) -> Tensor:
        parts = x if isinstance(x, tuple) else (x,)
        seen = tuple(tuple(p.shape[1:]) for p in parts if isinstance(p, Tensor))
        if len(seen) != len(parts) or seen != self.shapes:
            raise ValueError(
                f"{type(self).__name__} was built for parts of shapes {list(self.shapes)}, "
                f"got {describe(x)}"
            )
        return torch.cat([per_sample(p) for p in parts], dim=1)

    def _unflatten(self, z: Value) -> Value:
        if not isinstance(z, Tensor) or z.dim() != 2 or z.shape[1] != self.width:
            raise ValueError(
                f"{type(self).__name__} expects vectors of shape (batch, {self.width}), "
                f"got {describe(z)}"
            )
        pieces = torch.split(z, self.sizes, dim=1)
        parts = tuple(p.reshape(z.shape[0], *s) for p, s in zip(pieces, self.shapes))
        return parts if len(parts) > 1 else parts[0]

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        return self._flatten(x), zero_log_det(x)

    def forward(self, z: Value, *context: Tensor) -> tuple[Value, Tensor]:
        return self._unflatten(z), zero_log_det(z)

    def extra_repr(self) -> str:
        return f"shapes={[list(s) for s in self.shapes]}"


class Unflatten(Flatten):
    """``Flatten`` the other way round: ``inverse`` maps ``(B, D)`` to image parts.

    Put it at the data end of an image flow whose data are flat rows ``(B, C·H·W)``:
    ``Unflatten((1, 8, 8))``'s inverse turns each row into a ``(1, 8, 8)`` image.
    """

    def inverse(self, x: Value, *context: Tensor) -> tuple[Value, Tensor]:
        return self._unflatten(x), zero_log_det(x)

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        return self._flatten(z), zero_log_det(z)
