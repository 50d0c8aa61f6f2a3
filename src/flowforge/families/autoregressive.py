"""MAF and IAF, which is MAF inverted: masked autoregressive layers with a mixing layer
between each two.

Papamakarios et al., Masked autoregressive flow for density estimation, NeurIPS 2017;
Kingma et al., Improved variational inference with inverse autoregressive flow,
NeurIPS 2016.
"""

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
    """MAF: masked autoregressive layers with a mixing layer between each two.

    Density evaluation is one pass per layer; sampling ``width`` passes per layer
    (Papamakarios et al., Masked autoregressive flow for density estimation, NeurIPS
    2017).

    Args:
        width: The number of dimensions.
        layers: The number of ``MaskedAutoregressive`` layers.
        hidden: The width of each ``MADE``'s hidden layers.
        transformer: ``"affine"``, ``"spline"`` or a ``Transformer`` (``nsf`` passes a
            ``SplineTransformer``).
        mixing: The layer between two autoregressive ones: ``"reverse"`` (the column
            order reversed), ``"random"`` (a fixed random permutation) or ``"lu"``
            (a learned ``LULinear``).
        base: The base distribution's name (``flowforge.families.BASES``).
        context_width: The number of context columns of a conditional flow (0: none).
        activation: The ``MADE``'s activation (a module class).
        zero_init: Start every autoregressive layer at the identity.

    Returns:
        A ``NormalizingFlow``.

    Raises:
        ValueError: If ``width`` or ``layers`` is below 1.

    Example:
        >>> import torch
        >>> from flowforge import maf
        >>> model = maf(3, layers=2, hidden=8)
        >>> [type(layer).__name__ for layer in model.flow]
        ['MaskedAutoregressive', 'Reverse', 'MaskedAutoregressive']
        >>> model.log_prob(torch.randn(4, 3)).shape
        torch.Size([4])
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
    """IAF: ``maf(width, **options)`` with every autoregressive layer inverted.

    Sampling is one pass per layer and density evaluation ``width`` passes (Kingma et
    al., Improved variational inference with inverse autoregressive flow, NeurIPS 2016).

    Args:
        width: The number of dimensions.
        **options: ``maf``'s options, with its defaults.

    Returns:
        A ``NormalizingFlow``.

    Example:
        >>> import torch
        >>> from flowforge import iaf
        >>> model = iaf(2, layers=2, hidden=8)
        >>> type(model.flow[0]).__name__
        'Inverse'
        >>> model.sample(5).shape
        torch.Size([5, 2])
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
