"""Couplings on images with a binary mask (checkerboard or channel masks, RealNVP).

A masked coupling is a conditioner (a conv net reading the masked image and the context)
plus a transformer (``flowforge.transformers``), like ``Coupling``: the pixels where the
mask is 1 condition the others. ``MaskedAffineCoupling`` (RealNVP, Glow) and
``MaskedSplineCoupling`` are its named forms.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.layers.base import FlowLayer
from flowforge.layers.multiscale import require_image
from flowforge.nets import input_width
from flowforge.transformers import AffineTransformer, LogScale, SplineTransformer, Transformer
from flowforge.transformers.log_scale import LogScaleSpec
from flowforge.transformers.spline import DEFAULT_BOUND
from flowforge.values import Value, per_sample, sum_per_sample, zero_log_det


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
    flat = [per_sample(c).to(like.dtype) for c in context]
    return [c[:, :, None, None].expand(b, c.shape[1], h, w) for c in flat]


class MaskedCoupling(FlowLayer):
    """A coupling on images ``(B, C, H, W)`` with a binary ``mask`` (broadcastable to one
    image ``(C, H, W)``): pixels where it is 1 pass unchanged and condition the others.

    ``net`` reads ``z · mask`` followed by the context as extra constant channels and must
    output ``transformer.params_per_element × C`` channels (the parameters in blocks of
    ``C`` channels). The parameters are zeroed where the mask is 1, so the transformer
    stays finite there, and its result is kept only where the mask is 0; the
    log-determinant sums the transformer's over those pixels.
    """

    def __init__(self, mask: Tensor, net: torch.nn.Module, transformer: Transformer) -> None:
        super().__init__()
        if mask.dim() != 4 or mask.shape[0] != 1:
            raise ValueError(
                f"the mask must have shape (1, C or 1, H or 1, W or 1), got {tuple(mask.shape)}"
            )
        self.register_buffer("mask", mask.float())
        self.net = net
        self.transformer = transformer
        self.volume_preserving = transformer.volume_preserving

    @property
    def params_per_element(self) -> int:
        return self.transformer.params_per_element

    def _params(
        self, z: Tensor, keep: Tensor, free: Tensor, context: tuple[Tensor, ...]
    ) -> tuple[Tensor, ...]:
        """The net's output for ``z · keep`` as the transformer's ``params``, each shaped like
        ``z``, zero where ``keep`` is 1 (``free = 1 - keep``)."""
        out = self._net_output(z * keep, context)
        n = self.params_per_element
        free = (free.repeat(1, n, 1, 1) if free.shape[1] > 1 else free).bool()
        # where, not a product: a net output that overflowed (inf) times 0 would be NaN
        return torch.where(free, out, out.new_zeros(())).chunk(n, dim=1)

    def _net_output(self, z_masked: Tensor, context: tuple[Tensor, ...]) -> Tensor:
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
        return out

    def _check(self, z: Value) -> Tensor:
        z = require_image(self, z)
        if any(m not in (1, n) for m, n in zip(self.mask.shape[1:], z.shape[1:])):
            raise ValueError(
                f"{type(self).__name__}'s mask of shape {tuple(self.mask.shape[1:])} does not "
                f"fit images of shape {tuple(z.shape[1:])}"
            )
        return z

    def _transform(self, z: Value, context: tuple[Tensor, ...], direction: str):
        z = self._check(z)
        keep = self.mask.to(z.dtype)
        free = 1 - keep
        out, log_det = getattr(self.transformer, direction)(z, self._params(z, keep, free, context))
        # where, not lerp or a product by the mask: an overflow to inf stays inf, not NaN
        changed = free.bool()
        if log_det is None:
            return torch.where(changed, out, z), zero_log_det(z)
        return torch.where(changed, out, z), sum_per_sample(torch.where(changed, log_det, 0.0))

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform(z, context, "forward")

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        return self._transform(x, context, "inverse")


class MaskedAffineCoupling(MaskedCoupling):
    """RealNVP's affine coupling on images: the masked pixels condition the others.

    ``net`` reads ``z · mask`` (and the context, as extra constant channels) and outputs
    ``2C`` channels, the raw log-scale and the shift; ``forward`` is
    ``x = z · exp(s) + t`` where the mask is 0, with ``log|det ∂x/∂z| = sum(s)`` there,
    and the masked pixels pass unchanged. ``log_scale`` turns the raw output into ``s``
    (``"soft_clamp"``: ``bound · tanh(raw / bound)``, as ``AffineCoupling``).
    With ``conv_block`` (zero output layer) the layer starts as the identity.
    """

    def __init__(
        self, mask: Tensor, net: torch.nn.Module, log_scale: LogScaleSpec = "soft_clamp"
    ) -> None:
        super().__init__(mask, net, AffineTransformer(log_scale))

    @property
    def log_scale(self) -> LogScale:
        """The function from raw network output to log-scale (the transformer's)."""
        return self.transformer.log_scale


class MaskedSplineCoupling(MaskedCoupling):
    """A neural-spline coupling on images (Durkan et al. 2019 with a conv-net conditioner).

    ``net`` reads ``z · mask`` (and the context) and outputs ``(3 · bins - 1) · C``
    channels: for every pixel and channel the widths, heights and inner derivatives of a
    monotone rational-quadratic spline on ``[-bound, bound]``, the identity outside
    (``flowforge.transformers.spline``). Pixels where ``mask = 0`` go through their
    spline; those where ``mask = 1`` pass unchanged. Zero parameters give the identity,
    so a ``conv_block(C, hidden, outputs_per_channel=self.params_per_element)`` starts it
    as one.
    """

    def __init__(
        self, mask: Tensor, net: torch.nn.Module, bins: int = 8, bound: float = DEFAULT_BOUND
    ) -> None:
        super().__init__(mask, net, SplineTransformer(bins, bound))
