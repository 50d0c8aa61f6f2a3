"""Convolutional conditioner networks for image couplings: ``ConvNet`` and ``conv_block``."""

from __future__ import annotations

from collections.abc import Callable

import torch


class ConvNet(torch.nn.Sequential):
    """A small convolutional network for image couplings: 3×3 conv, act, 1×1 conv, act, 3×3 conv.

    Maps ``(batch, in_channels, H, W)`` to ``(batch, out_channels, H, W)`` (padding keeps
    the size). ``in_channels`` and ``out_channels`` are recorded for error messages
    (``input_width`` reads ``in_channels``).
    ``dropout > 0`` adds dropout after each activation (active in training mode only, so
    the coupling it feeds is a fixed bijection in eval mode).
    """

    def __init__(
        self,
        in_channels: int,
        hidden: int,
        out_channels: int,
        activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
        dropout: float = 0.0,
    ) -> None:
        if min(in_channels, hidden, out_channels) < 1:
            raise ValueError(
                "ConvNet channel counts must be positive, got "
                f"in={in_channels}, hidden={hidden}, out={out_channels}"
            )
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        drop = [torch.nn.Dropout(dropout)] if dropout > 0 else []
        super().__init__(
            torch.nn.Conv2d(in_channels, hidden, 3, padding=1),
            activation(),
            *drop,
            torch.nn.Conv2d(hidden, hidden, 1),
            activation(),
            *drop,
            torch.nn.Conv2d(hidden, out_channels, 3, padding=1),
        )
        self.in_channels = in_channels
        self.out_channels = out_channels

    def zero_last_layer_(self) -> ConvNet:
        """Zero the output convolution in place, so the network outputs 0 everywhere."""
        torch.nn.init.zeros_(self[-1].weight)
        torch.nn.init.zeros_(self[-1].bias)
        return self


def conv_block(
    channels: int,
    hidden: int,
    *,
    context_width: int = 0,
    outputs_per_channel: int = 2,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = True,
    dropout: float = 0.0,
) -> ConvNet:
    """The ``ConvNet`` that conditions a masked coupling on images of ``channels``.

    It reads the masked image (``channels``) followed by ``context_width`` channels of
    context (each context column broadcast over the pixels) and outputs
    ``outputs_per_channel * channels`` channels: for a ``MaskedAffineCoupling`` (the
    default of 2) the log-scale and the shift of every channel; for a
    ``MaskedSplineCoupling``, its transformer's ``params_per_element`` spline parameters
    per channel. ``zero_init=True`` (the default) zeroes the output
    convolution, so the coupling starts as the identity. ``dropout`` as in ``ConvNet``.
    """
    net = ConvNet(
        channels + context_width, hidden, outputs_per_channel * channels, activation, dropout
    )
    return net.zero_last_layer_() if zero_init else net
