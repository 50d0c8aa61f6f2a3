"""One-hot label context and a conditional flow with its context fixed."""

import pytest
import torch

from flowforge import Conditioned, label_context, nsf


def test_label_context_is_one_hot_and_checks_its_range():
    assert label_context(torch.tensor([1, 0, 1]), 2).tolist() == [[0, 1], [1, 0], [0, 1]]
    with pytest.raises(ValueError, match="labels must lie in 0..1"):
        label_context(torch.tensor([0, 2]), 2)


def test_conditioned_is_the_flow_at_one_context_row():
    model = nsf(2, layers=2, hidden=8, bins=4, context_width=2).double()
    given = Conditioned(model, label_context(torch.tensor([1]), 2)[0])
    x = torch.randn(7, 2, dtype=torch.float64)
    expected = model.log_prob(x, torch.tensor([[0.0, 1.0]], dtype=torch.float64).expand(7, 2))
    torch.testing.assert_close(given.log_prob(x), expected)
    torch.manual_seed(0)
    samples = given.sample(5)
    torch.manual_seed(0)
    torch.testing.assert_close(samples, model.sample(5, torch.tensor([0.0, 1.0])).double())
    assert samples.shape == (5, 2)
    with pytest.raises(ValueError, match="one context row"):
        Conditioned(model, torch.zeros(3, 2))
