"""The rational-quadratic spline: knots, identity tails, and finiteness at and past the bound."""

import pytest
import torch

from flowforge.transformers import SplineTransformer
from flowforge.transformers.spline import (
    inverse_rational_quadratic_spline,
    knots,
    parameter_count,
    rational_quadratic_spline,
)
from tests.helpers import DTYPES

BOUND = 2.0


def _raw(n: int, bins: int, dtype=torch.float32, scale: float = 2.0) -> torch.Tensor:
    return (torch.randn(n, parameter_count(bins)) * scale).to(dtype)


def _edges(dtype: torch.dtype) -> torch.Tensor:
    """Points on, just inside, just outside and far beyond both bounds, in ``dtype``."""
    b = torch.tensor(BOUND, dtype=dtype)
    inf = torch.tensor(float("inf"), dtype=dtype)
    near = [torch.nextafter(b, inf), torch.nextafter(b, -inf)]
    points = [b, *near, b + 1e-3, b + 1.0, torch.tensor(1e6, dtype=dtype)]
    points = torch.stack(points)
    return torch.cat([points, -points, torch.zeros(1, dtype=dtype)])


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_parameters_give_the_identity(dtype):
    x = torch.linspace(-3, 3, 41, dtype=dtype)
    y, log_det = rational_quadratic_spline(x, torch.zeros(41, parameter_count(6), dtype=dtype))
    torch.testing.assert_close(y, x)
    torch.testing.assert_close(log_det, torch.zeros_like(x))


