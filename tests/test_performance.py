"""The speed tricks of ``flowforge.performance`` change nothing but speed: with each
switched off, the same numbers come out."""

import copy

import pytest
import torch

from flowforge import evaluate, fit, realnvp, values
from flowforge.distributions import multivariate
from flowforge.nets import mlp
from flowforge.performance import switches


@pytest.fixture
def model():
    torch.manual_seed(0)
    flow = realnvp(2, hidden=8).double()
    with torch.no_grad():
        for p in flow.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return flow


SWITCHES = [
    (mlp, "DIRECT_CALLS", False),
    (mlp, "TRANSPOSED_ROWS", float("inf")),
    (values, "TRANSPOSED_CONCAT_ROWS", float("inf")),
    (multivariate, "CLOSED_FORM_NORMAL", False),
    (evaluate, "CHUNKED_CALLS", False),
    (evaluate, "COLUMN_PLANS", False),
]


@pytest.mark.parametrize("module, name, off", SWITCHES, ids=[s[1] for s in SWITCHES])
def test_each_forward_switch_off_gives_the_same_log_prob(model, monkeypatch, module, name, off):
    x = torch.randn(10_000, 2, dtype=torch.float64)  # past every row threshold
    if module is not evaluate:  # through the layers, where these switches act
        monkeypatch.setattr(evaluate, "COLUMN_PLANS", False)
    with torch.no_grad():
        tricks = model.log_prob(x)
        monkeypatch.setattr(module, name, off)
        assert switches()[name] == off
        plain = model.log_prob(x)
    torch.testing.assert_close(plain, tricks, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "options",
    [{"gradients": "autograd"}, {"flat": False}, {"threads": None}],
    ids=["autograd", "no-flat-parameters", "torch-threads"],
)
def test_each_training_switch_off_gives_the_same_weights(model, options):
    x = torch.randn(512, 2, dtype=torch.float64)
    twin = copy.deepcopy(model)
    kwargs = dict(epochs=2, batch_size=64, lr=1e-2, warmup=0, ema=0.0, progress=False)
    fit(model, x, **kwargs)
    fit(twin, x, **kwargs, **options)
    for a, b in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
