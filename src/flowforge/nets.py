"""Networks that feed coupling layers (their "conditioners")."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F
from torch.nn.modules import module as nn_module

# Modules whose forward is one functional call: ``MLP.forward`` calls the function
# directly instead of going through ``nn.Module.__call__`` (a few microseconds each).
# The second function may overwrite its input; it is used on tensors the MLP made.
_DIRECT: dict[type, tuple[Callable, Callable]] = {
    torch.nn.ReLU: (lambda m, h: torch.relu(h), lambda m, h: torch.relu_(h)),
    torch.nn.Tanh: (lambda m, h: torch.tanh(h), lambda m, h: torch.tanh_(h)),
    torch.nn.SiLU: (lambda m, h: F.silu(h),) * 2,
    torch.nn.GELU: (lambda m, h: F.gelu(h, approximate=m.approximate),) * 2,
}


# From this many rows on, ``MLP.forward`` works on transposed activations
# (``_forward_transposed``): faster there, slower for small training batches.
TRANSPOSED_ROWS = 2048


def _has_hooks(module: torch.nn.Module) -> bool:
    """Whether calling ``module`` would run hooks (its own or global ones)."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
        or nn_module._global_forward_hooks
        or nn_module._global_forward_pre_hooks
        or nn_module._global_backward_hooks
        or nn_module._global_backward_pre_hooks
    )


class MLP(torch.nn.Sequential):
    """A multilayer perceptron: ``Linear, act, Linear, act, ..., Linear``.

    A ``torch.nn.Sequential``, so it indexes and prints as one, with the input and
    output widths recorded as ``in_features`` and ``out_features``.
    Maps ``(batch, in_features)`` to ``(batch, out_features)``.

    ``forward`` computes the same function as ``Sequential``'s, but calls the plain
    layers (``Linear`` and the usual activations) as functions, with activations in
    place on the ``Linear`` outputs: for networks this small, ``nn.Module.__call__``
    and allocations cost more than the arithmetic. A child with hooks (or of any other
    type) is called as a module, so its hooks still run.
    """

    def __init__(
        self,
        in_features: int,
        hidden: int,
        out_features: int,
        num_hidden_layers: int = 2,
        activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    ) -> None:
        if min(in_features, hidden, out_features) < 1 or num_hidden_layers < 1:
            raise ValueError(
                "MLP widths and depth must be positive, got "
                f"in={in_features}, hidden={hidden}, out={out_features}, "
                f"layers={num_hidden_layers}"
            )
        widths = [in_features] + [hidden] * num_hidden_layers
        modules: list[torch.nn.Module] = []
        for w_in, w_out in zip(widths[:-1], widths[1:]):
            modules += [torch.nn.Linear(w_in, w_out), activation()]
        modules.append(torch.nn.Linear(widths[-1], out_features))
        super().__init__(*modules)
        self.in_features = in_features
        self.out_features = out_features

    def forward(self, h: Tensor) -> Tensor:
        if h.dim() == 2 and h.shape[0] >= TRANSPOSED_ROWS and self._plain():
            return self._forward_transposed(h)
        fresh = False  # whether ``h`` was made here, so that an activation may overwrite it
        for module in self._modules.values():
            if _has_hooks(module):
                h, fresh = module(h), False
            elif type(module) is torch.nn.Linear:
                h, fresh = F.linear(h, module.weight, module.bias), True
            elif type(module) in _DIRECT:
                h = _DIRECT[type(module)][fresh](module, h)
            else:
                h, fresh = module(h), False
        return h

    def _plain(self) -> bool:
        """Only ``Linear`` layers and known activations, and no hooks."""
        return all(
            (type(m) is torch.nn.Linear or type(m) in _DIRECT) and not _has_hooks(m)
            for m in self._modules.values()
        )

    def _forward_transposed(self, h: Tensor) -> Tensor:
        """The same function computed on ``(features, rows)`` activations.

        For many rows, ``W @ h^T`` (few long rows) runs faster than ``h @ W^T`` (many
        short rows) and keeps more of the activations in the cache.
        """
        h, fresh = h.t(), False
        for module in self._modules.values():
            if type(module) is torch.nn.Linear:
                weight, bias = module.weight, module.bias
                h = torch.mm(weight, h) if bias is None else torch.addmm(bias[:, None], weight, h)
                fresh = True
            else:
                h = _DIRECT[type(module)][fresh](module, h)
        return h.t()

    def zero_last_layer_(self) -> MLP:
        """Zero the output layer in place, so the network outputs 0 everywhere."""
        last = self[-1]
        torch.nn.init.zeros_(last.weight)
        torch.nn.init.zeros_(last.bias)
        return self


def block(
    dim_A: int,
    dim_B: int,
    dim_hidden: int,
    *,
    context_width: int = 0,
    num_hidden_layers: int = 2,
    outputs_per_dim: int = 2,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> MLP:
    """Create the MLP that conditions a coupling layer (the notebook's ``block``).

    It reads ``z_A`` (width ``dim_A``), followed by ``context_width`` columns of context
    when the flow is conditional, and outputs ``outputs_per_dim * dim_B`` columns: for
    ``AffineCoupling`` (the default of 2) the log-scale ``s`` and shift ``t`` of ``z_B``.
    Two hidden layers of width ``dim_hidden`` with ReLU, as in the notebook.

    ``zero_init=True`` zeroes the output layer so the coupling starts as the identity.
    """
    net = MLP(
        dim_A + context_width,
        dim_hidden,
        outputs_per_dim * dim_B,
        num_hidden_layers=num_hidden_layers,
        activation=activation,
    )
    return net.zero_last_layer_() if zero_init else net


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
    ``MaskedSplineCoupling`` of ``bins`` bins, ``outputs_per_channel=3 * bins - 1``
    spline parameters per channel. ``zero_init=True`` (the default) zeroes the output
    convolution, so the coupling starts as the identity. ``dropout`` as in ``ConvNet``.
    """
    net = ConvNet(
        channels + context_width, hidden, outputs_per_channel * channels, activation, dropout
    )
    return net.zero_last_layer_() if zero_init else net
