"""MADE: an MLP whose masks make output ``i`` depend on inputs ``< i``.

Germain et al., MADE: Masked autoencoder for distribution estimation, ICML 2015.

It conditions autoregressive layers: from ``x`` of width ``D`` (and context, which
every output may read) it computes ``params_per_element`` numbers for each of the
``D`` elements, those of element ``i`` from ``x[:, :i]`` only.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.gradients import Batch, add_row_sums, has_hooks, owns_handwritten
from flowforge.nets.mlp import MLPGradients
from flowforge.values import per_sample


class MaskedLinear(torch.nn.Linear):
    """A ``Linear`` layer whose weight is multiplied by a fixed 0/1 ``mask`` buffer."""

    def __init__(self, mask: Tensor) -> None:
        out_features, in_features = mask.shape
        super().__init__(in_features, out_features)
        self.register_buffer("mask", mask.to(self.weight.dtype))

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight * self.mask, self.bias)


def _hidden_degrees(hidden: int, features: int, conditional: bool) -> Tensor:
    """Hidden degrees in turn: ``1 .. features - 1``, and 0 (context only) when conditional.

    A unit of degree ``k`` reads inputs ``< k + 1``; degree 0 units read only the
    context, which is what element 0's parameters may depend on.
    """
    low = 0 if conditional else 1
    return torch.arange(hidden) % max(features - low, 1) + low


class MADE(torch.nn.Module):
    """Masked autoencoder for distribution estimation, with optional context.

    Maps ``x`` ``(batch, features)`` and context ``(batch, context_width)`` to
    ``(batch, features, params_per_element)``; row ``i`` of the output depends only
    on ``x[:, :i]`` and the context (row 0 on the context alone) (Germain et al., MADE:
    Masked autoencoder for distribution estimation, ICML 2015).

    Args:
        features: The width ``D`` of ``x``.
        hidden: The width of the hidden layers.
        params_per_element: The number of outputs for each element of ``x``.
        context_width: The number of context columns, which every output may read.
        num_hidden_layers: The number of hidden layers.
        activation: The activation's module class.
        zero_init: Zero the output layer, so that the output starts at 0.

    Raises:
        ValueError: If a width or the depth is not positive.

    Example:
        Output ``i`` reads only ``x[:, :i]``, so no output reads the last element:

        >>> import torch
        >>> from flowforge.nets import MADE
        >>> _ = torch.manual_seed(0)
        >>> made = MADE(3, 16, params_per_element=2)
        >>> x = torch.randn(4, 3)
        >>> out = made(x)
        >>> out.shape
        torch.Size([4, 3, 2])
        >>> x[:, 2] += 1.0  # the last element feeds no output
        >>> torch.equal(made(x), out)
        True
    """

    def __init__(
        self,
        features: int,
        hidden: int,
        params_per_element: int,
        *,
        context_width: int = 0,
        num_hidden_layers: int = 2,
        activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        if min(features, hidden, params_per_element, num_hidden_layers) < 1:
            raise ValueError(
                "MADE widths and depth must be positive, got "
                f"features={features}, hidden={hidden}, params={params_per_element}, "
                f"layers={num_hidden_layers}"
            )
        self.features, self.context_width = features, context_width
        self.params_per_element = params_per_element
        degrees = torch.cat(
            [torch.arange(1, features + 1), torch.zeros(context_width, dtype=torch.long)]
        )
        layers: list[torch.nn.Module] = []
        for _ in range(num_hidden_layers):
            out = _hidden_degrees(hidden, features, context_width > 0)
            layers += [MaskedLinear(out[:, None] >= degrees[None, :]), activation()]
            degrees = out
        out = torch.arange(features).repeat_interleave(params_per_element) + 1
        layers.append(MaskedLinear(out[:, None] > degrees[None, :]))
        self.net = torch.nn.Sequential(*layers)
        if zero_init:
            torch.nn.init.zeros_(self.net[-1].weight)
            torch.nn.init.zeros_(self.net[-1].bias)

    @property
    def in_features(self) -> int:
        return self.features + self.context_width

    def forward(self, x: Tensor, *context: Tensor) -> Tensor:
        if context:
            flat = [per_sample(c).to(x.dtype) for c in context]
            x = torch.cat([x, *flat], dim=1)
        if x.shape[1] != self.in_features:
            raise ValueError(
                f"MADE expects {self.features} features plus {self.context_width} context "
                f"columns, got {x.shape[1]} columns in all; build it with "
                f"context_width={x.shape[1] - self.features}"
            )
        out = self.net(x)
        return out.reshape(x.shape[0], self.features, self.params_per_element)

    def handwritten(self) -> MADEGradients | None:
        """The hand-written form (``MADEGradients``) when the layers are plain
        ``MaskedLinear`` with ReLU/Tanh between and nothing has hooks; else ``None``."""
        modules = list(self.net)
        plain = (
            owns_handwritten(self, "forward")
            and not has_hooks(self)
            and not has_hooks(self.net)
            and all(type(m) is MaskedLinear and not has_hooks(m) for m in modules[0::2])
            and all(type(m) in MLPGradients.ACTIVATIONS and not has_hooks(m) for m in modules[1::2])
        )
        return MADEGradients(self) if plain else None


class MADEGradients:
    """A ``MADE``'s forward on feature-major activations and its hand-written backward
    (``flowforge.gradients``): each layer is ``(W * mask) @ h + b[:, None]``, and the
    weight gradient is masked as autograd's is. The masked weights are made once per
    step (the weights change between steps), kept with the activations. Output rows
    whose mask row is all zero (the first element's, which read nothing but the bias in
    an unconditional MADE) are the bias: the last product skips them."""

    def __init__(self, made: MADE) -> None:
        modules = list(made.net)
        self.layers = [(m.weight, m.bias, m.mask) for m in modules[0::2]]
        self.tanh = [type(m) is torch.nn.Tanh for m in modules[1::2]]
        live = self.layers[-1][2].any(dim=1)
        self.dead = int(live.long().argmax()) if bool(live.any()) else 0  # leading zero rows

    def refresh(self) -> None:
        """Nothing cached across steps."""

    def forward(self, h: Tensor) -> tuple[Tensor, tuple[list[Tensor], list[Tensor]]]:
        """``(out, saved)``: the output ``(features * params_per_element, n)``, its rows
        element-major as ``MADE.forward``'s last dimension, and what ``backward`` needs."""
        inputs, weights = [], []
        last = len(self.layers) - 1
        for i, (weight, bias, mask) in enumerate(self.layers[:-1]):
            inputs.append(h)
            w = weight.detach() * mask
            weights.append(w)
            h = torch.addmm(bias.detach().unsqueeze(1), w, h)
            h = h.tanh_() if self.tanh[i] else h.relu_()
        inputs.append(h)
        weight, bias, mask = self.layers[last]
        dead, column = self.dead, bias.detach().unsqueeze(1)
        w = weight.detach()[dead:] * mask[dead:]
        weights.append(w)
        out = h.new_empty(weight.shape[0], h.shape[1])
        out[:dead] = column[:dead]
        torch.addmm(column[dead:], w, h, out=out[dead:])
        return out, (inputs, weights)

    def backward(
        self, saved: tuple, g: Tensor, batch: Batch, grad_input: Tensor, rows: int, sign: float
    ) -> Tensor:
        """Add the parameter gradients for output gradient ``sign * g``; return
        ``grad_input`` plus the gradient of the first ``rows`` input rows (the rest is
        context)."""
        inputs, weights = saved
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            weight, bias, mask = self.layers[i]
            h = inputs[i]
            add_row_sums(bias, g, batch.ones, sign)
            dead = self.dead if i == last else 0
            g = g[dead:]  # the rows that read anything (the others are the bias)
            if weight.requires_grad:
                g_weight = torch.mm(g, h.t()).mul_(mask[dead:])
                if weight.grad is None:
                    weight.grad = torch.zeros_like(weight)
                weight.grad[dead:].add_(g_weight, alpha=sign)
            if i == 0:
                return torch.addmm(grad_input, weights[0][:, :rows].t(), g, alpha=sign)
            g = torch.mm(weights[i].t(), g)
            if self.tanh[i - 1]:  # h = tanh(a): da = dh * (1 - h^2)
                g = torch.addcmul(g, g * h, h, value=-1.0)
            else:  # h = relu(a): da = dh where h > 0
                g = torch.ops.aten.threshold_backward(g, h, 0)
        raise AssertionError("a MADE has at least one layer")
