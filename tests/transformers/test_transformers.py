"""Each transformer's mathematics, written once, against autograd: round trips, elementwise
log-derivatives, and the hand-written backward of the inverse."""

import pytest
import torch

from flowforge.transformers import (
    AdditiveTransformer,
    AffineTransformer,
    SplineTransformer,
    resolve_log_scale,
    resolve_transformer,
)
from tests.helpers import DTYPES

TRANSFORMERS = {
    "affine-soft_clamp": lambda: AffineTransformer("soft_clamp"),
    "affine-exp": lambda: AffineTransformer("exp"),
    "affine-sigmoid": lambda: AffineTransformer("sigmoid"),
    "affine-custom": lambda: AffineTransformer(lambda raw: 0.5 * torch.tanh(raw)),
    "additive": AdditiveTransformer,
    "spline": lambda: SplineTransformer(bins=5, bound=2.0),
}
CASES = [pytest.param(make, id=name) for name, make in TRANSFORMERS.items()]
HANDWRITTEN = [c for c in CASES if c.id != "affine-custom" and not c.id.startswith("spline")]


def _inputs(transformer, dtype, shape=(7, 3), seed=0):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(*shape, generator=g, dtype=dtype) * 1.5
    params = tuple(
        torch.randn(*shape, generator=g, dtype=dtype) for _ in range(transformer.params_per_element)
    )
    return z, params


def _elementwise_log_derivative(f, z):
    """``log|df_i/dz_i|`` by autograd, for an elementwise ``f``."""
    z = z.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(f(z).sum(), z)
    return grad.abs().log()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", CASES)
def test_round_trip_and_log_derivatives_match_autograd(make, dtype):
    transformer = make().to(dtype)
    z, params = _inputs(transformer, dtype)
    x, ld_forward = transformer.forward(z, params)
    back, ld_inverse = transformer.inverse(x, params)
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {}
    torch.testing.assert_close(back, z, **tol)
    reference = _elementwise_log_derivative(lambda v: transformer.forward(v, params)[0], z)
    if transformer.volume_preserving:
        assert ld_forward is None and ld_inverse is None
        torch.testing.assert_close(reference, torch.zeros_like(z))
    else:
        torch.testing.assert_close(ld_forward, reference, **tol)
        torch.testing.assert_close(ld_inverse, -ld_forward, **tol)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("make", HANDWRITTEN)
def test_the_handwritten_inverse_backward_matches_autograd(make, dtype):
    """For a loss ``sum(w * z) + c * sum(log|dz/dx|)`` with random ``w`` and ``c``."""
    transformer = make().to(dtype)
    fast = transformer.handwritten()
    assert fast is not None
    x, params = _inputs(transformer, dtype, seed=1)
    w = torch.randn_like(x)
    c = torch.tensor(-0.37, dtype=dtype)
    leaves = [x.clone().requires_grad_(True), *(p.clone().requires_grad_(True) for p in params)]
    z, ld = transformer.inverse(leaves[0], leaves[1:])
    loss = (w * z).sum() + (0 if ld is None else c * ld.sum())
    expected = torch.autograd.grad(loss, leaves)

    z_fast, ld_fast, saved = fast.inverse_saving(x.clone(), params)
    torch.testing.assert_close(z_fast, z.detach())
    if ld is not None:
        torch.testing.assert_close(ld_fast, ld.detach())
    g_x, minus_g_params = fast.inverse_backward(saved, w.clone(), c)
    tol = {"atol": 1e-5, "rtol": 1e-4} if dtype == torch.float32 else {}
    torch.testing.assert_close(g_x, expected[0], **tol)
    for minus_g, g in zip(minus_g_params, expected[1:], strict=True):
        torch.testing.assert_close(-minus_g, g, **tol)


@pytest.mark.parametrize("name", ["exp", "soft_clamp", "sigmoid"])
def test_each_log_scale_derivative_matches_autograd(name):
    log_scale = resolve_log_scale(name).double()
    raw = torch.linspace(-12, 12, 97, dtype=torch.float64)
    minus_s, kept = log_scale.negated(raw)
    torch.testing.assert_close(minus_s, -log_scale(raw))
    g = torch.randn_like(raw)
    leaf = raw.clone().requires_grad_(True)
    (expected,) = torch.autograd.grad((g * log_scale(leaf)).sum(), leaf)
    torch.testing.assert_close(log_scale.times_derivative(g.clone(), kept), expected)


def test_only_the_class_that_defines_a_computation_offers_its_handwritten_form():
    class Doubled(AffineTransformer):
        def inverse(self, x, params):
            z, ld = super().inverse(x, params)
            return 2 * z, ld

    assert AffineTransformer().handwritten() is not None
    assert Doubled().handwritten() is None
    assert AffineTransformer(lambda raw: raw).handwritten() is None


def test_parameter_counts_are_asked_of_the_transformer():
    assert AffineTransformer().params_per_element == 2
    assert AdditiveTransformer().params_per_element == 1
    assert SplineTransformer(bins=8).params_per_element == 3 * 8 - 1
    assert SplineTransformer().bound == 4.0


def test_names_and_errors():
    assert isinstance(resolve_transformer("spline"), SplineTransformer)
    ready = AffineTransformer("exp")
    assert resolve_transformer(ready) is ready
    with pytest.raises(ValueError, match="unknown transformer 'cubic'"):
        resolve_transformer("cubic")
    with pytest.raises(ValueError, match="unknown log_scale 'tanhh'"):
        resolve_log_scale("tanhh")
    with pytest.raises(ValueError, match="need bins >= 2"):
        SplineTransformer(bins=1)
