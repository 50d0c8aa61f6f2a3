"""Glow on points (Kingma and Dhariwal 2018): actnorm, a learned linear map, a coupling."""

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
    """``steps`` Glow steps: ``ActNorm``, ``LULinear``, an affine coupling of the halves."""
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
