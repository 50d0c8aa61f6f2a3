"""Squeeze's pixel placement, FactorOut's tuples, OnLast and Flatten, with their errors."""

import pytest
import torch

from flowforge.layers import FactorOut, Flatten, ImageActNorm, OnLast, Squeeze, Unflatten


def test_squeeze_places_each_2x2_block_in_four_channels():
    x = torch.arange(2 * 2 * 4 * 6, dtype=torch.float64).reshape(2, 2, 4, 6)
    z, log_det = Squeeze().inverse(x)
    assert z.shape == (2, 8, 2, 3) and not log_det.any()
    for c in range(2):
        for i in range(2):
            for j in range(2):
                # channel 4c + 2i + j at (y, x) holds input channel c at (2y + i, 2x + j)
                torch.testing.assert_close(z[:, 4 * c + 2 * i + j], x[:, c, i::2, j::2])
    back, _ = Squeeze().forward(z)
    assert torch.equal(back, x)


def test_squeeze_rejects_odd_sizes_and_non_images():
    with pytest.raises(ValueError, match="even height and width, got an image of 3×4"):
        Squeeze().inverse(torch.randn(1, 1, 3, 4))
    with pytest.raises(TypeError, match=r"images of shape \(batch, channels, height, width\)"):
        Squeeze().inverse(torch.randn(2, 16))
    with pytest.raises(ValueError, match="divisible by 4, got 6"):
        Squeeze().forward(torch.randn(1, 6, 2, 2))


def test_factor_out_sets_half_the_channels_aside_and_keeps_earlier_parts():
    earlier = torch.randn(3, 2, 4, 4)
    h = torch.randn(3, 5, 2, 2)
    value, log_det = FactorOut().inverse((earlier, h))
    assert isinstance(value, tuple) and len(value) == 3
    assert value[0] is earlier
    assert value[1].shape == (3, 2, 2, 2) and value[2].shape == (3, 3, 2, 2)
    torch.testing.assert_close(torch.cat(value[1:], dim=1), h)
    assert log_det.shape == (3,) and not log_det.any()
    back, _ = FactorOut().forward(value)
    assert back[0] is earlier and torch.equal(back[1], h)
    single, _ = FactorOut().forward(FactorOut().inverse(h)[0])
    assert torch.equal(single, h)  # a bare tensor comes back as a bare tensor


def test_factor_out_errors():
    with pytest.raises(ValueError, match="at least 2 channels"):
        FactorOut().inverse(torch.randn(2, 1, 4, 4))
    with pytest.raises(ValueError, match="C // 2 channels"):
        FactorOut().forward((torch.randn(2, 3, 2, 2), torch.randn(2, 1, 2, 2)))
    with pytest.raises(TypeError, match=r"tuple \(\.\.\., z, h\)"):
        FactorOut().forward(torch.randn(2, 4, 2, 2))


def test_on_last_transforms_only_the_last_tensor():
    layer = ImageActNorm(3)
    with torch.no_grad():
        layer.log_scale.fill_(0.5)
    earlier, h = torch.randn(2, 7), torch.randn(2, 3, 2, 2)
    (a, b), log_det = OnLast(layer).forward((earlier, h))
    assert a is earlier
    torch.testing.assert_close(b, h * torch.exp(torch.tensor(0.5)))
    torch.testing.assert_close(log_det, torch.full((2,), 0.5 * 3 * 4))


def test_on_last_needs_a_tensor_to_tensor_layer():
    with pytest.raises(TypeError, match="maps a tensor to a tensor"):
        OnLast(FactorOut()).inverse((torch.randn(2, 3), torch.randn(2, 4, 2, 2)))


def test_flatten_and_unflatten_round_trip_and_check_shapes():
    shapes = [(2, 4, 4), (4, 2, 2)]
    parts = (torch.randn(3, 2, 4, 4), torch.randn(3, 4, 2, 2))
    flat, _ = Flatten(shapes).inverse(parts)
    assert flat.shape == (3, 48) and Flatten(shapes).width == 48
    torch.testing.assert_close(flat[:, :32], parts[0].reshape(3, -1))
    back, _ = Flatten(shapes).forward(flat)
    assert all(torch.equal(p, q) for p, q in zip(back, parts))
    image, _ = Unflatten((1, 8, 8)).inverse(torch.arange(64.0).reshape(1, 64))
    assert image.shape == (1, 1, 8, 8) and image[0, 0, 1, 0] == 8
    with pytest.raises(
        ValueError, match=r"expects vectors of shape \(batch, 64\), got tensor\(2, 63\)"
    ):
        Unflatten((1, 8, 8)).inverse(torch.randn(2, 63))
    with pytest.raises(ValueError, match="built for parts of shapes"):
        Flatten(shapes).inverse((parts[1], parts[0]))
    with pytest.raises(ValueError, match="positive sizes"):
        Flatten([(0, 2, 2)])
