"""Networks that feed coupling layers (their "conditioners")."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor
from torch.nn import functional as F

from flowforge.gradients import Batch, add_matmul, add_row_sums, has_hooks, owns_handwritten

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
# (``_forward_transposed``): faster there, slower for small training batches. Set it to
# ``math.inf`` to switch the trick off.
TRANSPOSED_ROWS = 2048
# Whether ``MLP.forward`` calls its plain children as functions (``_DIRECT``); ``False``
# calls every child as a module, as ``torch.nn.Sequential`` does.
DIRECT_CALLS = True


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

    Args:
        in_features: The input width.
        hidden: The width of every hidden layer.
        out_features: The output width.
        num_hidden_layers: The number of hidden layers (each a ``Linear`` and an
            activation).
        activation: The activation's module class (``torch.nn.ReLU``, ``torch.nn.Tanh``,
            ...), instantiated once per hidden layer.

    Raises:
        ValueError: If a width or the depth is not positive.

    Example:
        >>> import torch
        >>> from flowforge.nets import MLP
        >>> net = MLP(3, 16, 4)
        >>> net(torch.randn(5, 3)).shape
        torch.Size([5, 4])
        >>> [type(m).__name__ for m in net]
        ['Linear', 'ReLU', 'Linear', 'ReLU', 'Linear']
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
        if not DIRECT_CALLS:
            return super().forward(h)
        if h.dim() == 2 and h.shape[0] >= TRANSPOSED_ROWS and self._plain():
            return self._forward_transposed(h)
        fresh = False  # whether ``h`` was made here, so that an activation may overwrite it
        for module in self._modules.values():
            if has_hooks(module):
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
            (type(m) is torch.nn.Linear or type(m) in _DIRECT) and not has_hooks(m)
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

    def handwritten(self) -> MLPGradients | None:
        """The hand-written form (``MLPGradients``) when every child is a plain ``Linear``
        or a ReLU/Tanh activation and nothing has hooks; else ``None``."""
        modules = list(self)
        plain = (
            owns_handwritten(self, "forward")
            and not has_hooks(self)
            and len(modules) % 2 == 1
            and all(type(m) is torch.nn.Linear and not has_hooks(m) for m in modules[0::2])
            and all(type(m) in MLPGradients.ACTIVATIONS and not has_hooks(m) for m in modules[1::2])
        )
        return MLPGradients(self) if plain else None


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
    """Create the MLP that conditions a coupling layer (the course notebook's ``block``).

    It reads ``z_A``, followed by the context columns when the flow is conditional, and
    outputs the parameters of the transformation of ``z_B``. By default two hidden
    layers of width ``dim_hidden`` with ReLU, as in the notebook.

    Args:
        dim_A: The width of ``z_A``, the part the coupling leaves unchanged.
        dim_B: The width of ``z_B``, the part it transforms.
        dim_hidden: The width of the hidden layers.
        context_width: The number of context columns (0: unconditional).
        num_hidden_layers: The number of hidden layers.
        outputs_per_dim: Outputs per element of ``z_B``: 2 for ``AffineCoupling``
            (``s`` and ``t``), 1 for ``AdditiveCoupling``, the transformer's
            ``params_per_element`` for ``SplineCoupling``.
        activation: The activation's module class.
        zero_init: Zero the output layer, so that the coupling starts as the identity.

    Returns:
        An ``MLP`` from ``dim_A + context_width`` to ``outputs_per_dim * dim_B`` columns.

    Example:
        >>> import torch
        >>> from flowforge import block
        >>> net = block(1, 1, 16)
        >>> net.in_features, net.out_features
        (1, 2)
        >>> block(2, 3, 8, context_width=4, zero_init=True)(torch.randn(5, 6)).abs().sum()
        tensor(0., grad_fn=<SumBackward0>)
    """
    net = MLP(
        dim_A + context_width,
        dim_hidden,
        outputs_per_dim * dim_B,
        num_hidden_layers=num_hidden_layers,
        activation=activation,
    )
    return net.zero_last_layer_() if zero_init else net


class MLPGradients:
    """An ``MLP``'s forward on feature-major activations and its hand-written backward
    (``flowforge.gradients``): each layer is ``W @ h + b[:, None]``.

    Keeps views of the weights' data (``W``, ``W.T``, the bias as a column) so a step
    does not remake them; ``refresh()`` rebuilds them after the storage changed.
    """

    ACTIVATIONS = (torch.nn.ReLU, torch.nn.Tanh)

    def __init__(self, net: MLP) -> None:
        modules = list(net)
        self.linears = [(m.weight, m.bias) for m in modules[0::2]]
        self.tanh = [type(m) is torch.nn.Tanh for m in modules[1::2]]
        self.refresh()

    def refresh(self) -> None:
        self.views = []
        for weight, bias in self.linears:
            w = weight.detach()
            column = None if bias is None else bias.detach().unsqueeze(1)
            self.views.append((w, w.t(), column))
        self.first_columns: dict[int, Tensor] = {}  # rows -> W_1[:, :rows].T

    def forward(self, h: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(out, inputs)``: the output ``(out_features, n)`` and each Linear's input."""
        inputs = []
        last = len(self.views) - 1
        for i, (w, _, column) in enumerate(self.views):
            inputs.append(h)
            h = torch.mm(w, h) if column is None else torch.addmm(column, w, h)
            if i < last:
                h = h.tanh_() if self.tanh[i] else h.relu_()
        return h, inputs

    def backward(
        self,
        inputs: list[Tensor],
        g: Tensor,
        batch: Batch,
        grad_input: Tensor,
        rows: int,
        sign: float = 1.0,
    ) -> Tensor:
        """Add the parameter gradients for output gradient ``sign * g``; return
        ``grad_input`` plus the gradient of the first ``rows`` input rows (the rest is
        context). ``sign = -1`` spares the caller a negation."""
        for i in range(len(self.linears) - 1, -1, -1):
            weight, bias = self.linears[i]
            h = inputs[i]
            add_matmul(weight, g, h.t(), sign)
            add_row_sums(bias, g, batch.ones, sign)
            if i == 0:
                return torch.addmm(grad_input, self._first_columns(rows), g, alpha=sign)
            g = torch.mm(self.views[i][1], g)
            if self.tanh[i - 1]:  # h = tanh(a): da = dh * (1 - h^2)
                g = torch.addcmul(g, g * h, h, value=-1.0)
            else:  # h = relu(a): da = dh where h > 0
                g = torch.ops.aten.threshold_backward(g, h, 0)
        raise AssertionError("an MLP has at least one Linear layer")

    def _first_columns(self, rows: int) -> Tensor:
        columns = self.first_columns.get(rows)
        if columns is None:
            w, wt, _ = self.views[0]
            columns = wt if rows == w.shape[1] else w[:, :rows].t()
            self.first_columns[rows] = columns
        return columns
