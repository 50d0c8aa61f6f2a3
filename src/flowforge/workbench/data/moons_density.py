"""The true distribution of the noisy two-moons data: exact log-density, sampler, entropy.

scikit-learn's ``make_moons(n, noise)`` puts ``n // 2`` points on the outer half circle
``(cos θ, sin θ)`` and the other ``n − n // 2`` on the inner one
``(1 − cos θ, 0.5 − sin θ)``, ``θ ∈ [0, π]``, then adds ``N(0, noise² I)``. As
``n`` grows the angles fill ``[0, π]`` uniformly, so the data's density is

    p(x) = Σ_m w_m (1/π) ∫₀^π N(x; c_m(θ), noise² I) dθ,

a one-dimensional integral per moon (``arc_integral``). ``MoonsDensity`` evaluates it
in the standardized units the models see, including the standardization's
log-Jacobian, and draws from it with random angles and a random split between the
moons (``make_moons`` spaces its angles evenly and splits exactly, which is not a
sample of this distribution).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.workbench.data.arc_integral import NODES, log_peak_integral
from flowforge.workbench.data.points import PointData
from flowforge.workbench.data.standardize import Standardization
from flowforge.workbench.data.true_distribution import TrueDistribution

# Each moon as (centre, orientation): the point at angle θ of the arc is
# centre + orientation * (cos θ, sin θ). The inner moon is the outer one turned by π.
MOONS = (((0.0, 0.0), 1.0), ((1.0, 0.5), -1.0))


def outer_fraction(n_samples: int) -> float:
    """The share of ``make_moons(n_samples)`` points on the outer moon: ``(n // 2) / n``."""
    if n_samples < 1:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    return (n_samples // 2) / n_samples


@dataclass(frozen=True)
class MoonsDensity(TrueDistribution):
    """The noisy two-moons distribution, in standardized units when ``standardization`` is set.

    ``noise`` is the Gaussian noise's standard deviation in the original units (> 0);
    ``outer`` the probability of the outer moon (``make_moons`` uses ``(n // 2) / n``,
    see ``outer_fraction``). ``log_prob``, ``sample`` and ``entropy`` (model units, nats)
    come from ``TrueDistribution``.
    """

    noise: float = 0.1
    standardization: Standardization | None = None
    outer: float = 0.5
    nodes: int = NODES

    def __post_init__(self) -> None:
        if not (self.noise > 0 and math.isfinite(self.noise)):
            raise ValueError(
                f"noise must be positive and finite, got {self.noise}: without noise the "
                "moons are curves and have no density in the plane"
            )
        if not 0 <= self.outer <= 1:
            raise ValueError(
                f"outer (the outer moon's probability) must be in [0, 1], got {self.outer}"
            )
        self.check_standardization()

    @classmethod
    def of(cls, data: PointData, noise: float) -> MoonsDensity:
        """The distribution ``data`` (from ``two_moons(..., noise)``) was drawn from."""
        return cls(noise, data.standardization, outer_fraction(len(data)))

    @property
    def detail(self) -> float:
        """The noise's standard deviation (original units): the thickness of a moon."""
        return self.noise

    def _moon_log_prob(self, x: Tensor, centre: tuple[float, float], turn: float) -> Tensor:
        """``log (1/π) ∫ N(x; c(θ), noise² I) dθ`` for one moon; ``x`` is ``(n, 2)`` original."""
        rel = (x - torch.tensor(centre, dtype=x.dtype)) * turn
        rho = torch.linalg.vector_norm(rel, dim=1)
        phi = torch.atan2(rel[:, 1], rel[:, 0])
        var = self.noise**2
        log_j, delta = log_peak_integral(rho / var, phi, self.nodes)
        # |x − c(θ)|² = ρ² + 1 − 2ρ cos(θ − φ); at the nearest point of the arc that is
        # (ρ − 1)² + 4ρ sin²(δ/2), the squared distance from x to the arc.
        nearest = (rho - 1) ** 2 + 4 * rho * torch.sin(delta / 2) ** 2
        return log_j - nearest / (2 * var) - math.log(2 * math.pi * var) - math.log(math.pi)

    def original_log_prob(self, x: Tensor) -> Tensor:
        """Exact log-density of each row of ``x`` (``(n, 2)`` float64, original units), in
        nats; accurate to ~1e-9 nats (see ``arc_integral``)."""
        weights = (self.outer, 1 - self.outer)
        terms = [
            self._moon_log_prob(x, centre, turn) + math.log(w)
            for (centre, turn), w in zip(MOONS, weights)
            if w > 0
        ]
        return torch.logsumexp(torch.stack(terms), 0)

    def original_sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` points in original units, ``(n, 2)`` float64: each picks the outer moon with
        probability ``outer``, an angle uniform in ``[0, π]`` and its own noise."""
        inner = torch.rand(n, generator=generator, dtype=torch.float64) >= self.outer
        theta = math.pi * torch.rand(n, generator=generator, dtype=torch.float64)
        arc = torch.stack([torch.cos(theta), torch.sin(theta)], 1)
        centre = torch.tensor(MOONS[1][0], dtype=torch.float64)
        arc = torch.where(inner[:, None], centre - arc, arc)
        return arc + self.noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)
