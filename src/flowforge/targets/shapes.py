"""A banana, Neal's funnel (2-D and 10-D) and FAB's 40-mode Gaussian mixture."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.targets.base import IsotropicMixture, Target


class Banana(Target):
    """A Gaussian bent into a parabola: ``x₀ ~ N(0, 2²)``, ``x₁ | x₀ ~ N(x₀²/4 - 1, ½²)``.

    ``log_prob`` leaves out the Gaussians' constants, so ``log Z = log(2π · 2 · ½)
    = log 2π`` (the bend has unit Jacobian); the quadrature check agrees.

    Example:
        >>> t = Banana()
        >>> abs(t.quadrature() - t.log_normalizer) < 1e-6
        True
    """

    name = "banana"
    dim = 2
    bounds = (torch.tensor([-11.0, -4.0]), torch.tensor([11.0, 32.0]))
    closed_log_normalizer = math.log(2 * math.pi)
    spacing = 0.02

    def _log_prob(self, x: Tensor) -> Tensor:
        x0, x1 = x[:, 0], x[:, 1]
        return -0.5 * (x0 / 2) ** 2 - 0.5 * ((x1 - x0**2 / 4 + 1) / 0.5) ** 2

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        x0 = 2 * z[:, 0]
        return torch.stack([x0, x0**2 / 4 - 1 + 0.5 * z[:, 1]], 1)


class Funnel(Target):
    """Neal's funnel (Neal 2003, "Slice sampling"): ``v ~ N(0, scale²)`` and, given ``v``,
    ``dim - 1`` independent ``xᵢ ~ N(0, eᵛ)``; the point is ``(v, x₁, ...)``.

    ``log_prob`` leaves out the constants, so ``log Z = (dim/2) log 2π + log scale``. The
    marginals are known: ``v``'s is ``N(0, scale²)``, each ``xᵢ``'s a scale mixture with
    standard deviation ``exp(scale²/4)`` (:meth:`marginal_log_prob`). The 2-D ``funnel``
    has half Neal's scale (1.5) so that its neck is resolved on a grid; ``funnel10`` is
    Neal's (scale 3, ten dimensions). Quadrature (2-D) integrates over ``(v, x e^{-v/2})``,
    where the funnel is a plain Gaussian.

    Example:
        >>> t = Funnel(dim=10, scale=3.0)
        >>> round(t.log_normalizer, 4), [round(s, 3) for s in t.marginal_std()[:2].tolist()]
        (10.288, [3.0, 9.488])
    """

    def __init__(self, dim: int = 2, scale: float = 1.5) -> None:
        self.dim, self.scale = dim, scale
        self.name = "funnel" if dim == 2 else f"funnel{dim}"
        self.closed_log_normalizer = dim / 2 * math.log(2 * math.pi) + math.log(scale)
        width = 3 * math.exp(2 * scale)
        self.bounds = (
            torch.tensor([-4 * scale] + [-width] * (dim - 1)),
            torch.tensor([4 * scale] + [width] * (dim - 1)),
        )
        self.spacing = 0.02

    def _log_prob(self, x: Tensor) -> Tensor:
        v, rest = x[:, 0], x[:, 1:]
        inner = -0.5 * (rest**2).sum(1) * torch.exp(-v) - (self.dim - 1) / 2 * v
        return -0.5 * (v / self.scale) ** 2 + inner

    def quadrature_box(self) -> tuple[Tensor, Tensor]:
        s = 8 * self.scale
        return torch.tensor([-s, -8.0]), torch.tensor([s, 8.0])

    def quadrature_transform(self):
        def to_x(u: Tensor) -> tuple[Tensor, Tensor]:
            half = 0.5 * u[:, 0]
            return torch.stack([u[:, 0], u[:, 1] * half.exp()], 1), half

        return to_x

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        z = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        v = self.scale * z[:, :1]
        return torch.cat([v, z[:, 1:] * (0.5 * v).exp()], 1)

    def marginal_std(self) -> Tensor:
        """The standard deviation of each coordinate: ``scale`` for ``v``, ``exp(scale²/4)``."""
        rest = [math.exp(self.scale**2 / 4)] * (self.dim - 1)
        return torch.tensor([self.scale] + rest, dtype=torch.float64)

    def marginal_log_prob(self, t: Tensor, i: int) -> Tensor:
        """The normalized log-density of coordinate ``i`` at the values ``t`` (shape ``(m,)``).

        ``v``'s (``i = 0``) in closed form; an ``xᵢ``'s is ``∫ N(t; 0, eᵛ) N(v; 0, scale²) dv``
        by the trapezoid rule over ``v`` in ``±12 scale`` (4001 nodes).
        """
        t = torch.as_tensor(t, dtype=torch.float64)
        gauss = -0.5 * math.log(2 * math.pi)
        if i == 0:
            return gauss - math.log(self.scale) - 0.5 * (t / self.scale) ** 2
        v = torch.linspace(-12 * self.scale, 12 * self.scale, 4001, dtype=torch.float64)
        log_v = gauss - math.log(self.scale) - 0.5 * (v / self.scale) ** 2 + math.log(v[1] - v[0])
        log_v[[0, -1]] -= math.log(2)  # the trapezoid's end weights
        parts = []
        for chunk in t.split(1024):
            log_x = gauss - 0.5 * v - 0.5 * chunk[:, None] ** 2 * torch.exp(-v)
            parts.append(torch.logsumexp(log_v + log_x, 1))
        return torch.cat(parts) if parts else t.clone()


class GMM40(IsotropicMixture):
    """FAB's 40-mode mixture (Midgley et al., ICLR 2023, "Flow annealed importance
    sampling bootstrap"), normalized (``log Z = 0``).

    FAB's recipe: ``torch.manual_seed(0)``, means ``(torch.rand(40, 2) - 0.5) * 2 * 40``
    (uniform in ``[-40, 40]²``), equal weights, each component ``N(mean, s² I)`` with
    ``s = softplus(1) ≈ 1.313`` (FAB's ``log_var_scaling = 1`` enters through a softplus
    as the scale). The means are drawn from a generator seeded 0, the same stream.

    Example:
        >>> t = GMM40()
        >>> t.modes.shape, [round(v, 4) for v in t.modes[0].tolist()]
        (torch.Size([40, 2]), [-0.2995, 21.4577])
    """

    name = "gmm40"
    dim = 2
    bounds = (torch.tensor([-50.0, -50.0]), torch.tensor([50.0, 50.0]))
    spacing = 0.2

    def __init__(self, n_modes: int = 40, loc_scaling: float = 40.0, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.modes = ((torch.rand(n_modes, 2, generator=g) - 0.5) * 2 * loc_scaling).double()
        self.scale = float(F.softplus(torch.tensor(1.0, dtype=torch.float64)))
