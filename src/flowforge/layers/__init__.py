"""Invertible layers in the notebook's protocol: ``forward(z, *context) -> (x, log|det|)``.

The contract every layer follows is ``FlowLayer``'s docstring (``flowforge.layers.base``).
"""

from flowforge.layers.autoregressive import MaskedAutoregressive
from flowforge.layers.base import FlowLayer, SequentialFlow
from flowforge.layers.coupling import AdditiveCoupling, AffineCoupling, Coupling, SplineCoupling
from flowforge.layers.elementwise import Logit, Scale, Translate
from flowforge.layers.image import ImageActNorm, InvertibleConv1x1
from flowforge.layers.inverse import Inverse
from flowforge.layers.linear import LULinear, Permute, Reverse
from flowforge.layers.masked import (
    MaskedAffineCoupling,
    MaskedCoupling,
    MaskedSplineCoupling,
    channel_mask,
    checkerboard_mask,
)
from flowforge.layers.multiscale import FactorOut, Flatten, OnLast, Squeeze, Unflatten
from flowforge.layers.normalization import ActNorm, BatchNormFlow, initialize_actnorm
from flowforge.layers.plumbing import Merge, Split, Swap

__all__ = [
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "BatchNormFlow",
    "Coupling",
    "FactorOut",
    "Flatten",
    "FlowLayer",
    "ImageActNorm",
    "Inverse",
    "InvertibleConv1x1",
    "LULinear",
    "Logit",
    "MaskedAffineCoupling",
    "MaskedAutoregressive",
    "MaskedCoupling",
    "MaskedSplineCoupling",
    "Merge",
    "OnLast",
    "Permute",
    "Reverse",
    "Scale",
    "SequentialFlow",
    "SplineCoupling",
    "Split",
    "Squeeze",
    "Swap",
    "Translate",
    "Unflatten",
    "channel_mask",
    "checkerboard_mask",
    "initialize_actnorm",
]
