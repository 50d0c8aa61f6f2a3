"""A multi-scale flow for discrete images: RealNVP's architecture (Dinh et al. 2017),
Glow's steps (Kingma and Dhariwal 2018), spline couplings."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from flowforge.dequantization import DequantizedFlow
from flowforge.families.bases import base_distribution
from flowforge.families.family import BASE, BINS, HIDDEN, IMAGES, Family, Option
from flowforge.layers import (
    FactorOut,
    Flatten,
    FlowLayer,
    ImageActNorm,
    InvertibleConv1x1,
    Logit,
    MaskedAffineCoupling,
    MaskedCoupling,
    MaskedSplineCoupling,
    OnLast,
    Squeeze,
    Unflatten,
    channel_mask,
    checkerboard_mask,
)
from flowforge.nets import conv_block
from flowforge.transformers import DEFAULT_BOUND, AffineTransformer, SplineTransformer


@dataclass(frozen=True)
class _Couplings:
    """How ``multiscale`` makes its couplings' conditioners."""

    hidden: int
    context_width: int
    log_scale: str
    dropout: float
    transformer: str = "affine"
    bins: int = 8
    bound: float = DEFAULT_BOUND

    def coupling(self, mask: torch.Tensor, channels: int) -> MaskedCoupling:
        """An affine or spline coupling (``transformer``) with a fresh, zeroed conv net."""
        if self.transformer not in ("affine", "spline"):
            raise ValueError(f"unknown transformer {self.transformer!r}; use 'affine' or 'spline'")
        spline = self.transformer == "spline"
        outputs = (
            SplineTransformer(self.bins, self.bound) if spline else AffineTransformer()
        ).params_per_element
        net = conv_block(
            channels,
            self.hidden,
            context_width=self.context_width,
            outputs_per_channel=outputs,
            dropout=self.dropout,
        )
        if spline:
            return MaskedSplineCoupling(mask, net, self.bins, self.bound)
        return MaskedAffineCoupling(mask, net, log_scale=self.log_scale)

    def step(self, channels: int, parity: int) -> list[FlowLayer]:
        """One step of Glow: ``ImageActNorm``, 1×1 convolution, channel-masked coupling."""
        coupling = self.coupling(channel_mask(channels, parity), channels)
        return [ImageActNorm(channels), InvertibleConv1x1(channels), coupling]

    def checkerboard_step(self, shape: tuple[int, int, int], parity: int) -> list[FlowLayer]:
        """RealNVP's step at full resolution: ``ImageActNorm``, checkerboard coupling."""
        channels, height, breadth = shape
        mask = checkerboard_mask(height, breadth, parity)
        return [ImageActNorm(channels), self.coupling(mask, channels)]

    def split_prior(self, channels: int) -> MaskedCoupling:
        """The coupling before a ``FactorOut``: it transforms the channels about to be
        factored out by functions of those that stay (Glow's learned split prior)."""
        return self.coupling(channel_mask(channels, parity=1), channels)


def _image_shape(image_shape: object, scales: int) -> tuple[int, int, int]:
    """``image_shape`` as ``(channels, height, width)``, checked for ``scales`` squeezes."""
    if isinstance(image_shape, int):
        raise ValueError(
            f"multiscale takes image_shape=(channels, height, width), not a width; got "
            f"{image_shape} (the digits: image_shape=(1, 8, 8))"
        )
    shape = tuple(int(n) for n in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"image_shape must be (channels, height, width), got {shape}")
    if any(n % 2**scales for n in shape[1:]):
        raise ValueError(
            f"{scales} scale(s) squeeze the image {scales} time(s): height and width "
            f"must be divisible by {2**scales}, got {shape[1]}×{shape[2]}"
        )
    return shape  # type: ignore[return-value]


