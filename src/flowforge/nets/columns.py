"""A conditioner network on feature-major columns, written into buffers: the networks of
``flowforge.columns``' plans (an ``MLP``'s or a ``MADE``'s linear layers, one ``mm``
each, activations in place).

A chunk's columns go through the whole network in blocks of ``block_columns(rows)``
columns (``rows`` the widest hidden activation): a wide network's hidden activations
for a whole chunk of 32,768 points (65 rows of float32: 8.5 MB) are far larger than a
core's cache, so each product would stream them from memory; a block of 4,096 columns
stays in a 1 MB L2 cache. A narrow network's products are too cheap to split: each
block costs a few operations' overhead, so blocks shrink only as fast as the arithmetic
per column grows (``BLOCK_WORK``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.nets.made import MADE
from flowforge.nets.mlp import _DIRECT

# A block holds about this many multiply-adds per hidden layer: rows ** 2 per column.
# ``math.inf``: no blocks, every chunk's columns at once.
BLOCK_WORK: float = 1 << 24


def block_columns(rows: int) -> int:
    """The columns of one block for hidden activations of ``rows`` rows: the smallest
    power of two that gives ``BLOCK_WORK`` multiply-adds per hidden product.

    Example:
        >>> block_columns(65), block_columns(33), block_columns(17)  # MADE 64, MAF 32, 16
        (4096, 16384, 65536)
    """
    columns = BLOCK_WORK / rows**2
    return 1 << min(62, max(0, math.ceil(math.log2(columns)))) if columns < 2**62 else 1 << 62


class ColumnNet:
    """A network's layers on feature-major activations: ``weights`` the ``(weight, bias)``
    of each linear layer, an ``activation`` between each two. Each weight carries its
    bias as one more column, which multiplies a row of ones below the layer's input: one
    ``mm`` per layer (``addmm`` would first copy the bias into every column of its
    result). Except a layer reading one row (a 2-D coupling's first): there the bias
    would double the inner dimension, and ``addmm``'s rank-one product with the bias
    apart is much the faster (on an AMD EPYC; about even elsewhere in the network)."""

    def __init__(
        self, weights: list[tuple[Tensor, Tensor | None]], activations: list[torch.nn.Module]
    ) -> None:
        acts = [(m, _DIRECT[type(m)][1]) for m in activations] + [None]
        self.layers = [(_prepared(w, b), act) for (w, b), act in zip(weights, acts)]
        self.widths = [weight.shape[0] for weight, _ in weights]
        self.in_width = weights[0][0].shape[1]

    @classmethod
    def of_mlp(cls, net: torch.nn.Module) -> ColumnNet:
        """A plain ``MLP``'s layers."""
        modules = list(net)
        return cls([(m.weight, m.bias) for m in modules[0::2]], modules[1::2])

    @classmethod
    def of_made(cls, made: MADE) -> ColumnNet:
        """A ``MADE``'s layers, each weight masked once (here, not per chunk), the output
        rows reordered parameter-first (row ``j * features + i`` the ``j``-th parameter of
        element ``i``), the layout of a coupling's network output."""
        modules = list(made.net)
        weights = [(m.weight.detach() * m.mask, m.bias.detach()) for m in modules[0::2]]
        weight, bias = weights[-1]
        order = torch.arange(len(bias), device=bias.device)
        order = order.view(made.features, made.params_per_element).t().reshape(-1)
        weights[-1] = (weight[order], bias[order])
        return cls(weights, modules[1::2])

    def bind(self, k: int, given: Tensor, hidden: tuple[Tensor, Tensor], out: Tensor) -> tuple:
        """The network bound to flat buffers for ``k`` columns: the input (with its row of
        ones) and the output as ``(rows, k)`` views of ``given`` and ``out``, and for each
        block width, every hidden layer's target (with its row of ones), alternating
        between the two ``hidden``."""
        block = min(k, block_columns(max(self.widths[:-1], default=0) + 1))
        rows = [w + 1 for w in self.widths[:-1]]
        targets = {
            m: [hidden[i % 2][: r * m].view(r, m) for i, r in enumerate(rows)]
            for m in {block, k % block} - {0}
        }
        h = given[: (self.in_width + 1) * k].view(-1, k)
        return h, out[: self.widths[-1] * k].view(-1, k), block, targets

    def run(self, bound: tuple, parts: tuple[Tensor, ...]) -> Tensor:
        """The network, bound by ``bind``, on the feature-major ``parts`` stacked (the
        columns it reads, the context's), block by block; returns the output view."""
        h, out, block, targets = bound
        start = 0
        for part in parts:
            h[start : start + len(part)].copy_(part)
            start += len(part)
        h[start].fill_(1)  # the buffers are shared: the ones are written at every call
        k = h.shape[1]
        for first in range(0, k, block):
            columns = slice(first, first + block)
            a = h if block == k else h[:, columns]
            for (weight, activation), target in zip(self.layers, targets[a.shape[1]]):
                a = _hidden(weight, a, target, activation)
            _product(self.layers[-1][0], a, out if block == k else out[:, columns])
        return out


def _hidden(weight: tuple, a: Tensor, target: Tensor, activation: tuple) -> Tensor:
    """One hidden layer into ``target``: its product, the activation in place, the row
    of ones below."""
    product = _product(weight, a, target[:-1])
    done = activation[1](activation[0], product)
    if done is not product:  # an activation with no in-place form
        product.copy_(done)
    target[-1].fill_(1)
    return target


def _product(weight: tuple[Tensor, Tensor | None], a: Tensor, out: Tensor) -> Tensor:
    """A layer's product with ``a`` (its input above a row of ones) into ``out``."""
    folded, bias = weight
    if bias is None:
        return torch.mm(folded, a, out=out)
    return torch.addmm(bias, folded, a[:-1], out=out)


def _prepared(weight: Tensor, bias: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """``([weight | bias], None)`` (a zero column for no bias), or, for a layer reading
    one row, ``(weight, bias as a column)``."""
    column = weight.new_zeros(len(weight)) if bias is None else bias.detach()
    if weight.shape[1] == 1:
        return weight.detach(), column[:, None]
    return torch.cat([weight.detach(), column[:, None]], 1), None
