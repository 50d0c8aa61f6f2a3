import math

import pytest
import torch
from torch.distributions import Independent, Laplace, MultivariateNormal, Normal, StudentT, Uniform

from flowforge import Multivariate

UNIVARIATE = [
    pytest.param(Normal(0.5, 2.0), id="normal"),
    pytest.param(Uniform(-2.0, 3.0), id="uniform"),
    pytest.param(Laplace(0.0, 1.5), id="laplace"),
    pytest.param(StudentT(4.0, 0.0, 1.0), id="student-t"),
]


@pytest.mark.parametrize("dist", UNIVARIATE)
def test_log_prob_matches_independent_torch_distribution(dist):
    base = Multivariate(3, dist)
    x = base.sample(500)
    assert x.shape == (500, 3)
    reference = Independent(dist.expand((3,)), 1).log_prob(x)
    torch.testing.assert_close(base.log_prob(x), reference)


def test_uniform_outside_support_is_minus_inf_never_nan():
    base = Multivariate(2, Uniform(-1.0, 1.0))
    x = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, -5.0], [float("inf"), 0.0]])
    lp = base.log_prob(x)
    assert lp[0] == pytest.approx(-2 * math.log(2.0))
    assert torch.isneginf(lp[1:]).all()


def test_per_dimension_parameters():
    base = Multivariate(2, Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])))
    x = torch.randn(7, 2)
    reference = Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0])).log_prob(x).sum(1)
    torch.testing.assert_close(base.log_prob(x), reference)
    assert base.sample(5).shape == (5, 2)


def test_multivariate_normal_is_wrapped_as_is():
    mvn = MultivariateNormal(torch.zeros(2), torch.tensor([[1.0, 0.5], [0.5, 2.0]]))
    base = Multivariate(2, mvn)
    x = torch.randn(6, 2)
    torch.testing.assert_close(base.log_prob(x), mvn.log_prob(x))


def test_parameters_are_buffers_that_follow_dtype_and_state_dict():
    base = Multivariate(2, Laplace(1.0, 2.0)).double()
    assert base.loc.dtype == torch.float64
    assert base.sample(3).dtype == torch.float64
    assert base.log_prob(torch.zeros(1, 2, dtype=torch.float64)).dtype == torch.float64
    assert set(base.state_dict()) == {"loc", "scale"}
    other = Multivariate(2, Laplace(0.0, 1.0)).double()
    other.load_state_dict(base.state_dict())
    torch.testing.assert_close(
        other.log_prob(torch.ones(1, 2).double()), base.log_prob(torch.ones(1, 2).double())
    )


def test_wrong_width_names_both_widths():
    with pytest.raises(ValueError, match=r"shape \(batch, 2\), got \(4, 3\)"):
        Multivariate(2).log_prob(torch.zeros(4, 3))


def test_distribution_of_the_wrong_shape_is_rejected():
    with pytest.raises(ValueError, match="does not describe vectors of width 2"):
        Multivariate(2, Normal(torch.zeros(3), torch.ones(3)))


def test_bad_width_and_bad_dist():
    with pytest.raises(ValueError, match="positive integer"):
        Multivariate(0)
    with pytest.raises(TypeError, match="torch.distributions.Distribution"):
        Multivariate(2, "normal")


def test_cached_normal_constants_follow_every_change_of_the_buffers():
    base = Multivariate(2)
    x = torch.randn(5, 2)
    expected = Normal(0.0, 1.0).log_prob(x).sum(1)
    torch.testing.assert_close(base.log_prob(x), expected)
    base.scale.fill_(2.0)  # in place
    torch.testing.assert_close(base.log_prob(x), Normal(0.0, 2.0).log_prob(x).sum(1))
    base.load_state_dict({"loc": torch.tensor(1.0), "scale": torch.tensor(0.5)})
    torch.testing.assert_close(base.log_prob(x), Normal(1.0, 0.5).log_prob(x).sum(1))
    base.double()  # replaced buffers
    torch.testing.assert_close(
        base.log_prob(x.double()), Normal(1.0, 0.5).log_prob(x.double()).sum(1)
    )


def test_log_prob_under_inference_mode_then_with_autograd():
    """Constants cached inside ``inference_mode`` must still work with autograd later."""
    base = Multivariate(2)
    with torch.inference_mode():
        base.log_prob(torch.randn(3, 2))
    x = torch.randn(3, 2, requires_grad=True)
    base.log_prob(x).sum().backward()
    torch.testing.assert_close(x.grad, -x.detach())
