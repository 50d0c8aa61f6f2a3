"""Builders: functions that return a ready ``NormalizingFlow`` with sensible defaults.

``BUILDERS`` maps a model name (``flowforge train --model NAME``) to its builder; every
builder takes ``width`` and keyword options, including ``base`` and ``context_width``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import Normal, Uniform

from flowforge.dequantization import DequantizedFlow
from flowforge.distributions import Multivariate
from flowforge.distributions.mixture import GaussianMixture
from flowforge.flow import NormalizingFlow
from flowforge.layers import (
    AdditiveCoupling,
    AffineCoupling,
    FactorOut,
    Flatten,
    FlowLayer,
    ImageActNorm,
    Inverse,
    InvertibleConv1x1,
    Logit,
    LULinear,
    MaskedAffineCoupling,
    MaskedAutoregressive,
    MaskedCoupling,
    MaskedSplineCoupling,
    Merge,
    OnLast,
    Permute,
    Reverse,
    Scale,
    SplineCoupling,
    Split,
    Squeeze,
    Swap,
    Unflatten,
    channel_mask,
    checkerboard_mask,
)
from flowforge.nets import block, conv_block
from flowforge.transformers import SplineTransformer, Transformer

BASES: dict[str, Callable[[int], torch.nn.Module]] = {
    "normal": lambda width: Multivariate(width, Normal(0.0, 1.0)),
    # Wide enough to cover standardized data at initialization (the flow starts near
    # the identity), yet bounded: the notebook's question 10.6 (b).
    "uniform": lambda width: Multivariate(width, Uniform(-3.0, 3.0)),
    # 24 learnable full-covariance Gaussians; fit them with initialize_mixture(model, data).
    "mixture": lambda width: GaussianMixture(width, 24),
}


def base_distribution(name: str, width: int) -> torch.nn.Module:
    """A named base distribution over ``width`` dimensions: ``"normal"``, ``"uniform"`` or
    ``"mixture"`` (a ``GaussianMixture`` of 24 components, to be fitted by
    ``initialize_mixture`` before training)."""
    try:
        return BASES[name](width)
    except KeyError:
        raise ValueError(f"unknown base {name!r}; choose one of {sorted(BASES)}") from None


def _coupling_stack(
    width: int, couplings: int, make: Callable[[int, int], FlowLayer]
) -> list[FlowLayer]:
    """``Split``, ``couplings`` layers ``make(dim_A, dim_B)`` alternated by ``Swap``, ``Merge``.

    For an odd ``width`` the halves differ (5 + 4 for 9); each coupling is made for the
    pair it sees, and the final ``Merge`` is given the widths it receives.
    """
    if width < 2:
        raise ValueError(f"a coupling flow needs width >= 2, got {width}")
    if couplings < 1:
        raise ValueError(f"need at least one coupling layer, got {couplings}")
    a, b = width - width // 2, width // 2
    layers: list[FlowLayer] = [Split()]
    for i in range(couplings):
        layers.append(make(a, b))
        if i < couplings - 1:
            layers.append(Swap())
            a, b = b, a
    layers.append(Merge([a, b]) if a != b else Merge())
    return layers


def realnvp(
    width: int = 2,
    *,
    couplings: int = 4,
    hidden: int = 16,
    base: str = "normal",
    context_width: int = 0,
    log_scale: str = "soft_clamp",
    zero_init: bool = False,
) -> NormalizingFlow:
    """The notebook's RealNVP (section 10.5 a): ``Split``, couplings alternated by ``Swap``,
    ``Merge``. Defaults: 4 affine couplings with hidden width 16 and a normal base.
    """

    def make(a: int, b: int) -> FlowLayer:
        net = block(a, b, hidden, context_width=context_width, zero_init=zero_init)
        return AffineCoupling(net, log_scale=log_scale)

    return NormalizingFlow(base_distribution(base, width), *_coupling_stack(width, couplings, make))


def nice(
    width: int = 2,
    *,
    couplings: int = 4,
    hidden: int = 32,
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """NICE (Dinh et al. 2014): additive couplings alternated by ``Swap``, then a learned
    per-column ``Scale`` (the only layer that changes volume). Defaults: 4 couplings,
    hidden width 32, normal base.
    """

    def make(a: int, b: int) -> FlowLayer:
        net = block(
            a, b, hidden, context_width=context_width, outputs_per_dim=1, activation=activation
        )
        return AdditiveCoupling(net.zero_last_layer_() if zero_init else net)

    layers = _coupling_stack(width, couplings, make)
    return NormalizingFlow(
        base_distribution(base, width), *layers, Scale(torch.ones(width), learnable=True)
    )


MIXINGS: dict[str, Callable[[int], FlowLayer]] = {
    "reverse": lambda width: Reverse(),
    "random": lambda width: Permute(width),
    "lu": lambda width: LULinear(width),
}


def _mixing(name: str, width: int) -> FlowLayer:
    try:
        return MIXINGS[name](width)
    except KeyError:
        raise ValueError(f"unknown mixing {name!r}; choose one of {sorted(MIXINGS)}") from None


def _masked_autoregressive_flow(
    width: int,
    layers: int,
    hidden: int,
    transformer: str | Transformer,
    mixing: str,
    base: str,
    context_width: int,
    activation: Callable[[], torch.nn.Module],
    zero_init: bool,
    wrap: Callable[[FlowLayer], FlowLayer] = lambda layer: layer,
) -> NormalizingFlow:
    """``layers`` masked autoregressive layers (each passed through ``wrap``), with a
    mixing layer between each two, on a ``base`` distribution: MAF, IAF and NSF's body."""
    if width < 1 or layers < 1:
        raise ValueError(f"need width >= 1 and layers >= 1, got width={width}, layers={layers}")
    stack: list[FlowLayer] = []
    for i in range(layers):
        made = MaskedAutoregressive(
            width,
            hidden,
            transformer=transformer,
            context_width=context_width,
            activation=activation,
            zero_init=zero_init,
        )
        stack.append(wrap(made))
        if i < layers - 1 and width > 1:
            stack.append(_mixing(mixing, width))
    return NormalizingFlow(base_distribution(base, width), *stack)