def _scales(make: _Couplings, shape: tuple[int, int, int], scales: int, steps: int, prior: bool):
    """The layers after the full-resolution steps, data side first, and the latent parts'
    shapes: per scale a ``Squeeze``, ``steps`` Glow steps and, except at the last, a
    split prior (``prior``) and a ``FactorOut``."""
    channels, height, breadth = shape
    data_to_latent: list[FlowLayer] = []
    parts = []
    for scale in range(scales):
        layers: list[FlowLayer] = [Squeeze()]
        channels, height, breadth = 4 * channels, height // 2, breadth // 2
        for step in range(steps):
            layers += make.step(channels, step % 2)
        last = scale == scales - 1
        if prior and not last:
            layers.append(make.split_prior(channels))
        # After the first FactorOut the value is a tuple: later scales work on its last part.
        data_to_latent += layers if scale == 0 else [OnLast(layer) for layer in layers]
        if not last:
            data_to_latent.append(FactorOut())  # acts on the last part itself
            parts.append((channels // 2, height, breadth))
            channels -= channels // 2
    parts.append((channels, height, breadth))
    return data_to_latent, parts


def multiscale(
    image_shape: tuple[int, int, int] | list[int] = (1, 8, 8),
    *,
    levels: int = 17,
    scales: int = 2,
    steps: int = 4,
    hidden: int = 64,
    checkerboard: int = 2,
    split_prior: bool = True,
    transformer: str = "spline",
    bins: int = 8,
    dropout: float = 0.0,
    alpha: float = 0.05,
    base: str = "normal",
    context_width: int = 0,
    log_scale: str = "soft_clamp",
) -> DequantizedFlow:
    """A multi-scale flow for discrete images: RealNVP's architecture, Glow's steps, spline
    couplings.

    Data are flat images ``(batch, C·H·W)`` of pixel values ``0 .. levels - 1``, as
    ``DequantizedFlow`` takes them. From the data side: ``Unflatten(image_shape)``,
    ``Logit(alpha)``, ``checkerboard`` RealNVP steps at full resolution
    (``ImageActNorm`` and a checkerboard-masked coupling), then at each of ``scales``
    scales ``Squeeze`` (``(C, H, W)`` to ``(4C, H/2, W/2)``) and ``steps`` Glow steps
    (``ImageActNorm``, ``InvertibleConv1x1``, a channel-masked coupling), followed,
    except at the last scale, by ``FactorOut``: half the channels go straight to the
    latent, after (``split_prior``) a coupling that conditions them on the other half. A
    ``Flatten`` joins the parts into the base's vector. Every coupling's conditioner is
    a ``conv_block``, zero at initialization, so the flow starts as the logit and the
    actnorms. The multi-scale architecture is from Dinh et al., Density estimation
    using Real NVP, ICLR 2017; the steps from Kingma and Dhariwal, Glow: Generative flow
    with invertible 1x1 convolutions, NeurIPS 2018; the splines from Durkan et al.,
    Neural spline flows, NeurIPS 2019. The defaults model scikit-learn's digits: the
    best of the variants ``benchmarks/digits.py`` was tuned with (docs/guide/comparing.md, "Images:
    digits").

    Args:
        image_shape: ``(C, H, W)``; ``H`` and ``W`` divisible by ``2 ** scales``.
        levels: The number of pixel values (17 for the digits).
        scales: The number of scales (squeezes).
        steps: Glow steps per scale.
        hidden: The channels of every conditioner.
        checkerboard: RealNVP checkerboard steps at full resolution.
        split_prior: A coupling before each ``FactorOut`` (Glow's learned split prior).
        transformer: ``"spline"`` (``MaskedSplineCoupling``, rational-quadratic splines
            on ``[-DEFAULT_BOUND, DEFAULT_BOUND]``) or ``"affine"``
            (``MaskedAffineCoupling``, Glow itself).
        bins: The number of bins of each spline.
        dropout: Dropout in the conditioners while training.
        alpha: ``Logit``'s margin.
        base: The base distribution's name (``flowforge.families.BASES``).
        context_width: The number of context columns of a conditional flow (0: none).
        log_scale: The affine couplings' log-scale (``AffineCoupling``).

    Returns:
        A ``DequantizedFlow``, whose ``log_prob`` is in nats per image
        (``flowforge.dequantization.bits_per_dim`` converts it).

    Raises:
        ValueError: If ``image_shape`` is not ``(C, H, W)`` divisible for ``scales``
            squeezes, or a count is negative.

    Example:
        >>> import torch
        >>> from flowforge import multiscale
        >>> _ = torch.manual_seed(0)
        >>> model = multiscale((1, 4, 4), levels=17, scales=1, steps=1, hidden=8)
        >>> pixels = torch.randint(0, 17, (3, 16)).float()
        >>> model.log_prob(pixels).shape
        torch.Size([3])
        >>> model.sample(2).shape
        torch.Size([2, 16])
    """
    if scales < 1 or steps < 0 or checkerboard < 0:
        raise ValueError(
            f"need scales >= 1, steps >= 0 and checkerboard >= 0; got scales={scales}, "
            f"steps={steps}, checkerboard={checkerboard}"
        )
    shape = _image_shape(image_shape, scales)
    make = _Couplings(hidden, context_width, log_scale, dropout, transformer, bins)
    data_to_latent: list[FlowLayer] = [Unflatten(shape), Logit(alpha)]
    for i in range(checkerboard):
        data_to_latent += make.checkerboard_step(shape, i % 2)
    layers, parts = _scales(make, shape, scales, steps, split_prior)
    data_to_latent += [*layers, Flatten(parts)]
    return DequantizedFlow(
        base_distribution(base, math.prod(shape)),
        *reversed(data_to_latent),
        levels=levels,
        image_shape=shape,
    )


DECLARED = (
    Family(
        "multiscale",
        multiscale,
        IMAGES,
        "RealNVP's multi-scale architecture with Glow's steps and spline couplings, over "
        "dequantized pixels (Dinh et al. 2017; Kingma and Dhariwal 2018)",
        options=(
            Option("scales", "scales of the multi-scale flow", minimum=1),
            Option("steps", "Glow steps per scale", minimum=1),
            HIDDEN,
            BINS,
            BASE,
        ),
        test_size={"steps": 1, "hidden": 8},
    ),
)
