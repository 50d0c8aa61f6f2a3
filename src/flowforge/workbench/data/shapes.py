"""The pieces the toy data sets are made of: 2-D distributions in the data's original units.

Every shape draws ``(n, 2)`` float64 points from a ``torch.Generator``; the Gaussian, the
noisy circle and the square also give their exact log-density in nats (``has_density``);
the pinwheel arm, the spiral arm and the swiss roll are samplers only. ``Mixture``
picks a component per point and labels each point with it.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import Tensor

from flowforge.workbench.data.true_distribution import NoDensityError

F64 = torch.float64
# A point this close to a square (original units) counts as inside it: held-out points
# are stored in float32, whose rounding (about 5e-7 here) can carry a point just across
# an edge. The band adds at most 2e-6 to the total mass.
EDGE_TOLERANCE = 1e-6


def _uniform(generator: torch.Generator, *shape: int) -> Tensor:
    return torch.rand(*shape, generator=generator, dtype=F64)


def _normal(n: int, generator: torch.Generator) -> Tensor:
    return torch.randn(n, 2, generator=generator, dtype=F64)


def _turn(x: Tensor, angle: Tensor) -> Tensor:
    """Each row of ``x`` (``(n, 2)``) turned anticlockwise by its ``angle`` (``(n,)``, radians)."""
    c, s = torch.cos(angle), torch.sin(angle)
    return torch.stack([c * x[:, 0] - s * x[:, 1], s * x[:, 0] + c * x[:, 1]], 1)


class Shape(ABC):
    """A distribution over the plane in original units; ``log_prob`` where ``has_density``."""

    has_density: ClassVar[bool] = True

    @abstractmethod
    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        """``n`` points, ``(n, 2)`` float64."""

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density in nats of each row of ``x`` (``(n, 2)`` float64): ``(n,)``."""
        raise NoDensityError(f"{type(self).__name__} has no closed-form density in flowforge")


@dataclass(frozen=True)
class Gaussian(Shape):
    """``N(centre, std² I)``."""

    centre: tuple[float, float]
    std: float

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.tensor(self.centre, dtype=F64) + self.std * _normal(n, generator)

    def log_prob(self, x: Tensor) -> Tensor:
        d2 = (x - torch.tensor(self.centre, dtype=x.dtype)).square().sum(1)
        return -d2 / (2 * self.std**2) - math.log(2 * math.pi * self.std**2)


@dataclass(frozen=True)
class NoisyCircle(Shape):
    """A point at a uniform angle on the circle of ``radius`` around the origin, plus
    ``N(0, noise² I)``.

    The density averages ``N(x; r (cos t, sin t), σ² I)`` over ``t ∈ [0, 2π)``: the moons'
    arc integral over a whole circle, which has a closed form (``ρ = |x|``):

        p(x) = exp(−(ρ − r)² / 2σ²) · I0e(ρ r / σ²) / (2π σ²),

    with ``I0e(κ) = e^{−κ} I₀(κ)``, the exponentially scaled modified Bessel function, so
    nothing overflows however far out or however thin the ring.
    """

    radius: float
    noise: float

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        t = 2 * math.pi * _uniform(generator, n)
        ring = self.radius * torch.stack([torch.cos(t), torch.sin(t)], 1)
        return ring + self.noise * _normal(n, generator)

    def log_prob(self, x: Tensor) -> Tensor:
        rho = torch.linalg.vector_norm(x, dim=1)
        var = self.noise**2
        bessel = torch.log(torch.special.i0e(rho * self.radius / var))
        return bessel - (rho - self.radius) ** 2 / (2 * var) - math.log(2 * math.pi * var)


@dataclass(frozen=True)
class Square(Shape):
    """Uniform on the square ``[corner, corner + side]²`` (``EDGE_TOLERANCE`` wide edges)."""

    corner: tuple[float, float]
    side: float

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return torch.tensor(self.corner, dtype=F64) + self.side * _uniform(generator, n, 2)

    def log_prob(self, x: Tensor) -> Tensor:
        low = torch.tensor(self.corner, dtype=x.dtype) - EDGE_TOLERANCE
        inside = ((x >= low) & (x <= low + self.side + 2 * EDGE_TOLERANCE)).all(1)
        density = torch.full_like(x[:, 0], -2 * math.log(self.side))
        return density.masked_fill_(~inside, -math.inf)


