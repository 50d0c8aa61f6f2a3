import math

import pytest
import torch

from flowforge import AffineCoupling, block, check_flow
from flowforge.transformers import SoftClampLogScale


def _explosive(log_scale, bound=None):
    layer = AffineCoupling(block(2, 2, 8), log_scale=log_scale)
    with torch.no_grad():
        layer.block[-1].weight.mul_(1e4)
        layer.block[-1].bias.fill_(1e4)
    return layer


def test_zero_init_block_starts_as_identity():
    layer = AffineCoupling(block(2, 3, 8, zero_init=True))
    z = (torch.randn(5, 2), torch.randn(5, 3))
    out, log_det = layer.forward(z)
    torch.testing.assert_close(out[1], z[1])
    torch.testing.assert_close(log_det, torch.zeros(5))


def test_soft_clamp_keeps_exploding_networks_finite():
    layer = _explosive("soft_clamp")
    z = (torch.randn(16, 2), torch.randn(16, 2))
    for direction in (layer.forward, layer.inverse):
        out, log_det = direction(z)
        assert torch.isfinite(out[1]).all() and torch.isfinite(log_det).all()
        assert log_det.abs().max() <= 2 * 5.0 + 1e-4


def test_plain_exp_overflows_where_soft_clamp_does_not():
    """The notebook's unbounded exp really does overflow: the reason for the default."""
    z = (torch.randn(16, 2), torch.randn(16, 2))
    out, _ = _explosive("exp").forward(z)
    assert not torch.isfinite(out[1]).all()


def test_soft_clamp_is_identity_near_zero_and_bounded():
    clamp = SoftClampLogScale(3.0)
    x = torch.tensor([-1e6, -0.01, 0.0, 0.01, 1e6])
    y = clamp(x)
    torch.testing.assert_close(y[1:4], x[1:4], atol=1e-6, rtol=1e-4)
    torch.testing.assert_close(y[[0, 4]], torch.tensor([-3.0, 3.0]))


def test_custom_log_scale_callable():
    layer = AffineCoupling(block(1, 1, 4), log_scale=lambda raw: 0.5 * torch.tanh(raw))
    check_flow(layer.double(), (torch.randn(6, 1).double(), torch.randn(6, 1).double()))


def test_unknown_log_scale_name():
    with pytest.raises(ValueError, match="unknown log_scale 'tanhh'"):
        AffineCoupling(block(1, 1, 4), log_scale="tanhh")


def test_block_of_the_wrong_input_width_is_explained():
    layer = AffineCoupling(block(3, 2, 8))
    with pytest.raises(ValueError, match=r"expects input width 3.*z_A of width 2"):
        layer.forward((torch.randn(4, 2), torch.randn(4, 2)))


def test_block_of_the_wrong_output_width_is_explained():
    layer = AffineCoupling(block(2, 1, 8))  # outputs 2 columns; z_B has 2 -> needs 4
    with pytest.raises(ValueError, match=r"must output 2 × \(width of z_B\) = 4"):
        layer.forward((torch.randn(4, 2), torch.randn(4, 2)))


def test_coupling_needs_a_pair():
    with pytest.raises(TypeError, match=r"put a Split\(\) before"):
        AffineCoupling(block(1, 1, 4)).forward(torch.randn(3, 2))


def test_context_width_mismatch_is_explained():
    layer = AffineCoupling(block(1, 1, 4))  # built without context
    with pytest.raises(ValueError, match="plus 3 context columns"):
        layer.forward((torch.randn(2, 1), torch.randn(2, 1)), torch.randn(2, 3))


def test_sigmoid_log_scale_matches_nflows_formula():
    layer = AffineCoupling(block(1, 1, 4), log_scale="sigmoid")
    raw = torch.linspace(-5, 5, 11)
    torch.testing.assert_close(layer.log_scale(raw), torch.log(torch.sigmoid(raw + 2) + 1e-3))
    assert math.isfinite(float(layer.log_scale(torch.tensor(-1e9))))


def test_soft_clamp_constants_follow_the_layer_and_stay_out_of_the_state_dict():
    layer = AffineCoupling(block(1, 1, 4))
    expected = {f"block.{i}.{p}" for i in (0, 2, 4) for p in ("weight", "bias")}
    assert set(layer.state_dict()) == expected
    layer.double()
    assert layer.log_scale._bound.dtype == torch.float64
    z = (torch.randn(3, 1, dtype=torch.float64), torch.randn(3, 1, dtype=torch.float64))
    out, log_det = layer.forward(z)
    assert out[1].dtype == log_det.dtype == torch.float64
