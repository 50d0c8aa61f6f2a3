"""LULinear against its dense matrix; Permute and Reverse; AdditiveCoupling (NICE)."""

import pytest
import torch

from flowforge import AdditiveCoupling, block, check_flow
from flowforge.layers import LULinear, Permute, Reverse


def test_lu_linear_is_the_dense_matrix_it_factors():
    layer = LULinear(4).double()
    with torch.no_grad():
        layer.log_diagonal.normal_()
        layer.lower.normal_()
        layer.upper.normal_()
        layer.bias.normal_()
    p, lower, upper = layer._factors(layer.bias)
    weight = p @ lower @ upper
    z = torch.randn(6, 4, dtype=torch.float64)
    x, log_det = layer.forward(z)
    torch.testing.assert_close(x, z @ weight.T + layer.bias)
    torch.testing.assert_close(log_det, torch.linalg.slogdet(weight).logabsdet.expand(6))
    back, _ = layer.inverse(x)
    torch.testing.assert_close(back, z)


def test_lu_linear_starts_as_a_rotation_and_only_triangles_matter():
    layer = LULinear(3)
    z = torch.randn(5, 3)
    x, log_det = layer.forward(z)
    torch.testing.assert_close(x.norm(dim=1), z.norm(dim=1))  # orthogonal at the start
    torch.testing.assert_close(log_det, torch.zeros(5), atol=1e-5, rtol=0)
    with torch.no_grad():  # entries outside the triangles are ignored
        layer.lower.add_(torch.ones(3, 3).triu())
        layer.upper.add_(torch.ones(3, 3).tril())
    torch.testing.assert_close(layer.forward(z)[0], x)


def test_permute_is_fixed_reloadable_and_checked():
    layer = Permute(5)
    z = torch.randn(3, 5)
    x, _ = layer.forward(z)
    torch.testing.assert_close(x, z[:, layer.permutation])
    torch.testing.assert_close(layer.forward(z)[0], x)  # the same order every call
    clone = Permute(5)
    clone.load_state_dict(layer.state_dict())
    torch.testing.assert_close(clone.forward(z)[0], x)
    assert Permute(permutation=[2, 0, 1]).forward(torch.eye(3))[0].tolist() == [
        [0, 1, 0],
        [0, 0, 1],
        [1, 0, 0],
    ]
    with pytest.raises(ValueError, match="not a permutation"):
        Permute(permutation=[0, 0, 1])


def test_reverse_reverses_and_is_its_own_inverse():
    z = torch.arange(6.0).reshape(2, 3)
    x, log_det = Reverse().forward(z)
    assert x.tolist() == [[2, 1, 0], [5, 4, 3]] and log_det.tolist() == [0, 0]
    torch.testing.assert_close(Reverse().inverse(x)[0], z)


def test_additive_coupling_preserves_volume_and_conditions_on_context():
    layer = AdditiveCoupling(block(2, 3, 8, context_width=1, outputs_per_dim=1)).double()
    z = (torch.randn(4, 2, dtype=torch.float64), torch.randn(4, 3, dtype=torch.float64))
    c = torch.randn(4, 1, dtype=torch.float64)
    (a, b), log_det = layer.forward(z, c)
    t = layer.block(torch.cat([z[0], c], 1))
    torch.testing.assert_close(b, z[1] + t)
    assert torch.equal(a, z[0]) and torch.equal(log_det, torch.zeros(4, dtype=torch.float64))
    assert layer.volume_preserving
    check_flow(layer, z, c)


def test_additive_coupling_block_of_the_wrong_width_is_explained():
    layer = AdditiveCoupling(block(2, 3, 8))  # outputs 6 columns, the coupling needs 3
    with pytest.raises(ValueError, match="must output 1 × \\(width of z_B\\) = 3"):
        layer.forward((torch.randn(4, 2), torch.randn(4, 3)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("image", [False, True])
def test_lu_layers_invert_in_half_precision(dtype, image):
    """Issue 15, item 10: the inverse raised NotImplementedError (no half-precision
    triangular solve in torch); it now solves in float32 and casts back."""
    from flowforge.layers import InvertibleConv1x1

    torch.manual_seed(0)
    layer = (InvertibleConv1x1(3) if image else LULinear(3)).to(dtype)
    z = torch.randn((4, 3, 2, 2) if image else (4, 3)).to(dtype)
    x, log_det = layer(z)
    back, inverse_log_det = layer.inverse(x)
    assert back.dtype == x.dtype == dtype and inverse_log_det.dtype == dtype
    tolerance = 0.05 if dtype == torch.bfloat16 else 0.01
    torch.testing.assert_close(back.float(), z.float(), atol=tolerance, rtol=tolerance)
    torch.testing.assert_close(inverse_log_det, -log_det)
