"""Every registered layer at numeric extremes and on empty batches (issue 15): inputs from
``1e-38`` to ``3e37`` in float32 (``1e-300`` to ``3e306`` in float64), exact zeros, and
batches of zero rows. Overflow to ``±inf`` is allowed (the number is too large for the
dtype); a NaN never is: it would pass silently through ``log_prob`` and training."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowforge.values import num_samples
from tests.helpers import DTYPES
from tests.registry import LAYERS

CASES = [pytest.param(case, id=case.name) for case in LAYERS]
SETTINGS = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
LARGEST = {torch.float32: 37, torch.float64: 306}  # 3 * 10**k stays finite
# A stack of layers (and an autoregressive layer's sequential direction: one pass per
# column) can overflow inside, and a net reading inf makes NaN: stacks are held to half
# the exponent (1e18 in float32), where nothing inside overflows.
STACKS = ("SequentialFlow-", "OnLast-", "MaskedAutoregressive", "Inverse-MaskedAutoregressive")


def _scaled(value, scale):
    if isinstance(value, tuple):
        return tuple(_scaled(v, scale) for v in value)
    return value.clamp(-3, 3) * scale


def _tensors(value):
    return value if isinstance(value, tuple) else (value,)


def _assert_no_nan(case, direction, value, log_det, batch):
    assert num_samples(value) == batch and log_det.shape == (batch,)
    for t in (*_tensors(value), log_det):
        assert not torch.isnan(t).any(), f"{case.name}.{direction} gave NaN"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@SETTINGS
@given(
    batch=st.integers(0, 3),
    exponent=st.integers(-400, 400),
    zero=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_layers_never_give_nan_at_numeric_extremes(case, dtype, batch, exponent, zero, seed):
    """``forward`` of ``z`` scaled by ``10**exponent`` (clipped to what the dtype holds;
    all zeros with ``zero``), and ``inverse`` of a forward output scaled the same way,
    give no NaN, in outputs or log-dets, for any batch size including 0. (Seen failing
    before the fix: the masked couplings' lerp and products by the mask turned an
    overflow into NaN, and Logit gave NaN outside its domain.)"""
    torch.manual_seed(seed)
    limit = LARGEST[dtype] // (2 if case.name.startswith(STACKS) else 1)
    scale = 0.0 if zero else 10.0 ** max(-limit - 1, min(limit, exponent))
    width = case.min_width + 1
    layer = case.build(width, 0).to(dtype).eval()
    z = case.value(batch, width, dtype)
    with torch.no_grad():
        x, log_det = layer.forward(_scaled(z, scale))
        _assert_no_nan(case, "forward", x, log_det, batch)
        back, log_det = layer.inverse(_scaled(layer.forward(z)[0], scale))
        _assert_no_nan(case, "inverse", back, log_det, batch)


@pytest.mark.parametrize("dtype", DTYPES)
def test_logit_outside_its_domain_is_outside_the_support_not_nan(dtype):
    """Data outside ``(0, 1)`` (with ``alpha`` 0: on its ends too) has zero density: a
    log-det of ``-inf``, latents 0 there; NaN before (seen failing)."""
    from flowforge.layers import Logit

    x = torch.tensor([[0.5, 0.25], [1e4, 0.5], [-3.0, 0.5], [0.0, 0.5]], dtype=dtype)
    z, log_det = Logit(alpha=0.0).inverse(x)
    assert torch.isfinite(z).all() and torch.isfinite(log_det[0])
    assert torch.isneginf(log_det[1:]).all() and (z[1:, 0] == 0).all()
    expected, _ = Logit(alpha=0.0).inverse(x[:1])
    assert torch.equal(z[:1], expected)  # rows inside are unchanged
