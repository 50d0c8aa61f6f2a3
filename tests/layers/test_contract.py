"""Every registered layer against the flow contract, in float32 and float64, over random shapes."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flowforge import FlowLayer, check_flow
from flowforge.values import first_tensor, num_samples
from tests.helpers import DTYPES
from tests.registry import LAYERS

CASES = [pytest.param(case, id=case.name) for case in LAYERS]
SETTINGS = settings(
    max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _make(case, batch, width, context_width, dtype):
    layer = case.build(width, context_width).to(dtype)
    z = case.value(batch, width, dtype)
    context = (torch.randn(batch, context_width, dtype=dtype),) if context_width else ()
    return layer, z, context


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
@SETTINGS
@given(batch=st.integers(1, 6), extra_width=st.integers(0, 5), context=st.booleans())
def test_contract(case, dtype, batch, extra_width, context):
    """Round trip, log-det shape/dtype, cancellation and autograd log|det| (check_flow)."""
    width = case.min_width + extra_width
    layer, z, ctx = _make(case, batch, width, 3 if context else 0, dtype)
    check_flow(layer, z, *ctx)


@pytest.mark.parametrize("case", CASES)
def test_log_det_follows_dtype_and_batch(case):
    layer, z, _ = _make(case, 5, case.min_width + 2, 0, torch.float64)
    x, ld_forward = layer.forward(z)
    back, ld_inverse = layer.inverse(x)
    for value, log_det in ((x, ld_forward), (back, ld_inverse)):
        assert log_det.dtype == torch.float64 and log_det.shape == (5,)
        assert num_samples(value) == 5 and first_tensor(value).dtype == torch.float64


@pytest.mark.parametrize("case", [c for c in CASES if c.values[0].uses_context])
def test_context_reaches_the_conditioner(case):
    """The output of a conditional layer changes with the context, and the contract holds."""
    layer, z, ctx = _make(case, 4, case.min_width + 2, 3, torch.float64)
    out_a = layer.forward(z, *ctx)[0]
    out_b = layer.forward(z, ctx[0] + 1.0)[0]
    a = out_a if isinstance(out_a, tuple) else (out_a,)
    b = out_b if isinstance(out_b, tuple) else (out_b,)
    assert any(not torch.allclose(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("case", CASES)
def test_state_dict_round_trip(case):
    """A fresh layer loaded with another's state_dict computes the same function."""
    width = case.min_width + 2
    layer, z, _ = _make(case, 4, width, 0, torch.float64)
    clone = case.build(width, 0).to(torch.float64)
    clone.load_state_dict(layer.state_dict())
    out_a, ld_a = layer.forward(z)
    out_b, ld_b = clone.forward(z)
    torch.testing.assert_close(ld_a, ld_b)
    a = out_a if isinstance(out_a, tuple) else (out_a,)
    b = out_b if isinstance(out_b, tuple) else (out_b,)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y)


def test_every_exported_layer_class_has_a_registry_case():
    """Each concrete layer class ``flowforge.layers`` exports is the layer of some case."""
    import flowforge.layers

    exported = {
        getattr(flowforge.layers, name)
        for name in flowforge.layers.__all__
        if isinstance(getattr(flowforge.layers, name), type)
    }
    layer_classes = {cls for cls in exported if issubclass(cls, FlowLayer) and cls is not FlowLayer}
    registered = {type(case.build(case.min_width + 1, 0)) for case in LAYERS}
    assert sorted(cls.__name__ for cls in layer_classes - registered) == []


@pytest.mark.parametrize("context_width", [0, 3], ids=["no-context", "context"])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CASES)
def test_contract_on_a_batch_of_zero_rows(case, dtype, context_width):
    """Every layer maps a batch of zero rows (an empty share of a distributed batch) to
    zero rows, with log-dets of shape ``(0,)``, both ways (check_flow at batch 0)."""
    width = case.min_width + 2
    layer, z, ctx = _make(case, 0, width, context_width, dtype)
    check_flow(layer, z, *ctx)
    x, log_det = layer.forward(z, *ctx)
    assert num_samples(x) == 0 and log_det.shape == (0,) and log_det.dtype == dtype
