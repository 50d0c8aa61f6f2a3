"""Hamiltonian Monte Carlo for reference chains, and the chains' diagnostics.

A plain HMC (Duane et al. 1987; Neal 2011, "MCMC using Hamiltonian dynamics"), run on
many chains at once, in coordinates whitened by a given mean and Cholesky factor (a
Laplace approximation, say), so that one step size suits every direction. The step size
is tuned during warm-up towards an acceptance rate and then frozen (jittered by ±20 %
per iteration, so that no trajectory length resonates). Used once, by
``benchmarks/logistic_reference.py``, to make the posterior's shipped reference chain.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class Chains:
    """Draws of shape ``(chains, draws, dim)`` and how they were made."""

    draws: Tensor
    step_size: float
    accept_rate: float


def _potential_and_grad(log_prob: Callable[[Tensor], Tensor], z: Tensor, to_x) -> tuple:
    z = z.detach().requires_grad_(True)
    lp = log_prob(to_x(z))
    (grad,) = torch.autograd.grad(lp.sum(), z)
    return lp.detach(), grad


def hmc(
    log_prob: Callable[[Tensor], Tensor],
    start: Tensor,
    *,
    draws: int,
    warmup: int,
    leapfrog: int = 8,
    step_size: float = 0.2,
    target_accept: float = 0.8,
    mean: Tensor | None = None,
    chol: Tensor | None = None,
    generator: torch.Generator | None = None,
) -> Chains:
    """HMC on ``start.shape[0]`` chains at once.

    Args:
        log_prob: Unnormalized log-density of rows ``(chains, dim) -> (chains,)``.
        start: The chains' starting points, ``(chains, dim)`` (float64).
        draws: Draws kept per chain, after ``warmup`` tuning iterations.
        leapfrog: Leapfrog steps per iteration.
        step_size: The first step size (in whitened units), tuned in warm-up.
        target_accept: The acceptance rate warm-up aims at.
        mean, chol: The whitening: the chains move ``z`` with ``x = mean + chol @ z``.
        generator: The random stream (momenta, acceptance, jitter).

    Returns:
        The kept draws, ``(chains, draws, dim)``, with the frozen step size and the
        acceptance rate after warm-up.

    Example:
        >>> import torch
        >>> g = torch.Generator().manual_seed(0)
        >>> run = hmc(lambda x: -0.5 * (x**2).sum(1), torch.zeros(4, 3, dtype=torch.float64),
        ...           draws=500, warmup=200, generator=g)
        >>> run.draws.shape, abs(float(run.draws.mean())) < 0.1
        (torch.Size([4, 500, 3]), True)
    """
    d = start.shape[1]
    mean = torch.zeros(d, dtype=start.dtype) if mean is None else mean
    chol = torch.eye(d, dtype=start.dtype) if chol is None else chol

    def to_x(z: Tensor) -> Tensor:
        return mean + z @ chol.T

    z = torch.linalg.solve_triangular(chol, (start - mean).T, upper=False).T
    lp, grad = _potential_and_grad(log_prob, z, to_x)
    log_eps, kept, accepted = math.log(step_size), [], 0.0
    for it in range(warmup + draws):
        jitter = 0.8 + 0.4 * float(torch.rand((), generator=generator, dtype=torch.float64))
        eps = math.exp(log_eps) * jitter
        p = torch.randn(z.shape, generator=generator, dtype=z.dtype)
        z_new, p_new, g_new = z, p + 0.5 * eps * grad, grad
        for step in range(leapfrog):
            z_new = z_new + eps * p_new
            lp_new, g_new = _potential_and_grad(log_prob, z_new, to_x)
            p_new = p_new + (eps if step < leapfrog - 1 else 0.5 * eps) * g_new
        log_ratio = lp_new - lp - 0.5 * (p_new**2).sum(1) + 0.5 * (p**2).sum(1)
        log_ratio = torch.nan_to_num(log_ratio, nan=-math.inf)
        rate = log_ratio.clamp(max=0).exp()
        take = torch.rand(len(z), generator=generator, dtype=z.dtype) < rate
        z = torch.where(take[:, None], z_new, z)
        lp = torch.where(take, lp_new, lp)
        grad = torch.where(take[:, None], g_new, grad)
        if it < warmup:
            log_eps += (float(rate.mean()) - target_accept) / math.sqrt(it + 10)
        else:
            accepted += float(take.double().mean())
            kept.append(to_x(z).detach())
    return Chains(torch.stack(kept, 1), math.exp(log_eps), accepted / max(draws, 1))


def split_rhat(draws: Tensor) -> Tensor:
    """Split-R̂ of each coordinate (Gelman et al., "Bayesian Data Analysis", 3rd ed.):
    each chain cut in two halves; near 1 when the chains agree.

    Args:
        draws: ``(chains, n, dim)``.
    """
    half = draws.shape[1] // 2
    parts = torch.cat([draws[:, :half], draws[:, half : 2 * half]], 0)
    n = parts.shape[1]
    within = parts.var(1).mean(0)
    between = n * parts.mean(1).var(0)
    return (((n - 1) / n * within + between / n) / within).sqrt()


def batch_mcse(draws: Tensor, batches: int = 20) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Mean, standard deviation and their Monte Carlo standard errors by batch means.

    Each chain is cut into ``batches`` consecutive batches; the estimates' errors are
    the spread of the per-batch estimates (the standard deviation's linearized through
    ``sd = sqrt(E[x²] - E[x]²)``), which accounts for the autocorrelation when a batch
    is much longer than it.

    Args:
        draws: ``(chains, n, dim)``.

    Returns:
        ``(mean, std, mcse_mean, mcse_std)``, each ``(dim,)``.
    """
    c, n, d = draws.shape
    size = n // batches
    b = draws[:, : size * batches].reshape(c * batches, size, d)
    m1, m2 = b.mean(1), (b**2).mean(1)
    mean, second = m1.mean(0), m2.mean(0)
    std = (second - mean**2).sqrt()
    linear = -mean / std * m1 + m2 / (2 * std)
    k = len(b)
    return mean, std, m1.std(0) / math.sqrt(k), linear.std(0) / math.sqrt(k)
