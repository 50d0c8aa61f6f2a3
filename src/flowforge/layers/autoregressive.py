"""``MaskedAutoregressive``: MAF's layer, one MADE pass from data to latent, D passes back."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from flowforge.layers.base import FlowLayer, require_matrix
from flowforge.layers.coupling import total_log_det
from flowforge.nets.made import MADE
from flowforge.transformers import Transformer, resolve_transformer
from flowforge.values import Value


class MaskedAutoregressive(FlowLayer):
    """A masked autoregressive layer, affine or spline.

    Element ``i`` of the data ``x`` is a monotone map of latent ``z_i`` whose parameters
    come from ``x[:, :i]`` and the context, through a ``MADE`` network (Papamakarios et
    al., Masked autoregressive flow for density estimation, NeurIPS 2017). So
    ``inverse`` (data to latent, the density direction) is one network pass, while
    ``forward`` (latent to data, sampling) takes ``width`` passes. Wrap it in
    ``Inverse`` to swap the two speeds (IAF: Kingma et al., Improved variational
    inference with inverse autoregressive flow, NeurIPS 2016). The Jacobian is lower
    triangular in either direction.

    Args:
        width: The number of dimensions.
        hidden: The width of the ``MADE``'s hidden layers.
        transformer: ``"affine"`` (default), ``"spline"``, or a ``Transformer``
            instance (``flowforge.transformers``).
        context_width: The number of context columns (0: unconditional).
        num_hidden_layers: The ``MADE``'s hidden layers.
        activation: The hidden layers' activation (a module class).
        zero_init: Zero the ``MADE``'s output layer, so that the layer starts as the
            identity (for the affine and spline transformers).

    Example:
        >>> import torch
        >>> from flowforge import check_flow
        >>> from flowforge.layers import MaskedAutoregressive
        >>> _ = torch.manual_seed(0)
        >>> layer = MaskedAutoregressive(3, hidden=16)
        >>> z, log_det = layer.inverse(torch.randn(5, 3))  # one pass: the density side
        >>> z.shape, log_det.shape
        (torch.Size([5, 3]), torch.Size([5]))
        >>> check_flow(layer, torch.randn(5, 3))
    """

    def __init__(
        self,
        width: int,
        hidden: int = 32,
        *,
        transformer: str | Transformer = "affine",
        context_width: int = 0,
        num_hidden_layers: int = 2,
        activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self.width = width
        self.transformer = resolve_transformer(transformer)
        self.made = MADE(
            width,
            hidden,
            self.transformer.params_per_element,
            context_width=context_width,
            num_hidden_layers=num_hidden_layers,
            activation=activation,
            zero_init=zero_init,
        )

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_matrix(self, z, self.width)
        x = z
        for _ in range(self.width):
            x, log_det = self.transformer.forward(z, self.made(x, *context).unbind(-1))
        return x, total_log_det(log_det, x)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = require_matrix(self, x, self.width)
        z, log_det = self.transformer.inverse(x, self.made(x, *context).unbind(-1))
        return z, total_log_det(log_det, z)

    def extra_repr(self) -> str:
        return f"width={self.width}"
