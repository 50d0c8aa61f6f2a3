"""A learnable Gaussian-mixture base distribution, fitted by EM as an explicit first step.

A flow whose base is a mixture starts where a Gaussian mixture model ends: fit the
mixture to the data's latent image (``initialize_mixture``), with the flow at the
identity (``zero_init=True``), and training only has to bend the components. On the
moons this reaches a lower KL divergence in a minute than either part alone.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.gradients import has_hooks, owns_handwritten


def _kmeans(x: Tensor, k: int, iterations: int, generator: torch.Generator) -> Tensor:
    """``k`` centres by Lloyd's algorithm from ``k`` distinct random points: ``(k, width)``."""
    centres = x[torch.randperm(len(x), generator=generator)[:k]].clone()
    for _ in range(iterations):
        nearest = torch.cdist(x, centres).argmin(dim=1)
        for j in range(k):
            members = x[nearest == j]
            if len(members):
                centres[j] = members.mean(dim=0)
    return centres


def _m_step(x: Tensor, resp: Tensor, reg: float) -> tuple[Tensor, Tensor, Tensor]:
    """Weights ``(k,)``, means ``(k, d)`` and covariances ``(k, d, d)`` from responsibilities."""
    counts = resp.sum(dim=0) + 10 * torch.finfo(x.dtype).eps
    means = resp.T @ x / counts[:, None]
    centred = x[None] - means[:, None]  # (k, n, d)
    cov = torch.einsum("kn,knd,kne->kde", resp.T, centred, centred) / counts[:, None, None]
    cov = cov + reg * torch.eye(x.shape[1], dtype=x.dtype, device=x.device)
    return counts / len(x), means, cov


def _log_joint(x: Tensor, weights: Tensor, means: Tensor, cov: Tensor) -> Tensor:
    """``log w_k + log N(x_i; mu_k, Sigma_k)`` for every point and component: ``(n, k)``."""
    tril = torch.linalg.cholesky(cov)  # (k, d, d)
    centred = (x[None] - means[:, None]).transpose(1, 2)  # (k, d, n)
    white = torch.linalg.solve_triangular(tril, centred, upper=False)
    log_det = tril.diagonal(dim1=-2, dim2=-1).log().sum(dim=-1)
    log_normal = -0.5 * white.square().sum(dim=1) - log_det[:, None]  # (k, n)
    return (log_normal - 0.5 * x.shape[1] * math.log(2 * math.pi) + weights.log()[:, None]).T


def _em(
    x: Tensor, components: int, iterations: int, tol: float, reg: float, seed: int
) -> tuple[float, tuple[Tensor, Tensor, Tensor]]:
    """One EM run from a seeded k-means start: ``(mean log-likelihood, parameters)``."""
    generator = torch.Generator().manual_seed(seed)
    centres = _kmeans(x.cpu(), components, 10, generator).to(x.device)
    resp = torch.nn.functional.one_hot(torch.cdist(x, centres).argmin(dim=1), components)
    params = _m_step(x, resp.double(), reg)
    previous = -math.inf
    for _ in range(iterations):
        log_joint = _log_joint(x, *params)
        log_likelihood = torch.logsumexp(log_joint, dim=1, keepdim=True)
        params = _m_step(x, (log_joint - log_likelihood).exp(), reg)
        mean = float(log_likelihood.mean())
        if mean - previous < tol:
            break
        previous = mean
    return float(torch.logsumexp(_log_joint(x, *params), dim=1).mean()), params


def fit_gaussian_mixture(
    x: Tensor,
    components: int,
    *,
    restarts: int = 1,
    iterations: int = 100,
    tol: float = 1e-4,
    reg: float = 1e-6,
    seed: int = 0,
) -> tuple[Tensor, Tensor, Tensor]:
    """Maximum-likelihood Gaussian mixture with full covariances, by k-means then EM.

    ``x`` is ``(n, width)``; returns ``(weights (k,), means (k, width), covariances
    (k, width, width))`` in float64. EM stops when the mean log-likelihood gains less than
    ``tol`` nats in an iteration; of ``restarts`` runs from different k-means starts the
    most likely is kept. ``reg`` is added to every covariance's diagonal.
    """
    if not 1 <= components <= len(x):
        raise ValueError(f"need 1 <= components <= points, got {components} and {len(x)} points")
    x = x.detach().double()
    runs = [_em(x, components, iterations, tol, reg, seed + i) for i in range(restarts)]
    return max(runs, key=lambda run: run[0])[1]


