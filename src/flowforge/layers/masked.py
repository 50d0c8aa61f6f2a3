"""Couplings on images with a binary mask (checkerboard or channel masks, RealNVP): affine
or rational-quadratic spline."""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.layers.base import FlowLayer
from flowforge.layers.coupling import LogScaleFunction, log_scale_function
from flowforge.layers.multiscale import require_image
from flowforge.nets import input_width
from flowforge.transformers.base import SplineTransformer
from flowforge.transformers.spline import DEFAULT_BOUND
from flowforge.values import Value, sum_per_sample


def checkerboard_mask(height: int, width: int, parity: int = 0) -> Tensor:
    """``(1, 1, height, width)`` mask, 1 where ``(row + column + parity)`` is even."""
    rows = torch.arange(height).view(-1, 1)
    columns = torch.arange(width).view(1, -1)
    return ((rows + columns + parity) % 2 == 0).float().view(1, 1, height, width)


def channel_mask(channels: int, parity: int = 0) -> Tensor:
    """``(1, channels, 1, 1)`` mask, 1 on the first half of the channels (the second half
    when ``parity`` is odd); the first half has ``channels - channels // 2`` channels."""
    if channels < 2:
        raise ValueError(f"a channel mask needs at least 2 channels, got {channels}")
    first = torch.arange(channels) < channels - channels // 2
    mask = first if parity % 2 == 0 else ~first
    return mask.float().view(1, channels, 1, 1)


def context_channels(context: tuple[Tensor, ...], like: Tensor) -> list[Tensor]:
    """Each ``(B, k)`` context tensor as ``k`` constant channels of ``like``'s size."""
    b, _, h, w = like.shape
    for c in context:
        if c.dim() == 0 or len(c) != b:
            raise ValueError(
                f"context of shape {tuple(c.shape)} for a batch of {b} images: give one "
                f"context row per image, shape ({b}, context_width)"
            )
    flat = [c.reshape(b, -1).to(like.dtype) for c in context]
    return [c.view(b, -1, 1, 1).expand(b, c.shape[1], h, w) for c in flat]


class MaskedCoupling(FlowLayer):
    """Base of the masked couplings: checks images and runs the conditioner.

    ``net`` reads ``z · mask`` followed by the context as extra constant channels and must
    output ``params_per_element × C`` channels; ``_net_output`` returns them as
    ``params_per_element`` tensors shaped like ``z`` (channel blocks in order).
    """

    params_per_element = 2

    def __init__(self, mask: Tensor, net: torch.nn.Module) -> None:
        super().__init__()
        if mask.dim() != 4 or mask.shape[0] != 1:
            raise ValueError(
                f"the mask must have shape (1, C or 1, H or 1, W or 1), got {tuple(mask.shape)}"
            )
        self.register_buffer("mask", mask.float())
        self.net = net

    def _net_output(self, z_masked: Tensor, context: tuple[Tensor, ...]) -> tuple[Tensor, ...]:
        h = torch.cat([z_masked, *context_channels(context, z_masked)], dim=1)
        n, channels = self.params_per_element, z_masked.shape[1]
        try:
            out = self.net(h)
        except RuntimeError as error:
            expected = input_width(self.net)
            if expected is None or expected == h.shape[1]:
                raise
            extra = h.shape[1] - channels
            raise ValueError(
                f"{type(self).__name__}'s net expects {expected} input channels, but it got "
                f"images of {channels} channels plus {extra} context channels; build it "
                f"with conv_block({channels}, hidden, context_width={extra}, "
                f"outputs_per_channel={n})"
            ) from error
        if out.shape[1] != n * channels:
            raise ValueError(
                f"{type(self).__name__}'s net outputs {out.shape[1]} channels for images of "
                f"{channels} channels; it must output {n} × {channels}, e.g. "
                f"conv_block({channels}, hidden, outputs_per_channel={n})"
            )
        return out.chunk(n, dim=1)

    def _check(self, z: Value) -> Tensor:
        z = require_image(self, z)
        if any(m not in (1, n) for m, n in zip(self.mask.shape[1:], z.shape[1:])):
            raise ValueError(
                f"{type(self).__name__}'s mask of shape {tuple(self.mask.shape[1:])} does not "
                f"fit images of shape {tuple(z.shape[1:])}"
            )
        return z


class MaskedAffineCoupling(MaskedCoupling):
    """RealNVP's affine coupling on images: the masked pixels condition the others.

    With a binary ``mask`` (broadcastable to one image ``(C, H, W)``), ``net`` reads
    ``z · mask`` (and the context, as extra constant channels) and outputs ``2C``
    channels, the raw log-scale and the shift; both are zeroed where ``mask = 1``, so
    ``forward`` is ``x = z · exp(s) + t`` with ``log|det ∂x/∂z| = sum(s)`` and the
    masked pixels pass unchanged. ``log_scale`` turns the raw output into ``s``
    (``"soft_clamp"``: ``bound · tanh(raw / bound)``, as ``AffineCoupling``).
    With ``conv_block`` (zero output layer) the layer starts as the identity.
    """

    def __init__(
        self,
        mask: Tensor,
        net: torch.nn.Module,
        log_scale: str | LogScaleFunction = "soft_clamp",
    ) -> None:
        super().__init__(mask, net)
        self.log_scale = log_scale_function(log_scale)

    def _shift_and_log_scale(self, z_masked: Tensor, context: tuple[Tensor, ...]):
        raw_s, t = self._net_output(z_masked, context)
        free = 1 - self.mask.to(z_masked.dtype)
        return self.log_scale(raw_s) * free, t * free

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = self._check(z)
        s, t = self._shift_and_log_scale(z * self.mask.to(z.dtype), context)
        return torch.addcmul(t, torch.exp(s), z), sum_per_sample(s)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = self._check(x)
        s, t = self._shift_and_log_scale(x * self.mask.to(x.dtype), context)
        minus_s = -s
        return (x - t) * torch.exp(minus_s), sum_per_sample(minus_s)


class MaskedSplineCoupling(MaskedCoupling):
    """A neural-spline coupling on images (Durkan et al. 2019 with a conv-net conditioner).

    ``net`` reads ``z · mask`` (and the context) and outputs ``(3 · bins - 1) · C``
    channels: for every pixel and channel the widths, heights and inner derivatives of a
    monotone rational-quadratic spline on ``[-bound, bound]``, the identity outside
    (``flowforge.transformers.spline``). Pixels where ``mask = 0`` go through their spline; those
    where ``mask = 1`` pass unchanged. Zero parameters give the identity, so a
    ``conv_block(C, hidden, outputs_per_channel=3 * bins - 1)`` starts it as one.
    """

    def __init__(
        self, mask: Tensor, net: torch.nn.Module, bins: int = 8, bound: float = DEFAULT_BOUND
    ) -> None:
        super().__init__(mask, net)
        self.transformer = SplineTransformer(bins, bound)
        self.params_per_element = self.transformer.params_per_element

    def _transform(self, z: Tensor, context: tuple[Tensor, ...], direction: str):
        free = 1 - self.mask.to(z.dtype)
        params = torch.stack(self._net_output(z * (1 - free), context), dim=-1)
        out, log_det = getattr(self.transformer, direction)(z, params)
        return torch.lerp(z, out, free), sum_per_sample(log_det * free)

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform(self._check(z), context, "forward")

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform(self._check(x), context, "inverse")
