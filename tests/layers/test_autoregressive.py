"""MADE's masks, the triangular Jacobian of autoregressive layers, and Inverse (IAF)."""

import pytest
import torch

from flowforge import check_flow
from flowforge.check import jacobian
from flowforge.layers import Inverse, MaskedAutoregressive
from flowforge.nets import MADE
from flowforge.transformers import SplineTransformer

TRANSFORMERS = [
    pytest.param("affine", id="affine"),
    pytest.param(SplineTransformer(bins=4, bound=1.5), id="spline"),
]


def _layer(width: int, transformer, context_width: int = 0) -> MaskedAutoregressive:
    layer = MaskedAutoregressive(
        width, 16, transformer=transformer, context_width=context_width
    ).double()
    with torch.no_grad():  # a strongly nonlinear layer, so every dependence shows
        layer.made.net[-1].weight.mul_(3.0)
    return layer


def test_made_output_i_depends_only_on_inputs_before_i():
    net = MADE(5, 12, 3, context_width=2, activation=torch.nn.Tanh).double()  # no dead units
    x, c = torch.randn(1, 5, dtype=torch.float64), torch.randn(1, 2, dtype=torch.float64)
    j = torch.autograd.functional.jacobian(lambda v: net(v, c), x)[0, :, :, 0, :]  # (5, 3, 5)
    dependence = j.abs().sum(dim=1) > 0  # (output element, input element)
    assert torch.equal(dependence, torch.ones(5, 5).tril(-1).bool())
    jc = torch.autograd.functional.jacobian(lambda v: net(x, v), c)[0, :, :, 0, :]
    assert (jc.abs().sum(dim=(1, 2)) > 0).all()  # the context reaches every element


@pytest.mark.parametrize("transformer", TRANSFORMERS)
@pytest.mark.parametrize("direction", ["forward", "inverse"])
def test_jacobian_is_lower_triangular(transformer, direction):
    layer = _layer(5, transformer, context_width=2)
    z, c = torch.randn(3, 5, dtype=torch.float64), torch.randn(3, 2, dtype=torch.float64)
    probe = layer if direction == "forward" else Inverse(layer)
    j = jacobian(probe, z, c)  # (batch, out, in)
    assert torch.count_nonzero(j.triu(1)) == 0
    assert (j.diagonal(dim1=1, dim2=2).abs() > 0).all()
    assert torch.count_nonzero(j.tril(-1)) > 0  # really autoregressive, not elementwise
    _, log_det = probe.forward(z, c)
    torch.testing.assert_close(log_det, j.diagonal(dim1=1, dim2=2).abs().log().sum(1))


@pytest.mark.parametrize("transformer", TRANSFORMERS)
def test_inverse_swaps_the_directions(transformer):
    layer = _layer(4, transformer)
    iaf = Inverse(layer)
    x = torch.randn(6, 4, dtype=torch.float64)
    for a, b in ((iaf.forward(x), layer.inverse(x)), (iaf.inverse(x), layer.forward(x))):
        torch.testing.assert_close(a[0], b[0])
        torch.testing.assert_close(a[1], b[1])
    check_flow(iaf, x)
    assert set(dict(iaf.named_parameters())) == {f"layer.{n}" for n, _ in layer.named_parameters()}


def test_density_direction_is_one_network_pass_and_sampling_is_width_passes():
    layer = _layer(4, "affine")
    calls = []
    layer.made.register_forward_hook(lambda *args: calls.append(1))
    z = torch.randn(2, 4, dtype=torch.float64)
    layer.inverse(z)
    assert len(calls) == 1
    layer.forward(z)
    assert len(calls) == 1 + 4


def test_zero_init_starts_as_the_identity():
    layer = MaskedAutoregressive(3, 8, transformer="spline", zero_init=True)
    z = torch.randn(5, 3)
    x, log_det = layer.forward(z)
    torch.testing.assert_close(x, z)
    torch.testing.assert_close(log_det, torch.zeros(5))


def test_wrong_width_and_context_are_explained():
    layer = MaskedAutoregressive(3, 8)
    with pytest.raises(ValueError, match="built for width 3, got width 4"):
        layer.inverse(torch.randn(2, 4))
    with pytest.raises(ValueError, match="context_width=2"):
        layer.inverse(torch.randn(2, 3), torch.randn(2, 2))
    with pytest.raises(TypeError, match="before Split or after Merge"):
        layer.inverse((torch.randn(2, 1), torch.randn(2, 2)))