class GaussianMixture(torch.nn.Module):
    """A mixture of ``components`` full-covariance Gaussians over vectors of ``width``.

    Parameters: mixture ``logits`` ``(k,)``, ``means`` ``(k, width)`` and the Cholesky
    factor of each covariance as ``log_diagonal`` ``(k, width)`` and ``lower``
    (strictly lower part of ``(k, width, width)``), so every value is a valid mixture.
    ``sample(n)`` gives ``(n, width)``; ``log_prob(z)`` gives ``(batch,)`` in nats, in
    the dtype of ``z``. Starts as ``components`` unit Gaussians at random means; the
    ``initialized`` buffer records a fit by ``initialize_mixture``.

    Args:
        width: The number of dimensions.
        components: The number of Gaussians ``k``.

    Raises:
        ValueError: If ``width`` or ``components`` is below 1.

    Example:
        A flow on a mixture base, the mixture fitted by EM before training:

        >>> import torch
        >>> from flowforge import NormalizingFlow, Translate
        >>> from flowforge.distributions import GaussianMixture, initialize_mixture
        >>> _ = torch.manual_seed(0)
        >>> model = NormalizingFlow(GaussianMixture(2, components=2), Translate(0.0))
        >>> data = torch.cat([torch.randn(200, 2) - 3, torch.randn(200, 2) + 3])
        >>> initialize_mixture(model, data)  # whether it fitted one
        True
        >>> model.base_distribution.means.detach().abs().round().sort(dim=0).values
        tensor([[3., 3.],
                [3., 3.]])
        >>> model.log_prob(data).shape, model.sample(5).shape
        (torch.Size([400]), torch.Size([5, 2]))
    """

    def __init__(self, width: int, components: int = 16) -> None:
        super().__init__()
        if width < 1 or components < 1:
            raise ValueError(f"need width >= 1 and components >= 1, got {width}, {components}")
        self.width, self.components = width, components
        self.logits = torch.nn.Parameter(torch.zeros(components))
        self.means = torch.nn.Parameter(torch.randn(components, width))
        self.log_diagonal = torch.nn.Parameter(torch.zeros(components, width))
        self.lower = torch.nn.Parameter(torch.zeros(components, width, width))
        self.register_buffer("initialized", torch.tensor(False))

    def scale_tril(self) -> Tensor:
        """The Cholesky factors of the covariances: ``(k, width, width)``."""
        return self.lower.tril(-1) + torch.diag_embed(self.log_diagonal.exp())

    @torch.no_grad()
    def set_(self, weights: Tensor, means: Tensor, covariances: Tensor) -> None:
        """Take the given mixture (for instance from ``fit_gaussian_mixture``)."""
        tril = torch.linalg.cholesky(covariances.double())
        self.logits.copy_(weights.log())
        self.means.copy_(means)
        self.log_diagonal.copy_(tril.diagonal(dim1=-2, dim2=-1).log())
        self.lower.copy_(tril.tril(-1))
        self.initialized.fill_(True)

    def component_log_prob(self, z: Tensor) -> Tensor:
        """``log w_k + log q_k(z_i)`` for every point and component: ``(batch, k)``."""
        tril = self.scale_tril().to(z.dtype)
        diff = (z[:, None, :] - self.means.to(z.dtype)).unsqueeze(-1)  # (n, k, d, 1)
        white = torch.linalg.solve_triangular(tril.expand(len(z), -1, -1, -1), diff, upper=False)
        kernel = self._log_kernel(white.square().sum(dim=(-2, -1)))
        log_weights = torch.log_softmax(self.logits.to(z.dtype), dim=0)
        return kernel - self.log_diagonal.to(z.dtype).sum(dim=-1) + log_weights

    def _log_kernel(self, q: Tensor) -> Tensor:
        """The log-density of a standard component at squared radius ``q``."""
        return -0.5 * q - 0.5 * self.width * math.log(2 * math.pi)

    def _radius(self, n: int) -> Tensor | None:
        """Each draw's factor on its standard-normal noise, ``(n, 1, 1)`` (``None``: 1)."""
        return None

    def log_prob(self, z: Tensor) -> Tensor:
        return torch.logsumexp(self.component_log_prob(z), dim=-1)

    def sample(self, n: int = 1) -> Tensor:
        which = torch.multinomial(torch.softmax(self.logits.detach(), 0), n, replacement=True)
        noise = torch.randn(n, self.width, 1, dtype=self.means.dtype, device=self.means.device)
        radius = self._radius(n)
        if radius is not None:
            noise = noise * radius
        return self.means[which] + (self.scale_tril()[which] @ noise).squeeze(-1)

    def handwritten(self) -> MixtureGradients | None:
        """The mean NLL of feature-major points and its gradient, written out
        (``flowforge.gradients``), unless hooks or a subclass's own density forbid (its
        ``log_prob``, components or kernel: ``StudentTMixture``'s, say)."""
        density = ("log_prob", "component_log_prob", "_log_kernel")
        own = owns_handwritten(self, *density)
        return None if has_hooks(self) or not own else MixtureGradients(self)

    def extra_repr(self) -> str:
        return f"width={self.width}, components={self.components}"