@dataclass(frozen=True)
class PinwheelArm(Shape):
    """One arm of the pinwheel: ``f ~ N((1, 0), diag(radial², tangential²))`` turned
    clockwise by ``angle + rate · exp(f₀)`` and scaled by ``scale``, so the arm bends
    further the further out its points lie. No density is provided (the bending map
    folds the plane onto itself)."""

    has_density: ClassVar[bool] = False
    angle: float
    radial: float = 0.3
    tangential: float = 0.1
    rate: float = 0.25
    scale: float = 2.0

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        f = _normal(n, generator) * torch.tensor([self.radial, self.tangential], dtype=F64)
        f[:, 0] += 1.0
        return self.scale * _turn(f, -(self.angle + self.rate * torch.exp(f[:, 0])))


@dataclass(frozen=True)
class SpiralArm(Shape):
    """One arm of the two spirals: ``t = √u · turn`` (``u`` uniform, so the points thin out
    along the arm), the point ``(−t cos t, t sin t)`` plus a jitter uniform on
    ``[0, jitter)²``, times ``sign · scale``, plus ``N(0, noise² I)``. No density is
    provided."""

    has_density: ClassVar[bool] = False
    sign: float
    turn: float = 3 * math.pi  # 540 degrees
    jitter: float = 0.5
    scale: float = 1 / 3
    noise: float = 0.1

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        t = torch.sqrt(_uniform(generator, n)) * self.turn
        arm = torch.stack([-torch.cos(t) * t, torch.sin(t) * t], 1)
        arm = arm + self.jitter * _uniform(generator, n, 2)
        return self.sign * self.scale * arm + self.noise * _normal(n, generator)


@dataclass(frozen=True)
class SwissRoll(Shape):
    """The swiss roll seen from its side: ``t`` uniform on ``[start, end]``, the point
    ``(t cos t, t sin t)`` plus ``N(0, noise² I)``, all times ``scale``. No density is
    provided."""

    has_density: ClassVar[bool] = False
    start: float = 1.5 * math.pi
    end: float = 4.5 * math.pi
    noise: float = 1.0
    scale: float = 0.2

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        t = self.start + (self.end - self.start) * _uniform(generator, n)
        roll = torch.stack([t * torch.cos(t), t * torch.sin(t)], 1)
        return self.scale * (roll + self.noise * _normal(n, generator))


@dataclass(frozen=True)
class Mixture(Shape):
    """Component ``k`` with probability ``weights[k]`` (equal weights when ``None``)."""

    components: tuple[Shape, ...]
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        w = self.probabilities
        if len(w) != len(self.components) or min(w) < 0 or abs(sum(w) - 1) > 1e-12:
            raise ValueError(
                f"need one non-negative weight per component summing to 1, got {self.weights} "
                f"for {len(self.components)} components"
            )

    @property
    def probabilities(self) -> tuple[float, ...]:
        k = len(self.components)
        return self.weights if self.weights is not None else (1 / k,) * k

    @property
    def has_density(self) -> bool:  # type: ignore[override]
        return all(c.has_density for c in self.components)

    def draw(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` points ``(n, 2)`` float64 and their components' indices ``(n,)`` int64."""
        labels = torch.zeros(n, dtype=torch.int64)
        if n and len(self.components) > 1:
            w = torch.tensor(self.probabilities, dtype=F64)
            labels = torch.multinomial(w, n, replacement=True, generator=generator)
        x = torch.empty(n, 2, dtype=F64)
        for k, component in enumerate(self.components):
            mine = labels == k
            x[mine] = component.sample(int(mine.sum()), generator)
        return x, labels

    def sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.draw(n, generator)[0]

    def log_prob(self, x: Tensor) -> Tensor:
        if not self.has_density:
            sampled = sorted({type(c).__name__ for c in self.components if not c.has_density})
            raise NoDensityError(
                f"this mixture has no closed-form density: {', '.join(sampled)} can only be sampled"
            )
        terms = [
            c.log_prob(x) + math.log(w)
            for c, w in zip(self.components, self.probabilities)
            if w > 0
        ]
        return torch.logsumexp(torch.stack(terms), 0)
