"""Per-channel image layers, masked couplings and the logit pre-transform."""

import math

import pytest
import torch

from flowforge import SequentialFlow
from flowforge.layers import (
    ImageActNorm,
    InvertibleConv1x1,
    Logit,
    MaskedAffineCoupling,
    channel_mask,
    checkerboard_mask,
    initialize_actnorm,
)
from flowforge.nets import conv_block


def test_image_actnorm_initializes_each_channel_to_zero_mean_unit_variance():
    x = (
        torch.randn(64, 3, 4, 4, dtype=torch.float64)
        * torch.tensor([1.0, 3.0, 0.2]).view(1, 3, 1, 1).double()
        + torch.tensor([5.0, -1.0, 0.0]).view(1, 3, 1, 1).double()
    )
    layer = ImageActNorm(3).double()
    assert initialize_actnorm(layer, x) == 1
    z, _ = layer.inverse(x)
    torch.testing.assert_close(z.mean(dim=(0, 2, 3)), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(
        z.std(dim=(0, 2, 3), unbiased=False), torch.ones(3, dtype=torch.float64)
    )


def test_image_layers_reject_the_wrong_channel_count():
    with pytest.raises(ValueError, match="built for 3 channels"):
        ImageActNorm(3).inverse(torch.randn(2, 4, 2, 2))
    with pytest.raises(ValueError, match="built for 2 channels"):
        InvertibleConv1x1(2).forward(torch.randn(2, 3, 2, 2))


def test_invertible_conv_is_the_same_matrix_at_every_pixel():
    layer = InvertibleConv1x1(3).double()
    z = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    x, log_det = layer.forward(z)
    p, lower, upper = layer._factors(z)
    weight = p @ lower @ upper
    torch.testing.assert_close(x[:, :, 1, 2], z[:, :, 1, 2] @ weight.T)
    expected = 20 * torch.linalg.slogdet(weight).logabsdet
    torch.testing.assert_close(log_det, expected.expand(2))


def test_logit_log_det_in_closed_form():
    alpha = 0.05
    x = torch.tensor([[0.0, 0.5, 1.0]], dtype=torch.float64)
    z, log_det = Logit(alpha).inverse(x)
    y = alpha + (1 - 2 * alpha) * x
    torch.testing.assert_close(z, torch.log(y / (1 - y)))
    # dz/dx = (1 - 2 alpha) / (y (1 - y)) per pixel; at x = 0.5, y = 0.5: 0.9 / 0.25
    expected = sum(math.log((1 - 2 * alpha) / (v * (1 - v))) for v in y[0].tolist())
    assert log_det.item() == pytest.approx(expected, rel=1e-12)
    back, forward_log_det = Logit(alpha).forward(z)
    torch.testing.assert_close(back, x)
    torch.testing.assert_close(forward_log_det, -log_det)
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 0.5\)"):
        Logit(0.5)


def test_masks():
    board = checkerboard_mask(2, 3)
    assert board.shape == (1, 1, 2, 3)
    assert board[0, 0].tolist() == [[1, 0, 1], [0, 1, 0]]
    assert (checkerboard_mask(2, 3, parity=1) == 1 - board).all()
    assert channel_mask(5)[0, :, 0, 0].tolist() == [1, 1, 1, 0, 0]
    assert channel_mask(5, parity=1)[0, :, 0, 0].tolist() == [0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="at least 2 channels"):
        channel_mask(1)


def test_masked_coupling_starts_as_identity_and_keeps_masked_pixels():
    mask = checkerboard_mask(4, 4)
    layer = MaskedAffineCoupling(mask, conv_block(2, 8))
    z = torch.randn(3, 2, 4, 4)
    x, log_det = layer.forward(z)
    assert torch.equal(x, z) and not log_det.any()
    torch.nn.init.normal_(layer.net[-1].weight)
    x, log_det = layer.forward(z)
    assert torch.equal(x * mask, z * mask)
    assert not torch.allclose(x, z) and log_det.abs().min() > 0


def test_masked_coupling_errors():
    layer = MaskedAffineCoupling(checkerboard_mask(4, 4), conv_block(2, 8))
    with pytest.raises(ValueError, match=r"mask of shape \(1, 4, 4\) does not fit"):
        layer.forward(torch.randn(1, 2, 2, 2))
    wrong = MaskedAffineCoupling(checkerboard_mask(2, 2), conv_block(3, 8, outputs_per_channel=1))
    with pytest.raises(ValueError, match=r"outputs 3 channels .* must output 2 × 3"):
        wrong.forward(torch.randn(1, 3, 2, 2))


def test_masked_coupling_explains_context_that_does_not_fit_its_net():
    plain = MaskedAffineCoupling(checkerboard_mask(4, 4), conv_block(2, 8))
    with pytest.raises(ValueError, match=r"2 channels plus 3 context .* context_width=3"):
        plain.forward(torch.randn(5, 2, 4, 4), torch.randn(5, 3))
    conditional = MaskedAffineCoupling(checkerboard_mask(4, 4), conv_block(2, 8, context_width=3))
    with pytest.raises(ValueError, match=r"expects 5 input channels.*plus 0 context"):
        conditional.inverse(torch.randn(5, 2, 4, 4))
    # 6 rows of 3 columns would reshape to 3 rows of 6 columns without the check
    with pytest.raises(ValueError, match=r"context of shape \(6, 3\) for a batch of 3 images"):
        conditional.forward(torch.randn(3, 2, 4, 4), torch.randn(6, 3))


def test_a_glow_step_composes():
    step = SequentialFlow(
        ImageActNorm(4),
        InvertibleConv1x1(4),
        MaskedAffineCoupling(channel_mask(4), conv_block(4, 8)),
    )
    z = torch.randn(2, 4, 2, 2)
    x, _ = step.forward(z)
    back, _ = step.inverse(x)
    torch.testing.assert_close(back, z, atol=1e-5, rtol=1e-5)


def test_masked_spline_coupling_starts_as_identity_and_keeps_masked_pixels():
    from flowforge.layers import MaskedSplineCoupling

    mask = checkerboard_mask(4, 4)
    layer = MaskedSplineCoupling(mask, conv_block(2, 8, outputs_per_channel=3 * 4 - 1), bins=4)
    z = torch.randn(3, 2, 4, 4)
    x, log_det = layer.forward(z)
    torch.testing.assert_close(x, z)
    assert log_det.abs().max() < 1e-5
    torch.nn.init.normal_(layer.net[-1].weight)
    x, log_det = layer.forward(z)
    assert torch.equal(x * mask, z * mask)
    assert not torch.allclose(x, z) and log_det.abs().min() > 0
    with pytest.raises(ValueError, match=r"must output 11 × 2"):
        MaskedSplineCoupling(mask, conv_block(2, 8), bins=4).forward(z)
