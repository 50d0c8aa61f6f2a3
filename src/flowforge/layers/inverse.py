"""``Inverse(layer)``: the same bijection used the other way round."""

from __future__ import annotations

from torch import Tensor

from flowforge.layers.base import FlowLayer
from flowforge.values import Value


class Inverse(FlowLayer):
    """Swap a layer's directions: ``forward`` is ``layer.inverse`` and vice versa.

    ``Inverse(MaskedAutoregressive(...))`` is an IAF layer: sampling becomes one
    network pass and density evaluation ``width`` passes. The wrapped layer's
    parameters and buffers are this layer's (as ``self.layer``).
    """

    def __init__(self, layer: FlowLayer) -> None:
        super().__init__()
        if not callable(getattr(layer, "inverse", None)):
            raise TypeError(f"Inverse needs an invertible layer, got {type(layer).__name__}")
        self.layer = layer
        self.volume_preserving = getattr(layer, "volume_preserving", False)

    def forward(self, z: Value, *context: Tensor) -> tuple[Value, Tensor]:
        return self.layer.inverse(z, *context)

    def inverse(self, z: Value, *context: Tensor) -> tuple[Value, Tensor]:
        return self.layer.forward(z, *context)
