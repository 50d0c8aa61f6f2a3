"""Reading a network's expected input width, for error messages that say what to build."""

from __future__ import annotations

import torch


def _input_size(module: torch.nn.Module) -> int | None:
    width = getattr(module, "in_features", None)
    return getattr(module, "in_channels", None) if width is None else width


def input_width(net: torch.nn.Module) -> int | None:
    """The input width (or, for a convolutional net, the input channels) a network
    expects, when it can be read off; else ``None``."""
    width = _input_size(net)
    if width is None and isinstance(net, torch.nn.Sequential) and len(net) > 0:
        width = _input_size(net[0])
    return width
