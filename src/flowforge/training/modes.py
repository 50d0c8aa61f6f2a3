"""Where an unnormalized density keeps its mass: modes by multi-start ascent, as a mixture.

``find_modes(log_p, low, high)`` climbs ``log_p`` by gradient ascent from uniform starts
over the box ``[low, high]``, groups the maxima it reaches, puts a Gaussian at each
group's best point with the inverse Hessian of ``-log_p`` as covariance (a Laplace
approximation, its variances clipped to the box), weights each by its Laplace mass, and
then refines the mixture by a few rounds of importance-weighted EM on its own samples
(adaptive mixture importance sampling: Cappé et al., "Adaptive importance sampling in
general mixture classes", Statistics and Computing 2008), which turns Laplace masses of
curved or flat modes (a moon, a ring) into the masses the density gives them.

``fit_target(method="modes")`` starts a flow's mixture base there, so that training
begins with every mode covered instead of having to discover them by itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

LogDensity = Callable[[Tensor], Tensor]
# A target without bounds has its modes searched in [-UNBOUNDED, UNBOUNDED]^d.
UNBOUNDED = 5.0
Mixture = tuple[Tensor, Tensor, Tensor]  # weights (k,), means (k, d), covariances (k, d, d)


def _ascend(log_p: LogDensity, x: Tensor, scale: Tensor, steps: int) -> Tensor:
    """``x`` moved uphill on ``log_p`` by Adam in coordinates scaled by ``scale``."""
    u = (x / scale).clone().requires_grad_(True)
    optimizer = torch.optim.Adam([u], lr=0.05)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    for _ in range(steps):
        optimizer.zero_grad()
        value = log_p(u * scale)
        (-torch.where(torch.isfinite(value), value, 0.0).sum()).backward()
        u.grad.nan_to_num_(0.0)
        optimizer.step()
        schedule.step()
    return (u * scale).detach()


def _hessians(log_p: LogDensity, x: Tensor) -> Tensor:
    """The Hessians of ``log_p`` at the rows of ``x``: ``(n, d, d)``."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(log_p(x).sum(), x, create_graph=True)
    rows = [
        torch.autograd.grad(grad[:, i].sum(), x, retain_graph=True)[0] for i in range(x.shape[1])
    ]
    return torch.stack(rows, dim=1).detach()


def _laplace_covariance(hessian: Tensor, max_variance: Tensor) -> Tensor:
    """``(-H)^-1`` with its variances clipped to ``[1e-8, max_variance]`` per direction."""
    values, vectors = torch.linalg.eigh(-0.5 * (hessian + hessian.mT))
    floor = 1.0 / max_variance.max()
    variances = 1.0 / values.clamp(min=float(floor))
    variances = variances.clamp(min=1e-8)
    cov = vectors @ torch.diag_embed(variances) @ vectors.mT
    return cov + torch.diag_embed(1e-9 + 0 * max_variance).expand_as(cov)


def _group(x: Tensor, values: Tensor, covs: Tensor, limit: int) -> list[int]:
    """Indices of group leaders: the best point left, then all within Mahalanobis 3 of it
    are its members; at most ``limit`` groups."""
    order = torch.argsort(values, descending=True)
    left = torch.ones(len(x), dtype=torch.bool)
    leaders: list[int] = []
    precisions = torch.linalg.inv(covs)
    for i in order.tolist():
        if not left[i]:
            continue
        leaders.append(i)
        diff = x - x[i]
        distance = torch.einsum("nd,de,ne->n", diff, precisions[i], diff)
        left &= distance > 9.0
        if len(leaders) == limit or not left.any():
            break
    return leaders


def _mixture_log_prob(z: Tensor, weights: Tensor, means: Tensor, covs: Tensor) -> Tensor:
    """``log w_k + log N(z; mu_k, Sigma_k)``: ``(n, k)``."""
    normal = torch.distributions.MultivariateNormal(means, covariance_matrix=covs)
    return normal.log_prob(z[:, None, :]) + weights.log()


def _refine(
    log_p: LogDensity, mixture: Mixture, rounds: int, n: int, g: torch.Generator
) -> Mixture:
    """``rounds`` of importance-weighted EM on ``n`` samples of the mixture itself."""
    weights, means, covs = mixture
    d = means.shape[1]
    for _ in range(rounds):
        which = torch.multinomial(weights, n, replacement=True, generator=g)
        noise = torch.randn(n, d, 1, generator=g, dtype=means.dtype)
        z = means[which] + (torch.linalg.cholesky(covs)[which] @ noise).squeeze(-1)
        joint = _mixture_log_prob(z, weights, means, covs)
        log_q = torch.logsumexp(joint, dim=1)
        log_w = log_p(z).detach() - log_q
        log_w = torch.where(torch.isfinite(log_w), log_w, -math.inf)
        w = torch.softmax(log_w, dim=0)
        resp = torch.softmax(joint, dim=1) * w[:, None]  # (n, k), sums to 1
        mass = resp.sum(dim=0)
        keep = mass > 1e-4
        if not bool(keep.any()):
            break
        resp, mass = resp[:, keep], mass[keep]
        means = resp.T @ z / mass[:, None]
        centred = z[:, None, :] - means[None]
        new = torch.einsum("nk,nkd,nke->kde", resp, centred, centred) / mass[:, None, None]
        jitter = 1e-6 * torch.eye(d, dtype=z.dtype)
        covs = 0.5 * (new + covs[keep]) + jitter  # damped: a few samples per mode stay stable
        weights = mass / mass.sum()
    return weights, means, covs


