"""The Gaussian-mixture base: density against torch's, EM on a known mixture, explicit init."""

import torch

from flowforge import nsf
from flowforge.distributions import GaussianMixture, fit_gaussian_mixture, initialize_mixture


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