def maf(
    width: int = 2,
    *,
    layers: int = 5,
    hidden: int = 32,
    transformer: str | Transformer = "affine",
    mixing: str = "reverse",
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """MAF (Papamakarios et al. 2017): ``layers`` masked autoregressive layers, with the
    column order reversed (``mixing="reverse"``; or ``"random"``, ``"lu"``) between them.
    Density evaluation is one pass per layer; sampling ``width`` passes per layer.
    Defaults: 5 affine layers with MADE hidden width 32, normal base.
    """
    return _masked_autoregressive_flow(
        width, layers, hidden, transformer, mixing, base, context_width, activation, zero_init
    )


def iaf(
    width: int = 2,
    *,
    layers: int = 5,
    hidden: int = 32,
    transformer: str | Transformer = "affine",
    mixing: str = "reverse",
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """IAF (Kingma et al. 2016): MAF's layers wrapped in ``Inverse``, so sampling is one
    pass per layer and density evaluation ``width`` passes. Defaults as ``maf``.
    """
    return _masked_autoregressive_flow(
        width,
        layers,
        hidden,
        transformer,
        mixing,
        base,
        context_width,
        activation,
        zero_init,
        wrap=Inverse,
    )


def nsf(
    width: int = 2,
    *,
    layers: int = 5,
    hidden: int = 64,
    bins: int = 8,
    bound: float = 4.0,
    coupling: bool = False,
    mixing: str = "reverse",
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """Neural spline flow (Durkan et al. 2019): monotone rational-quadratic splines with
    ``bins`` bins on ``[-bound, bound]``, identity outside.

    Autoregressive by default (MAF layers with a spline transformer, like zuko's NSF);
    ``coupling=True`` builds ``SplineCoupling`` layers alternated by ``Swap`` instead,
    one pass in both directions. Defaults: 5 layers, hidden width 64, 8 bins, bound 4
    (standardized data lie well inside), normal base.
    """
    if coupling:

        def make_coupling(a: int, b: int) -> FlowLayer:
            net = block(
                a,
                b,
                hidden,
                context_width=context_width,
                outputs_per_dim=3 * bins - 1,
                activation=activation,
                zero_init=zero_init,
            )
            return SplineCoupling(net, bins=bins, bound=bound)

        stack = _coupling_stack(width, layers, make_coupling)
        return NormalizingFlow(base_distribution(base, width), *stack)
    spline = SplineTransformer(bins, bound)
    return _masked_autoregressive_flow(
        width, layers, hidden, spline, mixing, base, context_width, activation, zero_init
    )


@dataclass(frozen=True)
class _Couplings:
    """How ``multiscale`` makes its couplings' conditioners."""

    hidden: int
    context_width: int
    log_scale: str
    dropout: float
    transformer: str = "affine"
    bins: int = 8
    bound: float = 4.0

    def coupling(self, mask: torch.Tensor, channels: int) -> MaskedCoupling:
        """An affine or spline coupling (``transformer``) with a fresh, zeroed conv net."""
        if self.transformer not in ("affine", "spline"):
            raise ValueError(f"unknown transformer {self.transformer!r}; use 'affine' or 'spline'")
        spline = self.transformer == "spline"
        net = conv_block(
            channels,
            self.hidden,
            context_width=self.context_width,
            outputs_per_channel=3 * self.bins - 1 if spline else 2,
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


def _check_image_shape(image_shape: tuple[int, ...], width: int, scales: int) -> None:
    if len(image_shape) != 3 or min(image_shape) < 1:
        raise ValueError(f"image_shape must be (channels, height, width), got {image_shape}")
    if math.prod(image_shape) != width:
        raise ValueError(
            f"images of shape {image_shape} have {math.prod(image_shape)} pixels, but the "
            f"model's width is {width}"
        )
    if any(n % 2**scales for n in image_shape[1:]):
        raise ValueError(
            f"{scales} scale(s) squeeze the image {scales} time(s): height and width "
            f"must be divisible by {2**scales}, got {image_shape[1]}×{image_shape[2]}"
        )


def multiscale(
    width: int = 64,
    *,
    image_shape: tuple[int, int, int] | list[int] = (1, 8, 8),
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

    Data are flat images ``(batch, width)`` of pixel values ``0 .. levels - 1``, as
    ``DequantizedFlow`` takes them. From the data side: ``Unflatten(image_shape)``,
    ``Logit(alpha)``, ``checkerboard`` RealNVP steps at full resolution (``ImageActNorm``
    and a checkerboard-masked coupling), then at each of ``scales`` scales ``Squeeze``
    (``(C, H, W)`` to ``(4C, H/2, W/2)``) and ``steps`` Glow steps (``ImageActNorm``,
    ``InvertibleConv1x1``, a channel-masked coupling), followed, except
    at the last scale, by ``FactorOut``: half the channels go straight to the latent,
    after (``split_prior``) a coupling that conditions them on the other half. A
    ``Flatten`` joins the parts into the base's vector. Every coupling's conditioner is a
    ``conv_block`` of ``hidden`` channels (``dropout`` in training), zero at
    initialization, so the flow starts as the logit and the actnorms. The couplings are
    rational-quadratic splines of ``bins`` bins on ``[-4, 4]`` (``transformer="spline"``,
    ``MaskedSplineCoupling``) or affine (``"affine"``: ``MaskedAffineCoupling``, Glow
    itself). Defaults: scikit-learn's digits (``(1, 8, 8)``, 17 levels), 2 checkerboard
    steps, 2 scales of 4 steps, spline couplings of 8 bins, 64 hidden channels, normal
    base; the best of the variants ``benchmarks/digits.py`` was tuned with (README,
    "Images: digits").
    """
    image_shape = tuple(int(n) for n in image_shape)
    if scales < 1 or steps < 0 or checkerboard < 0:
        raise ValueError(
            f"need scales >= 1, steps >= 0 and checkerboard >= 0; got scales={scales}, "
            f"steps={steps}, checkerboard={checkerboard}"
        )
    _check_image_shape(image_shape, width, scales)
    make = _Couplings(hidden, context_width, log_scale, dropout, transformer, bins)
    channels, height, breadth = image_shape
    data_to_latent: list[FlowLayer] = [Unflatten(image_shape), Logit(alpha)]
    for i in range(checkerboard):
        data_to_latent += make.checkerboard_step(image_shape, i % 2)
    parts = []
    for scale in range(scales):
        layers: list[FlowLayer] = [Squeeze()]
        channels, height, breadth = 4 * channels, height // 2, breadth // 2
        for step in range(steps):
            layers += make.step(channels, step % 2)
        last = scale == scales - 1
        if split_prior and not last:
            layers.append(make.split_prior(channels))
        # After the first FactorOut the value is a tuple: later scales work on its last part.
        data_to_latent += layers if scale == 0 else [OnLast(layer) for layer in layers]
        if not last:
            data_to_latent.append(FactorOut())  # acts on the last part itself
            parts.append((channels // 2, height, breadth))
            channels -= channels // 2
    parts.append((channels, height, breadth))
    data_to_latent.append(Flatten(parts))
    return DequantizedFlow(
        base_distribution(base, width),
        *reversed(data_to_latent),
        levels=levels,
        image_shape=image_shape,
    )


BUILDERS: dict[str, Callable[..., NormalizingFlow]] = {
    "realnvp": realnvp,
    "nice": nice,
    "maf": maf,
    "iaf": iaf,
    "nsf": nsf,
    "multiscale": multiscale,
}