@torch.no_grad()
def find_modes(
    log_p: LogDensity,
    low: Tensor,
    high: Tensor,
    *,
    starts: int = 2048,
    steps: int = 200,
    max_modes: int = 64,
    refine: int = 4,
    refine_samples: int = 16384,
    seed: int = 0,
) -> Mixture:
    """A Gaussian mixture over the modes of ``log_p`` inside the box ``[low, high]``.

    Args:
        log_p: An unnormalized log-density of ``(n, d)`` points, differentiable.
        low: The box's lower corner ``(d,)``.
        high: Its upper corner ``(d,)``.
        starts: Uniform starting points of the ascent.
        steps: Adam steps of the ascent.
        max_modes: The most components kept (the heaviest).
        refine: Rounds of importance-weighted EM after the Laplace start (0: none).
        refine_samples: Samples per round.
        seed: Seeds the starts and the refinement.

    Returns:
        ``(weights (k,), means (k, d), covariances (k, d, d))`` in float64.

    Example:
        >>> import torch
        >>> def log_p(x):  # two unit Gaussians at -3 and 3, masses 1/4 and 3/4
        ...     a = -0.5 * ((x - torch.tensor([-3.0, 0.0])) ** 2).sum(1)
        ...     b = -0.5 * ((x - torch.tensor([3.0, 0.0])) ** 2).sum(1)
        ...     return torch.logaddexp(a + torch.tensor(0.25).log(), b + torch.tensor(0.75).log())
        >>> box = torch.full((2,), -6.0), torch.full((2,), 6.0)
        >>> w, means, covs = find_modes(log_p, *box, starts=256)
        >>> means[torch.argsort(means[:, 0])].round().abs().tolist()
        [[3.0, 0.0], [3.0, 0.0]]
        >>> w[torch.argsort(means[:, 0])].round(decimals=1).tolist()
        [0.2, 0.8]
    """
    low, high = low.double(), high.double()
    g = torch.Generator().manual_seed(seed)
    f = _float64(log_p)
    x = low + (high - low) * torch.rand(starts, len(low), generator=g, dtype=torch.float64)
    with torch.enable_grad():
        x = _ascend(f, x, (high - low) / 8, steps)
        values = f(x)
        finite = torch.isfinite(values)
        x, values = x[finite], values[finite]
        x, values = x[values > values.max() - 50], values[values > values.max() - 50]
        covs = _laplace_covariance(_hessians(f, x), ((high - low) / 8) ** 2)
    leaders = _group(x, values, covs, max_modes)
    means, covs, values = x[leaders], covs[leaders], values[leaders]
    log_mass = values + 0.5 * torch.logdet(covs)
    weights = torch.softmax(log_mass, dim=0)
    mixture = _refine(f, (weights, means, covs), refine, refine_samples, g)
    order = torch.argsort(mixture[0], descending=True)[:max_modes]
    weights, means, covs = (t[order] for t in mixture)
    return weights / weights.sum(), means, covs


def _float64(log_p: LogDensity) -> LogDensity:
    """``log_p`` on float64 points, whatever dtype it computes in (returns float64)."""

    def wrapped(x: Tensor) -> Tensor:
        return log_p(x).double()

    return wrapped


def start_on_modes(
    flow: torch.nn.Module, log_p: LogDensity, box: tuple[Tensor, Tensor] | None, seed: int
) -> None:
    """Put ``flow``'s mixture base on the modes of ``log_p`` (mapped to the latent space
    through the flow's inverse and its Jacobian at each mode)."""
    base = flow.base_distribution
    if box is None:  # no bounds: start the search in a box of the prior's scale
        box = (torch.full((base.width,), -UNBOUNDED), torch.full((base.width,), UNBOUNDED))
    starts = 2048 if base.width <= 4 else 64
    weights, means, covs = find_modes(
        log_p, *box, starts=starts, max_modes=base.components, seed=seed
    )
    dtype = base.means.dtype
    with torch.no_grad():
        z, _ = flow.flow.inverse(means.to(dtype))
    jac = torch.stack(
        [
            torch.autograd.functional.jacobian(lambda m: flow.flow.inverse(m[None])[0][0], m)
            for m in means.to(dtype)
        ]
    ).double()
    latent = jac @ covs @ jac.mT
    k = len(weights)
    if k < base.components:  # the spare components: copies of the heaviest, weight ~0
        spare = base.components - k
        weights = torch.cat([weights, torch.full((spare,), 1e-12, dtype=weights.dtype)])
        z = torch.cat([z, z[:1].expand(spare, -1)])
        latent = torch.cat([latent, latent[:1].expand(spare, -1, -1)])
    base.set_(weights / weights.sum(), z.to(dtype), latent)


@torch.no_grad()
def reweight(flow: torch.nn.Module, log_p: LogDensity, n: int, damping: float = 0.5) -> None:
    """Move the mixture base's weights toward the masses the target gives each component:
    ``w_k <- sum_i w_i r_ik`` over the flow's own samples (``w_i``: self-normalized
    importance weights, ``r_ik``: the component's responsibility for ``z_i``)."""
    base = flow.base_distribution
    z = base.sample(n)
    log_base = base.log_prob(z)
    x, log_det = flow.flow.forward(z)
    log_w = log_p(x).to(log_base.dtype) - (log_base - log_det)
    w = torch.softmax(torch.where(torch.isfinite(log_w), log_w, -math.inf), dim=0)
    if not bool(torch.isfinite(w).all()):
        return
    joint = base.component_log_prob(z)
    mass = (torch.softmax(joint, dim=1) * w[:, None]).sum(dim=0)
    old = torch.softmax(base.logits, 0)
    new = damping * old + (1 - damping) * mass
    base.logits.copy_(torch.log(new.clamp(min=1e-12)))
