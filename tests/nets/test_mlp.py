"""``MLP.forward`` computes exactly what ``nn.Sequential`` computes, on every path."""

import pytest
import torch

from flowforge import block
from flowforge.nets import MLP
from flowforge.nets.mlp import TRANSPOSED_ROWS

ACTIVATIONS = [torch.nn.ReLU, torch.nn.Tanh, torch.nn.SiLU, torch.nn.GELU, torch.nn.ELU]
ROWS = [pytest.param(5, id="few-rows"), pytest.param(TRANSPOSED_ROWS + 3, id="many-rows")]


@pytest.mark.parametrize("rows", ROWS)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=lambda a: a.__name__)
def test_same_values_and_gradients_as_sequential(activation, rows):
    torch.manual_seed(0)
    net = MLP(3, 8, 4, num_hidden_layers=2, activation=activation).double()
    x = torch.randn(rows, 3, dtype=torch.float64, requires_grad=True)
    out = net(x)
    expected = torch.nn.Sequential.forward(net, x)
    torch.testing.assert_close(out, expected)
    grads = torch.autograd.grad(out.square().sum(), [x, *net.parameters()])
    grads_expected = torch.autograd.grad(expected.square().sum(), [x, *net.parameters()])
    for a, b in zip(grads, grads_expected):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("rows", ROWS)
def test_the_input_is_never_overwritten(rows):
    net = MLP(2, 4, 2)
    net.insert(0, torch.nn.ReLU())  # an activation first would be in place on the input
    x = torch.randn(rows, 2)
    before = x.clone()
    net(x)
    assert torch.equal(x, before)


@pytest.mark.parametrize("rows", ROWS)
def test_hooks_on_children_still_run(rows):
    net = block(1, 1, 8)
    calls = []
    net[2].register_forward_hook(lambda module, args, out: calls.append(out.shape))
    net(torch.randn(rows, 1))
    assert calls == [(rows, 8)]


def test_unknown_children_are_called_as_modules():
    net = MLP(2, 4, 2)
    net.insert(len(net) - 1, torch.nn.Dropout(p=1.0))  # zeroes the last layer's input
    net.train()
    out = net(torch.randn(6, 2)).detach()
    torch.testing.assert_close(out, net[-1].bias.detach().expand(6, 2))
