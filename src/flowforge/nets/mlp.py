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
