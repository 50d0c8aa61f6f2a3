"""NICE: additive couplings, then a learned per-column scale.

Dinh et al., NICE: Non-linear independent components estimation, ICLR 2015 (workshop).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowforge.families.bases import base_distribution
from flowforge.families.family import BASE, COUPLINGS, HIDDEN, POINTS, ZERO_INIT, Entry, Family
from flowforge.families.stack import coupling_stack
from flowforge.flow import NormalizingFlow
from flowforge.layers import AdditiveCoupling, FlowLayer, Scale
from flowforge.nets import block


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
    """NICE: additive couplings alternated by ``Swap``, then a learned per-column
    ``Scale``, the only layer that changes volume.

    Dinh et al., NICE: Non-linear independent components estimation, ICLR 2015
    (workshop).

    Args:
        width: The number of dimensions (at least 2).
        couplings: The number of additive couplings.
        hidden: The width of each conditioner's hidden layers.
        base: The base distribution's name (``flowforge.families.BASES``).
        context_width: The number of context columns of a conditional flow (0: none).
        activation: The conditioners' activation (a module class).
        zero_init: Start every coupling at the identity.

    Returns:
        A ``NormalizingFlow``.

    Example:
        >>> import torch
        >>> from flowforge import nice
        >>> model = nice(2, couplings=2, hidden=8)
        >>> model.log_prob(torch.randn(3, 2)).shape
        torch.Size([3])
        >>> type(model.flow[-1]).__name__
        'Scale'
    """

    def make(a: int, b: int) -> FlowLayer:
        net = block(
            a, b, hidden, context_width=context_width, outputs_per_dim=1, activation=activation
        )
        return AdditiveCoupling(net.zero_last_layer_() if zero_init else net)

    layers = coupling_stack(width, couplings, make)
    return NormalizingFlow(
        base_distribution(base, width), *layers, Scale(torch.ones(width), learnable=True)
    )


DECLARED = (
    Family(
        "nice",
        nice,
        POINTS,
        "additive couplings alternated by `Swap`, then a learned `Scale` (Dinh et al. 2015)",
        options=(COUPLINGS, HIDDEN, ZERO_INIT, BASE),
        test_size={"couplings": 2, "hidden": 8},
        compare=(Entry("nice"),),
    ),
)
