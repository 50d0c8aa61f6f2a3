"""The mixture bases: densities against torch's and scipy's, EM on a known mixture, explicit
init, Student-t samples against their law."""

import math

import numpy as np
import pytest
import torch

from flowforge import nsf
from flowforge.distributions import (
    GaussianMixture,
    StudentTMixture,
    fit_gaussian_mixture,
    initialize_mixture,
)


def _mixture() -> GaussianMixture:
    m = GaussianMixture(2, 3).double()
    with torch.no_grad():
        m.logits.copy_(torch.tensor([0.0, 1.0, -0.5]))
        m.log_diagonal.normal_(0.0, 0.3)
        m.lower.normal_()
    return m


def test_log_prob_matches_torch_mixture_same_family():
    m = _mixture()
    reference = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=m.logits),
        torch.distributions.MultivariateNormal(m.means, scale_tril=m.scale_tril()),
    )
    x = torch.randn(50, 2, dtype=torch.float64) * 3
    torch.testing.assert_close(m.log_prob(x), reference.log_prob(x))
    assert m.log_prob(x.float()).dtype == torch.float32


def test_em_recovers_a_known_mixture():
    torch.manual_seed(0)
    means = torch.tensor([[-3.0, 0.0], [3.0, 1.0]])
    a = torch.randn(6000, 2) * torch.tensor([0.5, 1.0]) + means[0]
    b = torch.randn(4000, 2) @ torch.tensor([[1.0, 0.8], [0.0, 0.6]]) + means[1]
    weights, fitted, cov = fit_gaussian_mixture(torch.cat([a, b]), 2)
    order = fitted[:, 0].argsort()
    torch.testing.assert_close(weights[order].float(), torch.tensor([0.6, 0.4]), atol=0.01, rtol=0)
    torch.testing.assert_close(fitted[order].float(), means, atol=0.06, rtol=0)
    expected = torch.tensor([[[0.25, 0.0], [0.0, 1.0]], [[1.0, 0.8], [0.8, 1.0]]])
    torch.testing.assert_close(cov[order].float(), expected, atol=0.08, rtol=0)


def test_samples_follow_the_mixture():
    m = _mixture()
    x = m.sample(40_000)
    probs = torch.softmax(m.logits, 0)
    mean = (probs[:, None] * m.means).sum(0)
    torch.testing.assert_close(x.mean(0), mean, atol=0.05, rtol=0)


def test_initialize_mixture_fits_the_latent_image_once():
    torch.manual_seed(0)
    model = nsf(2, coupling=True, layers=2, hidden=8, base="mixture", zero_init=True)
    data = torch.randn(2000, 2) * torch.tensor([0.3, 1.5])
    before = -model.log_prob(data).mean().item()
    assert initialize_mixture(model, data)
    after = -model.log_prob(data).mean().item()
    assert after < before - 0.5 and bool(model.base_distribution.initialized)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert not initialize_mixture(model, data * 5)  # fitted already: left alone
    torch.testing.assert_close(
        model.state_dict()["base_distribution.means"], state["base_distribution.means"]
    )


def test_initialize_mixture_on_a_seeded_subsample_is_reproducible():
    data = torch.randn(3000, 2) * torch.tensor([0.3, 1.5])
    means = []
    for _ in range(2):
        model = nsf(2, coupling=True, layers=1, hidden=8, base="mixture", zero_init=True)
        initialize_mixture(model, data, seed=3, restarts=1, max_points=500)
        means.append(model.base_distribution.means.detach().clone())
    torch.testing.assert_close(means[0], means[1])


def _t_mixture(df: float, width: int = 3) -> StudentTMixture:
    m = StudentTMixture(width, 2, df).double()
    with torch.no_grad():
        m.logits.copy_(torch.tensor([0.3, -0.4]))
        m.log_diagonal.normal_(0.0, 0.3)
        m.lower.normal_(0.0, 0.5)
    return m


