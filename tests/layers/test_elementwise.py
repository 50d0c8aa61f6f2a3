import math

import pytest
import torch

from flowforge import Scale, Translate


@pytest.mark.parametrize("value", [2, 2.0, [2, 3], torch.tensor([2, 3])], ids=repr)
def test_scale_accepts_numbers_lists_and_integer_tensors(value):
    layer = Scale(value)
    assert layer.scale.is_floating_point()
    assert "scale" in dict(layer.named_buffers())
    x, log_det = layer.forward(torch.ones(4, 2))
    expected = torch.log(torch.as_tensor(value, dtype=torch.float32)).expand(2).sum()
    torch.testing.assert_close(log_det, expected.expand(4))
    torch.testing.assert_close(x, torch.as_tensor(value, dtype=torch.float32).expand(4, 2))


def test_scalar_scale_counts_every_dimension():
    _, log_det = Scale(2.0).forward(torch.ones(3, 5))
    torch.testing.assert_close(log_det, torch.full((3,), 5 * math.log(2.0)))


def test_learnable_scale_and_offset_receive_gradients():
    scale, shift = Scale([1.5, 0.5], learnable=True), Translate([0.0, 1.0], learnable=True)
    assert [n for n, _ in scale.named_parameters()] == ["scale"]
    x, log_det = scale.forward(torch.randn(8, 2))
    y, _ = shift.forward(x)
    (y.sum() + log_det.sum()).backward()
    assert scale.scale.grad is not None and shift.offset.grad is not None


def test_zero_scale_is_rejected():
    with pytest.raises(ValueError, match="non-zero"):
        Scale([1.0, 0.0])


def test_non_finite_parameters_are_rejected():
    with pytest.raises(ValueError, match="finite"):
        Translate([float("nan"), 0.0])


def test_elementwise_layers_reject_tuples_with_a_hint():
    with pytest.raises(TypeError, match="before Split or after Merge"):
        Scale(2.0).forward((torch.randn(2, 1), torch.randn(2, 1)))


def test_double_converts_buffers_and_log_det():
    layer = Scale([2.0, 3.0]).double()
    assert layer.scale.dtype == torch.float64
    _, log_det = layer.inverse(torch.randn(3, 2, dtype=torch.float64))
    assert log_det.dtype == torch.float64
