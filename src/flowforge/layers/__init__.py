"""Invertible layers in the notebook's protocol: ``forward(z, *context) -> (x, log|det|)``."""

from flowforge.layers.base import FlowLayer, SequentialFlow
from flowforge.layers.coupling import AffineCoupling, Coupling, SoftClampLogScale
from flowforge.layers.elementwise import Scale, Translate
from flowforge.layers.plumbing import Merge, Split, Swap

__all__ = [
    "AffineCoupling",
    "Coupling",
    "FlowLayer",
    "Merge",
    "Scale",
    "SequentialFlow",
    "SoftClampLogScale",
    "Split",
    "Swap",
    "Translate",
]