class StudentTMixture(GaussianMixture):
    """A mixture of ``components`` multivariate Student-t distributions with ``df``
    degrees of freedom, the parameters a ``GaussianMixture``'s (location, the Cholesky
    factor of the scale, weights).

    Its tails fall off as a power, ``|z|^-(df + width)``, where a Gaussian's fall off as
    ``exp(-|z|^2 / 2)``: as a flow's base for importance sampling, draws far out keep
    bounded weights where a target's tails are heavier than a Gaussian's (the tail-adaptive
    flows of Jaini et al., ICML 2020). A component is ``mu + L e sqrt(df / u)`` with ``e``
    standard normal and ``u`` chi-square with ``df`` degrees of freedom; ``set_`` takes
    covariances (for ``df > 2``, the scale is set so that each component has that
    covariance, ``df / (df - 2) L L^T``). ``df`` is fixed (a buffer). Its gradients are
    autograd's (the hand-written ones are the Gaussian mixture's).

    Args:
        width: The number of dimensions.
        components: The number of components ``k``.
        df: Degrees of freedom, positive and finite (a ``GaussianMixture`` is the limit).

    Raises:
        ValueError: If ``width`` or ``components`` is below 1, or ``df`` is not in
            ``(0, inf)``.

    Example:
        >>> import torch
        >>> from flowforge.distributions import StudentTMixture
        >>> t = StudentTMixture(1, components=1, df=3.0)
        >>> _ = t.means.data.zero_()
        >>> reference = torch.distributions.StudentT(3.0)
        >>> z = torch.tensor([[0.0], [2.0], [-30.0]])
        >>> torch.allclose(t.log_prob(z), reference.log_prob(z[:, 0]))
        True
    """

    def __init__(self, width: int, components: int = 16, df: float = 5.0) -> None:
        super().__init__(width, components)
        if not 0 < df < math.inf:
            raise ValueError(f"need 0 < df < inf degrees of freedom, got {df}")
        self.register_buffer("df", torch.tensor(float(df), dtype=torch.float64))

    def _log_kernel(self, q: Tensor) -> Tensor:
        nu, d = float(self.df), self.width
        constant = math.lgamma((nu + d) / 2) - math.lgamma(nu / 2) - d / 2 * math.log(nu * math.pi)
        return constant - (nu + d) / 2 * torch.log1p(q / nu)

    def _radius(self, n: int) -> Tensor:
        nu = self.df.to(self.means.dtype)
        u = torch.distributions.Chi2(nu).sample((n, 1, 1)).to(self.means.device)
        return (nu / u).sqrt()

    @torch.no_grad()
    def set_(self, weights: Tensor, means: Tensor, covariances: Tensor) -> None:
        nu = float(self.df)
        super().set_(weights, means, covariances * ((nu - 2) / nu if nu > 2 else 1.0))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, df={float(self.df):g}"


