"""One registry of layer constructors; ``tests/layers/test_contract.py`` checks them all.

Register a layer with ``@register(name, ...)`` on a function
``build(width, context_width) -> FlowLayer``. ``value`` makes the layer's input for a
batch and width (a tensor by default, a pair for couplings); ``min_width`` is the
smallest width it supports; ``uses_context`` says its output depends on context.

Image layers read ``width`` as a channel count; their images have the height and width
``image_size(width)`` (2 or 4 each, so the random widths give every combination).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from flowforge import (
    AdditiveCoupling,
    AffineCoupling,
    Merge,
    Scale,
    SequentialFlow,
    SplineCoupling,
    Split,
    Swap,
    Translate,
    block,
)
from flowforge.layers import (
    ActNorm,
    BatchNormFlow,
    Coupling,
    FactorOut,
    Flatten,
    ImageActNorm,
    Inverse,
    InvertibleConv1x1,
    Logit,
    LULinear,
    MaskedAffineCoupling,
    MaskedAutoregressive,
    MaskedCoupling,
    MaskedSplineCoupling,
    OnLast,
    Permute,
    Reverse,
    Squeeze,
    Unflatten,
    channel_mask,
    checkerboard_mask,
)
from flowforge.nets import conv_block
from flowforge.transformers import AdditiveTransformer, AffineTransformer, SplineTransformer
from flowforge.values import Value


def tensor_value(batch: int, width: int, dtype: torch.dtype) -> Value:
    return torch.randn(batch, width, dtype=dtype)


def pair_value(batch: int, width: int, dtype: torch.dtype) -> Value:
    a = width - width // 2
    return (torch.randn(batch, a, dtype=dtype), torch.randn(batch, width - a, dtype=dtype))


@dataclass(frozen=True)
class LayerCase:
    name: str
    build: Callable[[int, int], torch.nn.Module]
    value: Callable[[int, int, torch.dtype], Value] = tensor_value
    min_width: int = 1
    uses_context: bool = False


LAYERS: list[LayerCase] = []


def register(name: str, **options) -> Callable:
    def decorate(build: Callable[[int, int], torch.nn.Module]) -> Callable:
        LAYERS.append(LayerCase(name, build, **options))
        return build

    return decorate


def _halves(width: int) -> tuple[int, int]:
    a = width - width // 2
    return a, width - a


@register("Scale")
def _scale(width, context_width):
    return Scale(torch.rand(width) * 2 + 0.25)


@register("Scale-negative-learnable")
def _scale_negative(width, context_width):
    return Scale(-(torch.rand(width) + 0.5), learnable=True)


@register("Translate")
def _translate(width, context_width):
    return Translate(torch.randn(width))


@register("Split", min_width=2)
def _split(width, context_width):
    return Split()


@register("Merge", value=pair_value, min_width=2)
def _merge(width, context_width):
    return Merge()


@register("Swap", value=pair_value, min_width=2)
def _swap(width, context_width):
    return Swap()


@register("AffineCoupling", value=pair_value, min_width=2, uses_context=True)
def _affine(width, context_width):
    a, b = _halves(width)
    return AffineCoupling(block(a, b, 8, context_width=context_width))


@register("AffineCoupling-exp", value=pair_value, min_width=2, uses_context=True)
def _affine_exp(width, context_width):
    a, b = _halves(width)
    return AffineCoupling(block(a, b, 8, context_width=context_width), log_scale="exp")


@register("AffineCoupling-sigmoid", value=pair_value, min_width=2, uses_context=True)
def _affine_sigmoid(width, context_width):
    a, b = _halves(width)
    return AffineCoupling(block(a, b, 8, context_width=context_width), log_scale="sigmoid")


@register("SequentialFlow-realnvp", min_width=2, uses_context=True)
def _realnvp(width, context_width):
    a, b = _halves(width)
    return SequentialFlow(
        Split(),
        AffineCoupling(block(a, b, 8, context_width=context_width)),
        Swap(),
        AffineCoupling(block(b, a, 8, context_width=context_width)),
        Merge([b, a]),
        Scale(torch.rand(width) + 0.5),
    )


@register("Coupling-affine-exp-transformer", value=pair_value, min_width=2, uses_context=True)
def _coupling(width, context_width):
    a, b = _halves(width)
    return Coupling(block(a, b, 8, context_width=context_width), AffineTransformer("exp"))


@register("AdditiveCoupling", value=pair_value, min_width=2, uses_context=True)
def _additive(width, context_width):
    a, b = _halves(width)
    return AdditiveCoupling(block(a, b, 8, context_width=context_width, outputs_per_dim=1))


def _spline_block(a, b, context_width, bins):
    net = block(a, b, 8, context_width=context_width, outputs_per_dim=3 * bins - 1)
    with torch.no_grad():  # a strongly bent spline, not the near-identity of a fresh net
        net[-1].weight.mul_(3.0)
    return net


# A bound of 1.5 puts about 13% of standard normal inputs in the identity tails.
@register("SplineCoupling", value=pair_value, min_width=2, uses_context=True)
def _spline(width, context_width):
    a, b = _halves(width)
    return SplineCoupling(_spline_block(a, b, context_width, 5), bins=5, bound=1.5)


@register("SplineCoupling-2bins", value=pair_value, min_width=2, uses_context=True)
def _spline_two_bins(width, context_width):
    a, b = _halves(width)
    return SplineCoupling(_spline_block(a, b, context_width, 2), bins=2, bound=1.5)


@register("MaskedAutoregressive-affine", uses_context=True)
def _maf(width, context_width):
    return MaskedAutoregressive(width, 8, context_width=context_width)


@register("MaskedAutoregressive-spline", uses_context=True)
def _maf_spline(width, context_width):
    spline = SplineTransformer(bins=4, bound=1.5)
    return MaskedAutoregressive(width, 8, transformer=spline, context_width=context_width)


@register("Inverse-MaskedAutoregressive", uses_context=True)
def _iaf(width, context_width):
    return Inverse(MaskedAutoregressive(width, 8, context_width=context_width))


@register("Inverse-Scale")
def _inverse_scale(width, context_width):
    return Inverse(Scale(torch.rand(width) + 0.5))


@register("LULinear")
def _lu(width, context_width):
    layer = LULinear(width)
    with torch.no_grad():  # away from the orthogonal start, so log|det| is not zero
        layer.log_diagonal.add_(torch.randn(width) * 0.3)
        layer.bias.normal_()
    return layer


@register("Permute")
def _permute(width, context_width):
    return Permute(width)


@register("Reverse")
def _reverse(width, context_width):
    return Reverse()


@register("ActNorm")
def _actnorm(width, context_width):
    layer = ActNorm(width)
    with torch.no_grad():
        layer.log_scale.normal_(0.0, 0.5)
        layer.shift.normal_()
    return layer


@register("BatchNormFlow-eval")
def _batchnorm(width, context_width):
    layer = BatchNormFlow(width, momentum=1.0)
    with torch.no_grad():
        layer.log_gamma.normal_(0.0, 0.5)
        layer.beta.normal_()
    layer.inverse(torch.randn(16, width) * 2 + 1)  # running statistics away from 0 and 1
    return layer.eval()


# Image layers: ``width`` is the channel count, the image size follows from it.


def image_size(width: int) -> tuple[int, int]:
    return 2 * (1 + width % 2), 2 * (1 + (width // 2) % 2)


def image_value(batch: int, width: int, dtype: torch.dtype) -> Value:
    return torch.randn(batch, width, *image_size(width), dtype=dtype)


def squeezed_value(batch: int, width: int, dtype: torch.dtype) -> Value:
    """What ``Squeeze.forward`` takes: ``4 × width`` channels at half the image size."""
    h, w = image_size(width)
    return torch.randn(batch, 4 * width, h // 2, w // 2, dtype=dtype)


def factored_value(batch: int, width: int, dtype: torch.dtype) -> Value:
    """What ``FactorOut.forward`` takes: an earlier latent, then ``width // 2`` channels
    factored out and the ``width - width // 2`` kept."""
    h, w = image_size(width)
    earlier = torch.randn(batch, 3, dtype=dtype)
    out = torch.randn(batch, width // 2, h, w, dtype=dtype)
    return earlier, out, torch.randn(batch, width - width // 2, h, w, dtype=dtype)


def tagged_image_value(batch: int, width: int, dtype: torch.dtype) -> Value:
    """An image after one factored-out part: what ``OnLast`` layers see."""
    return torch.randn(batch, 2, 2, 2, dtype=dtype), image_value(batch, width, dtype)


def flatten_shapes(width: int) -> list[tuple[int, int, int]]:
    """Two parts, as a multi-scale flow factors them out: a full-size and a squeezed one."""
    h, w = image_size(width)
    return [(width, h, w), (4, h // 2, w // 2)]


def flat_value(batch: int, width: int, dtype: torch.dtype) -> Value:
    size = sum(c * h * w for c, h, w in flatten_shapes(width))
    return torch.randn(batch, size, dtype=dtype)


@register("Squeeze", value=squeezed_value)
def _squeeze(width, context_width):
    return Squeeze()


@register("Inverse-Squeeze", value=image_value)
def _unsqueeze(width, context_width):
    return Inverse(Squeeze())


@register("FactorOut", value=factored_value, min_width=2)
def _factor_out(width, context_width):
    return FactorOut()


@register("Inverse-FactorOut", value=image_value, min_width=2)
def _factor_out_inverse(width, context_width):
    return Inverse(FactorOut())


@register("Flatten", value=flat_value)
def _flatten(width, context_width):
    return Flatten(flatten_shapes(width))


@register("Unflatten", value=image_value)
def _unflatten(width, context_width):
    return Unflatten((width, *image_size(width)))


@register("Logit")
def _logit(width, context_width):
    return Logit(0.05)


@register("Logit-image-no-alpha", value=image_value)
def _logit_image(width, context_width):
    return Logit(0.0)


def _image_actnorm(width):
    layer = ImageActNorm(width)
    with torch.no_grad():
        layer.log_scale.normal_(0.0, 0.5)
        layer.shift.normal_()
    return layer


@register("ImageActNorm", value=image_value)
def _actnorm_image(width, context_width):
    return _image_actnorm(width)


def _conv1x1(width):
    layer = InvertibleConv1x1(width)
    with torch.no_grad():  # away from the rotation it starts at, so log|det| is not zero
        layer.log_diagonal.add_(torch.randn(width) * 0.3)
        layer.bias.normal_()
    return layer


@register("InvertibleConv1x1", value=image_value)
def _invertible_conv(width, context_width):
    return _conv1x1(width)


def _conv_net(width, context_width, outputs_per_channel=2):
    net = conv_block(
        width,
        8,
        context_width=context_width,
        outputs_per_channel=outputs_per_channel,
        zero_init=False,
    )
    with torch.no_grad():  # a strongly non-identity coupling, not a near-zero output
        net[-1].weight.mul_(3.0)
    return net


@register("MaskedAffineCoupling-checkerboard", value=image_value, uses_context=True)
def _checkerboard_coupling(width, context_width):
    mask = checkerboard_mask(*image_size(width), parity=width % 2)
    return MaskedAffineCoupling(mask, _conv_net(width, context_width))


@register("MaskedAffineCoupling-channel", value=image_value, min_width=2, uses_context=True)
def _channel_coupling(width, context_width):
    mask = channel_mask(width, parity=1)
    return MaskedAffineCoupling(mask, _conv_net(width, context_width), log_scale="exp")


@register("OnLast-glow-step", value=tagged_image_value, min_width=2, uses_context=True)
def _glow_step(width, context_width):
    return OnLast(
        SequentialFlow(
            _image_actnorm(width),
            _conv1x1(width),
            MaskedAffineCoupling(channel_mask(width), _conv_net(width, context_width)),
        )
    )


@register("MaskedCoupling-additive-channel", value=image_value, min_width=2, uses_context=True)
def _masked_additive(width, context_width):
    net = _conv_net(width, context_width, outputs_per_channel=1)
    return MaskedCoupling(channel_mask(width, parity=0), net, AdditiveTransformer())


@register("MaskedSplineCoupling-checkerboard", value=image_value, uses_context=True)
def _spline_image_coupling(width, context_width):
    mask = checkerboard_mask(*image_size(width), parity=1)
    net = _conv_net(width, context_width, outputs_per_channel=3 * 4 - 1)
    return MaskedSplineCoupling(mask, net, bins=4, bound=1.5)
