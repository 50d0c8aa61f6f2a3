import math

import pytest
import torch
from torch.distributions import MultivariateNormal, Uniform

from flowforge import (
    AffineCoupling,
    Merge,
    Multivariate,
    NormalizingFlow,
    Scale,
    Split,
    Swap,
    block,
)
from flowforge.families import FAMILIES


def _realnvp(context_width=0, base=None):
    return NormalizingFlow(
        base or Multivariate(2),
        Split(),
        AffineCoupling(block(1, 1, 8, context_width=context_width)),
        Swap(),
        AffineCoupling(block(1, 1, 8, context_width=context_width)),
        Merge(),
        Scale([0.7, 1.3]),
    )


def test_log_prob_is_the_change_of_variables():
    model = _realnvp().double()
    x = torch.randn(10, 2, dtype=torch.float64)
    z, log_det = model.flow.inverse(x)
    expected = -0.5 * (z**2).sum(1) - math.log(2 * math.pi) + log_det
    torch.testing.assert_close(model.log_prob(x), expected)
    torch.testing.assert_close(model(x), model.log_prob(x))


def test_density_integrates_to_one():
    model = _realnvp().double()
    grid = torch.linspace(-8, 8, 401, dtype=torch.float64)
    x0, x1 = torch.meshgrid(grid, grid, indexing="ij")
    x = torch.stack([x0.flatten(), x1.flatten()], 1)
    with torch.no_grad():
        mass = model.log_prob(x).exp().sum() * (grid[1] - grid[0]) ** 2
    assert float(mass) == pytest.approx(1.0, abs=1e-3)


def test_sample_and_log_prob_agree_with_log_prob():
    model = _realnvp().double()
    x, lp = model.sample_and_log_prob(64)
    assert x.shape == (64, 2) and lp.shape == (64,)
    torch.testing.assert_close(lp, model.log_prob(x))


def test_double_and_state_dict_carry_the_base_distribution():
    model = _realnvp().double()
    assert model.base_distribution.loc.dtype == torch.float64
    assert "base_distribution.loc" in model.state_dict()
    assert model.sample(3).dtype == torch.float64


def test_conditional_sampling_shapes_and_densities():
    model = _realnvp(context_width=1).double()
    context = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
    x, lp = model.sample_and_log_prob(5, context)
    assert x.shape == (3, 5, 2) and lp.shape == (3, 5)
    for i in range(3):
        torch.testing.assert_close(lp[i], model.log_prob(x[i], context[i].expand(5, 1)))
    assert model.sample(4, context[0]).shape == (4, 2)
    assert not torch.allclose(
        model.log_prob(x[0], context[0].expand(5, 1)), model.log_prob(x[0], context[2].expand(5, 1))
    )


def test_torch_multivariate_distribution_is_accepted_as_base():
    mvn = MultivariateNormal(torch.zeros(2), torch.eye(2))
    model = NormalizingFlow(mvn, Scale([2.0, 2.0]))
    x = torch.randn(4, 2)
    torch.testing.assert_close(model.log_prob(x), mvn.log_prob(x / 2) - 2 * math.log(2.0))


def test_uniform_base_gives_minus_inf_outside_its_image():
    model = NormalizingFlow(Multivariate(2, Uniform(-1.0, 1.0)), Scale([2.0, 2.0]))
    lp = model.log_prob(torch.tensor([[0.0, 0.0], [3.0, 0.0]]))
    assert lp[0] == pytest.approx(-2 * math.log(4.0))
    assert torch.isneginf(lp[1])


def test_points_of_the_wrong_width_are_rejected_clearly():
    with pytest.raises(ValueError, match=r"got \(5, 3\); this model has width 2"):
        _realnvp().log_prob(torch.randn(5, 3))


def test_univariate_torch_distribution_needs_multivariate():
    with pytest.raises(TypeError, match="Multivariate"):
        NormalizingFlow(torch.distributions.Normal(0.0, 1.0), Scale(2.0))


def test_layers_must_be_invertible():
    with pytest.raises(TypeError, match="no inverse"):
        NormalizingFlow(Multivariate(2), torch.nn.Linear(2, 2))


def test_input_of_another_dtype_than_the_weights_is_a_clear_error():
    model = _realnvp()  # float32 weights
    with pytest.raises(ValueError, match=r"points are torch.float64 .* weights are torch.float32"):
        model.log_prob(torch.randn(5, 2, dtype=torch.float64))
    # Layers without weights follow the input's dtype, as before.
    fixed = NormalizingFlow(Multivariate(2), Scale([2.0, 2.0]))
    assert fixed.log_prob(torch.randn(5, 2, dtype=torch.float64)).dtype == torch.float64


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_family_scores_samples_and_trains_on_zero_rows(name):
    """An empty share of a distributed batch: log_prob, the training loss and its
    gradient, and sampling on zero rows, for every family (images included)."""
    family = FAMILIES[name]
    model = family.build(**family.test_size) if family.data == "images" else None
    model = family.build(2, **family.test_size) if model is None else model
    x = torch.zeros(0, model.width)
    assert model.log_prob(x).shape == (0,)
    loss = -model(x).sum()
    loss.backward()
    assert all(p.grad is None or torch.all(p.grad == 0) for p in model.parameters())
    with torch.no_grad():
        assert model.sample(0).shape == (0, model.width)