@pytest.mark.parametrize("df", [1.0, 4.5, 30.0])
def test_student_t_mixture_log_prob_matches_scipy(df):
    from scipy.stats import multivariate_t

    torch.manual_seed(0)
    m = _t_mixture(df)
    x = torch.randn(40, 3, dtype=torch.float64) * 4
    x[0] = 1e3  # far out: a power law, still finite
    weights = torch.softmax(m.logits, 0).detach()
    cov = (m.scale_tril() @ m.scale_tril().mT).detach()
    components = [
        multivariate_t(loc=m.means[k].detach().numpy(), shape=cov[k].numpy(), df=df).logpdf(
            x.numpy()
        )
        for k in range(2)
    ]
    reference = torch.logsumexp(torch.tensor(np.stack(components, 1)) + weights.log(), dim=1)
    torch.testing.assert_close(m.log_prob(x), reference)
    assert m.log_prob(x.float()).dtype == torch.float32
    assert bool(torch.isfinite(m.log_prob(x.float())).all())


def test_student_t_samples_follow_the_distribution():
    from scipy.stats import kstest, t

    torch.manual_seed(1)
    m = StudentTMixture(1, 1, df=3.0).double()
    with torch.no_grad():
        m.means.fill_(0.5)
        m.log_diagonal.fill_(math.log(2.0))
    x = m.sample(20_000)[:, 0].detach().numpy()
    assert kstest(x, t(3.0, loc=0.5, scale=2.0).cdf).pvalue > 0.01
    # a Gaussian of the same scale fails the same test: the test can tell tails apart
    assert kstest(x, "norm", args=(0.5, 2.0 * math.sqrt(3.0))).pvalue < 1e-6


def test_student_t_set_takes_covariances_and_samples_are_reparameterized():
    torch.manual_seed(2)
    m = StudentTMixture(2, 1, df=6.0).double()
    cov = torch.tensor([[[2.0, 0.6], [0.6, 1.0]]], dtype=torch.float64)
    m.set_(torch.ones(1, dtype=torch.float64), torch.tensor([[1.0, -1.0]]), cov)
    x = m.sample(400_000)
    torch.testing.assert_close(torch.cov(x.detach().T), cov[0], atol=0.05, rtol=0)
    # the draws move with the parameters: d mean(x) / d means = 1, a path derivative
    x.mean(0).sum().backward()
    torch.testing.assert_close(m.means.grad, torch.ones(1, 2, dtype=torch.float64))
    assert m.handwritten() is None  # its gradients are autograd's, not the Gaussian's
    with pytest.raises(ValueError, match="0 < df < inf"):
        StudentTMixture(2, 1, df=math.inf)


def test_reweighting_a_student_t_mixture_follows_the_target_s_masses():
    from flowforge.training.modes import reweight
    from flowforge.training.sampler import sampler

    torch.manual_seed(3)
    box = (torch.full((2,), -8.0), torch.full((2,), 8.0))
    flow = sampler(2, box, components=2, layers=1, hidden=4, df=4.0)
    base = flow.base_distribution
    with torch.no_grad():
        z, _ = flow.flow.inverse(torch.tensor([[-4.0, 0.0], [4.0, 0.0]]))
        base.means.copy_(z)
        base.log_diagonal.fill_(math.log(0.2))
    centres, weights = torch.tensor([[-4.0, 0.0], [4.0, 0.0]]), torch.tensor([0.8, 0.2])

    def log_p(x):  # two Gaussians at the components' places, masses 0.8 and 0.2
        normal = torch.distributions.Normal(centres.to(x.dtype), 0.5)
        joint = normal.log_prob(x[:, None, :]).sum(-1) + weights.log().to(x.dtype)
        return torch.logsumexp(joint, 1) + 3.0

    for _ in range(12):
        reweight(flow, log_p, 20_000)
    torch.testing.assert_close(
        torch.softmax(base.logits, 0).detach(), torch.tensor([0.8, 0.2]), atol=0.02, rtol=0
    )