class MixtureGradients:
    """A ``GaussianMixture``'s mean NLL of feature-major points ``(width, n)``, with its
    gradient by them and by the mixture's parameters, for the hand-written gradients.

    With ``u_k = L_k^{-1} (z - mu_k)`` and responsibilities ``g_k`` (the posterior of
    component ``k``), ``-log q`` has derivative ``sum_k g_k L_k^{-T} u_k`` by ``z``, minus
    that component's share by ``mu_k``, ``w_k - g_k`` by the logits, and
    ``g_k (diag(1 / L_jj) - L_k^{-T} u_k u_k^T)`` by the Cholesky factor ``L_k``.
    """

    def __init__(self, base: GaussianMixture) -> None:
        self.base = base

    def nll(self, z: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """``(mean NLL, d mean NLL / dz)`` of the ``n`` columns of ``z``; adds the
        parameters' gradients to their ``.grad``."""
        base = self.base
        tril = base.scale_tril().detach().to(z.dtype)  # (k, d, d)
        inverse = torch.linalg.solve_triangular(
            tril, torch.eye(base.width, dtype=z.dtype, device=z.device), upper=False
        )
        diff = z.unsqueeze(0) - base.means.detach().to(z.dtype).unsqueeze(-1)  # (k, d, n)
        u = torch.bmm(inverse, diff)
        log_diagonal = base.log_diagonal.detach().to(z.dtype)
        log_weights = torch.log_softmax(base.logits.detach().to(z.dtype), dim=0)
        constant = log_weights - log_diagonal.sum(-1) - 0.5 * base.width * math.log(2 * math.pi)
        joint = constant.unsqueeze(-1) - 0.5 * (u * u).sum(1)  # (k, n)
        log_q = torch.logsumexp(joint, dim=0)
        resp = torch.exp(joint - log_q)  # (k, n), each column sums to 1
        v = torch.bmm(inverse.transpose(1, 2), u * resp.unsqueeze(1))  # g_k L_k^{-T} u_k
        alpha = 1.0 / n
        totals = resp.sum(1)  # (k,)
        if base.logits.requires_grad:
            _add(base.logits, (log_weights.exp() * n - totals) * alpha)
        if base.means.requires_grad:
            _add(base.means, v.sum(-1) * -alpha)
        if base.lower.requires_grad or base.log_diagonal.requires_grad:
            g_tril = torch.diag_embed(totals.unsqueeze(-1) * (-log_diagonal).exp())
            g_tril = (g_tril - torch.bmm(v, u.transpose(1, 2))).mul_(alpha)
            if base.lower.requires_grad:
                _add(base.lower, g_tril.tril(-1))
            if base.log_diagonal.requires_grad:
                _add(base.log_diagonal, g_tril.diagonal(dim1=-2, dim2=-1) * log_diagonal.exp())
        return -log_q.sum() * alpha, v.sum(0).mul_(alpha)


def _add(p: torch.nn.Parameter, g: Tensor) -> None:
    """``p.grad += g`` (made if ``p.grad`` is ``None``)."""
    g = g.to(p.dtype)
    if p.grad is None:
        p.grad = g.contiguous()
    else:
        p.grad.add_(g)


@torch.no_grad()
def initialize_mixture(
    model: torch.nn.Module,
    data: Tensor,
    *context: Tensor,
    seed: int = 0,
    restarts: int = 4,
    max_points: int = 20_000,
) -> bool:
    """Fit ``model``'s uninitialized ``GaussianMixture`` base to the latent image of ``data``.

    Maps ``data`` ``(n, width)`` through ``model.flow.inverse`` (at its current weights,
    in eval mode) and runs ``fit_gaussian_mixture`` there (``restarts`` k-means starts,
    the most likely kept), on a random ``max_points`` of them when there are more.
    Returns whether it fitted one; a base already fitted (a loaded model, say) is left
    alone. Run it once, before training and before wrapping the model in
    DistributedDataParallel.
    """
    base = getattr(model, "base_distribution", None)
    if not isinstance(base, GaussianMixture) or bool(base.initialized):
        return False
    if len(data) > max_points:
        keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
        keep = keep[:max_points].to(data.device)
        data, context = data[keep], tuple(c[keep] for c in context)
    was_training = model.training
    model.eval()
    try:
        z, _ = model.flow.inverse(data, *context)
    finally:
        model.train(was_training)
    base.set_(*fit_gaussian_mixture(z, base.components, restarts=restarts, seed=seed))
    return True
