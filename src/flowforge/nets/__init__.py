"""Conditioner networks: the MLPs, MADEs and conv nets that compute a layer's parameters."""

from flowforge.nets.conv import ConvNet, conv_block
from flowforge.nets.made import MADE, MaskedLinear
from flowforge.nets.mlp import MLP, block
from flowforge.nets.width import input_width

__all__ = ["MADE", "MLP", "ConvNet", "MaskedLinear", "block", "conv_block", "input_width"]
