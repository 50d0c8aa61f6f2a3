"""One registry of layer constructors; ``tests/layers/test_contract.py`` checks them all.

Register a layer with ``@register(name, ...)`` on a function
``build(width, context_width) -> FlowLayer``. ``value`` makes the layer's input for a
batch and width (a tensor by default, a pair for couplings); ``min_width`` is the
smallest width it supports; ``uses_context`` says its output depends on context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from flowforge import (
    AffineCoupling,
    Merge,
    Scale,
    SequentialFlow,
    Split,
    Swap,
    Translate,
    block,
)
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
