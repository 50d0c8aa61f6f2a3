"""Invertible layers in the notebook's protocol: ``forward(z, *context) -> (x, log|det|)``."""

from flowforge.layers.autoregressive import MaskedAutoregressive
from flowforge.layers.base import FlowLayer, SequentialFlow
from flowforge.layers.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    Coupling,
    SoftClampLogScale,
)
from flowforge.layers.elementwise import Scale, Translate
from flowforge.layers.inverse import Inverse
from flowforge.layers.linear import LULinear, Permute, Reverse
from flowforge.layers.normalization import ActNorm, BatchNormFlow, initialize_actnorm
from flowforge.layers.plumbing import Merge, Split, Swap
from flowforge.layers.spline import SplineCoupling

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "BatchNormFlow",
    "Coupling",
    "FlowLayer",
    "Inverse",
    "LULinear",
    "MaskedAutoregressive",
    "Merge",
    "Permute",
    "Reverse",
    "Scale",
    "SequentialFlow",
    "SoftClampLogScale",
    "SplineCoupling",
    "Split",
    "Swap",
    "Translate",
    "initialize_actnorm",
]