def test_the_spline_passes_through_its_knots_with_their_slopes():
    """An independent reference: value and derivative at every knot, by autograd."""
    raw = _raw(1, 5, torch.float64).expand(6, -1)
    k = knots(raw[:1], BOUND)
    x = k.xs[0].clone().requires_grad_(True)
    y, log_det = rational_quadratic_spline(x, raw, BOUND)
    (slope,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(y, k.ys[0])
    torch.testing.assert_close(slope, k.ds[0])
    torch.testing.assert_close(log_det.exp(), k.ds[0])
    assert torch.all(k.xs[0].diff() > 0) and torch.all(k.ys[0].diff() > 0)
    assert k.ds[0][0] == 1 and k.ds[0][-1] == 1  # exactly: the slope is continuous there


def test_log_derivative_matches_autograd_and_the_map_is_monotone():
    raw = _raw(500, 8, torch.float64)
    x = torch.linspace(-2.5, 2.5, 500, dtype=torch.float64).requires_grad_(True)
    y, log_det = rational_quadratic_spline(x, raw, BOUND)
    (slope,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(log_det, slope.log())
    sweep = torch.linspace(-2.5, 2.5, 1000, dtype=torch.float64)
    y_sweep, _ = rational_quadratic_spline(sweep, raw[:1].expand(1000, -1), BOUND)
    assert torch.all(y_sweep.diff() > 0)


def test_inverse_undoes_forward_in_float64():
    raw = _raw(2000, 8, torch.float64, scale=3.0)
    x = torch.rand(2000, dtype=torch.float64) * 6 - 3
    y, log_det = rational_quadratic_spline(x, raw, BOUND)
    back, log_det_inverse = inverse_rational_quadratic_spline(y, raw, BOUND)
    torch.testing.assert_close(back, x, atol=1e-9, rtol=0)
    torch.testing.assert_close(log_det_inverse, -log_det, atol=1e-7, rtol=0)


def test_inverse_is_accurate_to_float32_rounding():
    """Where the spline is nearly flat, x is ill-determined by a float32 y, so compare in y:
    ``f(f⁻¹(y))`` must be ``y`` up to the rounding of x, magnified by the slope ``f'``.
    (Solving the quadratic with cancellation, as the textbook formula does when its
    linear coefficient is negative, leaves errors a hundred times larger.)"""
    raw = _raw(20000, 8, scale=3.0)
    y = torch.rand(20000) * 6 - 3
    x, _ = inverse_rational_quadratic_spline(y, raw, BOUND)
    y_again, log_slope = rational_quadratic_spline(x, raw, BOUND)
    assert ((y_again - y).abs() / (1 + log_slope.exp())).max() < 4e-6


DIRECTIONS = [rational_quadratic_spline, inverse_rational_quadratic_spline]


@pytest.mark.parametrize("direction", DIRECTIONS, ids=["forward", "inverse"])
def test_values_and_gradients_stay_finite_at_and_beyond_the_bound_in_float32(direction):
    x = _edges(torch.float32)
    for scale in (1.0, 30.0):  # ordinary and extreme parameters (tiny bins, steep slopes)
        raw = _raw(len(x), 8, scale=scale).requires_grad_(True)
        inputs = x.clone().requires_grad_(True)
        y, log_det = direction(inputs, raw, BOUND)
        assert torch.isfinite(y).all() and torch.isfinite(log_det).all()
        grad_x, grad_raw = torch.autograd.grad((y + log_det).sum(), (inputs, raw))
        assert torch.isfinite(grad_x).all() and torch.isfinite(grad_raw).all()
        outside = x.abs() > BOUND
        assert torch.equal(y[outside], x[outside])
        assert torch.equal(log_det[outside], torch.zeros_like(log_det[outside]))
        assert torch.equal(grad_raw[outside], torch.zeros_like(grad_raw[outside]))


@pytest.mark.parametrize("dtype", DTYPES)
def test_continuous_in_value_and_slope_across_the_bound(dtype):
    raw = _raw(2, 8, dtype)
    b = torch.tensor([BOUND, -BOUND], dtype=dtype)
    y, log_det = rational_quadratic_spline(b, raw, BOUND)
    torch.testing.assert_close(y, b)  # the end knots are fixed at ±bound
    torch.testing.assert_close(log_det, torch.zeros_like(b), atol=1e-5, rtol=0)


def test_wrong_parameter_count_is_explained():
    with pytest.raises(ValueError, match="3 \\* bins - 1"):
        rational_quadratic_spline(torch.zeros(3), torch.zeros(3, 7))


@pytest.mark.parametrize("trial", range(6))
def test_handwritten_inverse_gradients_match_autograd_over_random_shapes_and_tails(trial):
    """The written-out backward against autograd through the module's inverse, float64,
    with points inside, on and beyond the bound (the tails) and ordinary to steep splines."""
    g = torch.Generator().manual_seed(trial)
    bins = int(torch.randint(2, 12, (1,), generator=g))
    width, n = (
        int(torch.randint(1, 4, (1,), generator=g)),
        int(torch.randint(1, 90, (1,), generator=g)),
    )
    spline = SplineTransformer(bins, BOUND)
    scale = (0.5, 2.0, 6.0)[trial % 3]
    raw = torch.randn(parameter_count(bins), width, n, generator=g, dtype=torch.float64) * scale
    x = torch.randn(width, n, generator=g, dtype=torch.float64) * 2.5  # about a third outside
    x.view(-1)[:2] = torch.tensor([BOUND, -BOUND], dtype=torch.float64)[: x.numel()]
    raw.requires_grad_(True), x.requires_grad_(True)
    z, log_det = spline.inverse(x, raw)
    g_z = torch.randn(width, n, generator=g, dtype=torch.float64)
    c = torch.tensor(-0.37, dtype=torch.float64)
    ref_x, ref_raw = torch.autograd.grad((g_z * z + c * log_det).sum(), (x, raw))
    form = spline.handwritten()
    with torch.no_grad():
        z2, log_det2, saved = form.inverse_saving(x, raw)
        g_x, minus_g_raw = form.inverse_backward(saved, g_z, c)
    torch.testing.assert_close(z2, z, rtol=0, atol=0)
    torch.testing.assert_close(log_det2, log_det, rtol=0, atol=0)
    # On the bound itself the log-derivative has a kink: any one-sided answer will do.
    off = x.detach().abs() != BOUND
    assert torch.isfinite(g_x).all() and torch.isfinite(minus_g_raw).all()
    torch.testing.assert_close(g_x[off], ref_x[off], rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(-minus_g_raw[:, off], ref_raw[:, off], rtol=1e-9, atol=1e-10)
    outside = x.detach().abs() > BOUND
    assert torch.equal(g_x[outside], g_z[outside])
    assert torch.equal(minus_g_raw[:, outside], torch.zeros_like(minus_g_raw[:, outside]))


def test_handwritten_inverse_takes_parameters_as_a_sequence_or_one_tensor():
    spline = SplineTransformer(4, BOUND)
    raw = torch.randn(parameter_count(4), 3, 5)
    x = torch.randn(3, 5)
    form = spline.handwritten()
    z_tensor = form.inverse_saving(x, raw)[0]
    z_tuple = form.inverse_saving(x, tuple(raw))[0]
    torch.testing.assert_close(z_tensor, z_tuple)
    torch.testing.assert_close(
        z_tensor, inverse_rational_quadratic_spline(x, raw.movedim(0, -1), BOUND)[0]
    )


def test_a_spline_first_used_in_inference_mode_still_trains_through_autograd():
    spline = SplineTransformer(7, BOUND)  # a bin count no other test caches constants for
    raw, x = torch.randn(parameter_count(7), 4, 3), torch.randn(4, 3)
    with torch.inference_mode():
        spline.inverse(x, raw)
        spline.handwritten().inverse_backward(
            spline.handwritten().inverse_saving(x, raw)[2], x, torch.tensor(-0.5)
        )
    raw.requires_grad_(True)
    z, log_det = spline.inverse(x, raw)
    (z.sum() + log_det.sum()).backward()
    assert torch.isfinite(raw.grad).all()
