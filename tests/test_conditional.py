"""One-hot label context and a conditional flow with its context fixed."""

import math

import pytest
import torch

from flowforge import nsf
from flowforge.conditional import Conditioned, label_context


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


def test_conditional_floor_scores_each_point_against_its_own_moon():
    from flowforge.workbench.data import MoonsDensity, Standardization
    from flowforge.workbench.scoring.truth import conditional_floor_of, given_label, true_entropy

    truth = MoonsDensity(0.1, Standardization((0.5, 0.25), (0.87, 0.5)))
    x = truth.sample(300, seed=1)
    outer, inner = given_label(truth, 0).log_prob(x), given_label(truth, 1).log_prob(x)
    # the two moons mix back into the truth: p(x) = p(x | 0) / 2 + p(x | 1) / 2
    torch.testing.assert_close(torch.logaddexp(outer, inner) - math.log(2), truth.log_prob(x))
    labels = torch.arange(300) % 2
    exact = torch.where(labels == 0, outer, inner)
    floor = conditional_floor_of(truth, x, labels, exact)
    assert floor.kl.mean == pytest.approx(0.0, abs=1e-12)  # the truth itself: no divergence
    # H(X | moon) = H(X) - I(X; moon), and the moons barely overlap: close to H(X) - log 2
    assert floor.entropy.mean == pytest.approx(true_entropy(truth).mean - math.log(2), abs=0.02)
