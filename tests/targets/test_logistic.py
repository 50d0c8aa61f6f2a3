"""The posterior target and its shipped reference chain: provenance, the HMC that made it,
and an independent check by importance sampling."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from flowforge import targets
from flowforge.targets.hmc import batch_mcse, hmc, split_rhat

pytestmark = pytest.mark.cpu_only
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_hmc_recovers_a_correlated_gaussian():
    g = torch.Generator().manual_seed(0)
    cov = torch.tensor([[1.0, 0.8, 0.0], [0.8, 1.0, 0.3], [0.0, 0.3, 2.0]], dtype=torch.float64)
    prec, mean = torch.linalg.inv(cov), torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    def log_p(x):
        d = x - mean
        return -0.5 * ((d @ prec) * d).sum(1)

    run = hmc(log_p, torch.zeros(8, 3, dtype=torch.float64), draws=800, warmup=200, generator=g)
    m, s, se_m, se_s = batch_mcse(run.draws)
    assert (split_rhat(run.draws) < 1.02).all() and 0.6 < run.accept_rate < 0.95
    assert ((m - mean).abs() < 4.5 * se_m).all()
    assert ((s - cov.diagonal().sqrt()).abs() < 4.5 * se_s).all()


def test_batch_means_errors_match_independent_draws():
    x = torch.randn(8, 4000, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    _, _, se_m, se_s = batch_mcse(x)
    n = 8 * 4000
    assert se_m.tolist() == pytest.approx([1 / math.sqrt(n)] * 2, rel=0.25)
    assert se_s.tolist() == pytest.approx([1 / math.sqrt(2 * n)] * 2, rel=0.25)
    # Chains stuck in different places: R-hat sees it.
    assert (split_rhat(x + torch.arange(8.0)[:, None, None]) > 1.5).all()


@pytest.fixture(scope="module")
def posterior():
    pytest.importorskip("sklearn")
    return targets.get("logistic-breast-cancer")


def test_log_prob_is_the_bernoulli_likelihood_times_the_gaussian_prior(posterior):
    beta = torch.randn(4, 31, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    logits = beta @ posterior.design.T
    ll = torch.distributions.Bernoulli(logits=logits).log_prob(posterior.labels).sum(1)
    prior = torch.distributions.Normal(0.0, 1.0).log_prob(beta).sum(1)
    diff = posterior.log_prob(beta) - (ll + prior)
    assert torch.allclose(diff, diff[0].expand(4)) and posterior.design.shape == (569, 31)
    mode, _ = posterior.laplace()
    mode.requires_grad_(True)
    (grad,) = torch.autograd.grad(posterior.log_prob(mode[None]).sum(), mode)
    assert float(grad.abs().max()) < 1e-8


def test_the_reference_file_records_how_it_was_made(posterior):
    ref = posterior.reference
    s = ref["settings"]
    assert (ROOT / s["script"]).is_file() and s["script"] == "benchmarks/logistic_reference.py"
    assert s["command"].startswith("python -m benchmarks.logistic_reference")
    assert s["design_shape"] == [569, 31] and s["prior_scale"] == 1.0
    assert s["chains"] >= 8 and s["draws_per_chain"] >= 10_000
    assert all(ref[k].shape == (31,) for k in ("mean", "std", "mcse_mean", "mcse_std"))
    assert (ref["mcse_mean"] < 0.01 * ref["std"]).all() and (ref["mcse_std"] > 0).all()
    assert targets.get("logistic-breast-cancer", prior_scale=2.0).reference is None


def test_the_reference_agrees_with_importance_sampling(posterior):
    """Self-normalized importance sampling from a Student-t around the Laplace fit: an
    independent estimate of the posterior's means and standard deviations."""
    g = torch.Generator().manual_seed(3)
    mode, cov = posterior.laplace()
    chol, nu, n, d = torch.linalg.cholesky(cov), 7.0, 40_000, 31
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    chi2 = torch.distributions.Chi2(nu).sample((n,)).double()
    x = mode + (z * (nu / chi2).sqrt()[:, None]) @ chol.T
    r2 = (torch.linalg.solve_triangular(chol, (x - mode).T, upper=False) ** 2).sum(0)
    log_w = posterior.log_prob(x) + (nu + d) / 2 * torch.log1p(r2 / nu)
    w = torch.softmax(log_w, 0)
    assert 1 / float((w**2).sum()) > 1000  # enough effective samples for a 3 % check
    mean = w @ x
    centred = (x - mean) ** 2
    var = w @ centred
    se_mean = ((w[:, None] ** 2) * centred).sum(0).sqrt()
    se_var = ((w[:, None] ** 2) * (centred - var) ** 2).sum(0).sqrt()
    ref = posterior.reference
    tol_mean = 4.5 * (se_mean**2 + ref["mcse_mean"] ** 2).sqrt()
    tol_std = 4.5 * ((se_var / (2 * var.sqrt())) ** 2 + ref["mcse_std"] ** 2).sqrt()
    assert ((mean - ref["mean"]).abs() < tol_mean).all()
    assert ((var.sqrt() - ref["std"]).abs() < tol_std).all()
