"""normflows' 2-D energies: two moons, a circle of Gaussians, concentric rings.

The same densities as ``normflows.distributions.target`` (``TwoMoons``,
``CircularGaussianMixture``, ``RingMixture``; Stimper et al., JOSS 2023), written
anew, so a benchmark against normflows fits the same functions. Their box is
normflows' rejection-sampling proposal, ``[-3, 3]²`` (``[-3.5, 3.5]²`` for the circle,
whose modes come within four standard deviations of ``±3``).
"""

from __future__ import annotations

import math
from functools import cached_property

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.targets.base import IsotropicMixture, Target

BOX = (torch.tensor([-3.0, -3.0]), torch.tensor([3.0, 3.0]))


class TwoMoons(Target):
    """Two crescent moons on the circle of radius 2, one each side of ``x = 0``.

    ``log p(z) = -½((|z| - 2)/0.2)² + log(exp(-½((z₀ - 2)/0.3)²) + exp(-½((z₀ + 2)/0.3)²))``
    (normflows' ``TwoMoons``). The two moons are mirror images, so each holds half
    the mass; ``log Z`` is by quadrature.

    Example:
        >>> t = TwoMoons()
        >>> round(t.log_normalizer, 4), t.weights.tolist()
        (0.8042, [0.5, 0.5])
    """

    name = "two-moons"
    dim = 2
    bounds = BOX
    modes = torch.tensor([[2.0, 0.0], [-2.0, 0.0]], dtype=torch.float64)
    spacing = 0.005

    def _log_prob(self, x: Tensor) -> Tensor:
        a = x[:, 0].abs()
        radial = -0.5 * ((torch.linalg.vector_norm(x, dim=1) - 2) / 0.2) ** 2
        return radial - 0.5 * ((a - 2) / 0.3) ** 2 + F.softplus(-4 * a / 0.09)

    @property
    def weights(self) -> Tensor:
        return torch.tensor([0.5, 0.5], dtype=torch.float64)

    def assign(self, x: Tensor) -> Tensor:
        """Mode 0 is the right moon (``x₀ ≥ 0``), mode 1 the left one."""
        return (x[:, 0] < 0).long()

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        # max log_prob <= log 2: each Gaussian factor is at most one.
        return self._rejection_sample(n, generator, math.log(2.0))


class CircularMixture(IsotropicMixture):
    """``n_modes`` equal Gaussians on the circle of radius 2, normalized (``log Z = 0``).

    Mode ``i`` is centred at ``(2 sin(2πi/n), 2 cos(2πi/n))`` with standard deviation
    ``(2/3) sin(π/n)`` in each coordinate (normflows' ``CircularGaussianMixture``).

    Example:
        >>> t = CircularMixture()
        >>> t.modes.shape, t.log_normalizer
        (torch.Size([8, 2]), 0.0)
    """

    name = "circular-mixture"
    dim = 2
    bounds = (torch.tensor([-3.5, -3.5]), torch.tensor([3.5, 3.5]))
    spacing = 0.01

    def __init__(self, n_modes: int = 8) -> None:
        angle = 2 * math.pi / n_modes * torch.arange(n_modes, dtype=torch.float64)
        self.modes = torch.stack([2 * angle.sin(), 2 * angle.cos()], 1)
        self.scale = 2 / 3 * math.sin(math.pi / n_modes)


class RingMixture(Target):
    """``n_rings`` concentric rings of radii ``2i/n`` (``i = 1..n``), width ``1/(4n)``.

    ``log p(z) = logsumexp_i(-(|z| - 2i/n)² / (2 (1/(4n))²))`` (normflows'
    ``RingMixture``): the rings have the same radial profile, so a ring's mass grows with
    its radius (the inner of two holds a third). ``modes`` holds a point on each ring,
    ``(2i/n, 0)``; ``assign`` picks the nearest ring; ``weights`` and ``log Z`` are by
    quadrature.

    Example:
        >>> t = RingMixture()
        >>> [round(w, 3) for w in t.weights.tolist()]
        [0.333, 0.667]
    """

    name = "ring-mixture"
    dim = 2
    bounds = BOX
    spacing = 0.005

    def __init__(self, n_rings: int = 2) -> None:
        self.radii = 2.0 / n_rings * torch.arange(1, n_rings + 1, dtype=torch.float64)
        self.scale = 1 / 4 / n_rings
        self.modes = torch.stack([self.radii, torch.zeros_like(self.radii)], 1)

    @cached_property
    def weights(self) -> Tensor:
        return self.quadrature_weights()

    def _log_prob(self, x: Tensor) -> Tensor:
        r = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        return torch.logsumexp(-((r - self.radii.to(x)) ** 2) / (2 * self.scale**2), 1)

    def assign(self, x: Tensor) -> Tensor:
        r = torch.linalg.vector_norm(x.double(), dim=1, keepdim=True)
        return (r - self.radii).abs().argmin(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        # max log_prob <= log(n_rings): each ring's term is at most one.
        return self._rejection_sample(n, generator, math.log(len(self.radii)))
