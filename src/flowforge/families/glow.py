"""Glow on points: actnorm, a learned linear map, a coupling.

Kingma and Dhariwal, Glow: Generative flow with invertible 1x1 convolutions, NeurIPS 2018.
"""

from __future__ import annotations

from flowforge.families.bases import base_distribution
from flowforge.families.family import BASE, HIDDEN, POINTS, Family, Option
from flowforge.flow import NormalizingFlow
from flowforge.layers import ActNorm, AffineCoupling, FlowLayer, LULinear, Merge, Split
from flowforge.nets import block


def glow(
    width: int = 2,
    *,
    steps: int = 4,
    hidden: int = 32,
    base: str = "normal",
    context_width: int = 0,
) -> NormalizingFlow:
    """``steps`` Glow steps: ``ActNorm``, ``LULinear``, an affine coupling of the halves.

    Glow's step (Kingma and Dhariwal, Glow: Generative flow with invertible 1x1
    convolutions, NeurIPS 2018) on vectors: the 1x1 convolution becomes a learned
    ``LULinear``. Initialize the actnorms from data before training
    (``flowforge.layers.initialize_actnorm``).

    Args:
        width: The number of dimensions (at least 2).
        steps: The number of steps.
        hidden: The width of each coupling's conditioner.
        base: The base distribution's name (``flowforge.families.BASES``).
        context_width: The number of context columns of a conditional flow (0: none).

    Returns:
        A ``NormalizingFlow``.

    Example:
        >>> import torch
        >>> from flowforge.families.glow import glow
        >>> from flowforge.layers import initialize_actnorm
        >>> _ = torch.manual_seed(0)
        >>> model = glow(2, steps=2, hidden=8)
        >>> initialize_actnorm(model, torch.randn(100, 2))
        2
        >>> model.log_prob(torch.randn(3, 2)).shape
        torch.Size([3])
    """
    a, b = width - width // 2, width // 2
    layers: list[FlowLayer] = []
    for _ in range(steps):
        coupling = AffineCoupling(block(a, b, hidden, context_width=context_width))
        layers += [ActNorm(width), LULinear(width), Split(), coupling, Merge([a, b])]
    return NormalizingFlow(base_distribution(base, width), *layers)


DECLARED = (
    Family(
        "glow",
        glow,
        POINTS,
        "`ActNorm`, `LULinear` and an affine coupling per step (Kingma and Dhariwal 2018)",
        options=(Option("steps", "flow steps", minimum=1), HIDDEN, BASE),
        test_size={"steps": 2, "hidden": 8},
    ),
)
