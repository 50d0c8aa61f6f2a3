"""MAF (Papamakarios et al. 2017) and IAF (Kingma et al. 2016), which is MAF inverted:
masked autoregressive layers with a mixing layer between each two."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch

from flowforge.families.bases import base_distribution
from flowforge.families.family import BASE, HIDDEN, LAYERS, POINTS, ZERO_INIT, Entry, Family
from flowforge.families.stack import mixing as mixing_layer
from flowforge.flow import NormalizingFlow
from flowforge.layers import FlowLayer, Inverse, MaskedAutoregressive
from flowforge.transformers import Transformer


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
    ``transformer`` is ``"affine"``, ``"spline"`` or a ``Transformer`` (``nsf`` passes a
    ``SplineTransformer``). Defaults: 5 affine layers with MADE hidden width 32, normal base.
    """
    if width < 1 or layers < 1:
        raise ValueError(f"need width >= 1 and layers >= 1, got width={width}, layers={layers}")
    stack: list[FlowLayer] = []
    for i in range(layers):
        stack.append(
            MaskedAutoregressive(
                width,
                hidden,
                transformer=transformer,
                context_width=context_width,
                activation=activation,
                zero_init=zero_init,
            )
        )
        if i < layers - 1 and width > 1:
            stack.append(mixing_layer(mixing, width))
    return NormalizingFlow(base_distribution(base, width), *stack)


def inverted(flow: NormalizingFlow) -> NormalizingFlow:
    """``flow`` with each of its ``MaskedAutoregressive`` layers wrapped in ``Inverse``
    (the same modules, so the same weights): a MAF becomes an IAF."""
    layers = (
        Inverse(layer) if isinstance(layer, MaskedAutoregressive) else layer for layer in flow.flow
    )
    return NormalizingFlow(flow.base_distribution, *layers)


def iaf(width: int = 2, **options: Any) -> NormalizingFlow:
    """IAF (Kingma et al. 2016): ``maf(width, **options)`` with every autoregressive layer
    inverted, so sampling is one pass per layer and density evaluation ``width`` passes.
    It takes ``maf``'s options, with its defaults.
    """
    return inverted(maf(width, **options))


iaf.__signature__ = inspect.signature(maf)  # maf's options, stated once

_MAF_OPTIONS = (LAYERS, HIDDEN, ZERO_INIT, BASE)
DECLARED = (
    Family(
        "maf",
        maf,
        POINTS,
        "`MaskedAutoregressive` layers with `Reverse` between (Papamakarios et al. 2017)",
        options=_MAF_OPTIONS,
        test_size={"layers": 2, "hidden": 8},
        compare=(Entry("maf"),),
    ),
    Family(
        "iaf",
        iaf,
        POINTS,
        "`maf` with each autoregressive layer inverted: sampling in one pass (Kingma et al. 2016)",
        options=_MAF_OPTIONS,
        test_size={"layers": 2, "hidden": 8},
    ),
)
