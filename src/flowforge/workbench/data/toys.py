"""The 2-D toy suite of the FFJORD and neural-spline-flow papers, as seeded generators.

Each set is a ``Mixture`` of ``shapes`` with the parameters of the papers' toy-data code,
in the same original units; every point is an independent draw (the papers' code
spaces the angles of ``circles`` and ``rings`` evenly and splits the points between
components exactly; here angles and components are random, so a data set is an i.i.d.
sample of its true distribution, the limit of theirs):

- ``eight_gaussians``: eight Gaussians of standard deviation ``0.5/1.414``, equally
  likely, centred at angles ``kπ/4`` on the circle of radius ``4/1.414`` (the papers'
  ``scale 4``, then everything divided by 1.414).
- ``checkerboard``: uniform on the eight 2×2 squares ``[a, a+2] × [b, b+2]`` with
  ``a, b ∈ {−4, −2, 0, 2}`` and ``a + b`` divisible by 4, the dark squares of a 4×4
  board on ``[−4, 4]²``: density ``1/32``, entropy ``log 32`` nats (original units).
- ``circles``: scikit-learn's ``make_circles(factor=0.5, noise=0.08)`` times 3: circles
  of radius 3 and 1.5 (one half of the points each) blurred by ``N(0, 0.24² I)``.
- ``pinwheel``: five curved arms (``PinwheelArm`` at angles ``2πk/5``), equally likely.
- ``two_spirals``: two interleaved spirals (``SpiralArm`` with signs ±1), equally likely.
- ``rings``: four concentric circles of radius 3, 2.25, 1.5 and 0.75, equally likely,
  blurred by ``N(0, 0.08² I)``.
- ``swiss_roll``: scikit-learn's ``make_swiss_roll(noise=1.0)`` seen along its axis
  (``x`` and ``z``), divided by 5 (``SwissRoll``).

The Gaussians, the checkerboard, the circles and the rings have exact densities
(``shapes``); the pinwheel, the spirals and the swiss roll are sampled only. Labels
are each point's component (a Gaussian, a square, a circle, an arm; 0 for the roll).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.workbench.data.points import PointData, split_seeds, standardized
from flowforge.workbench.data.shapes import (
    Gaussian,
    Mixture,
    NoisyCircle,
    PinwheelArm,
    SpiralArm,
    Square,
    SwissRoll,
)
from flowforge.workbench.data.standardize import Standardization
from flowforge.workbench.data.true_distribution import TrueDistribution


@dataclass(frozen=True)
class Toy:
    """A toy set: its name, its distribution in original units, and ``detail``, the width
    of its finest feature in original units (the noise's standard deviation; for the
    checkerboard, which has none, an eighth of a square's side)."""

    name: str
    shape: Mixture
    detail: float


def _eight_gaussians() -> Mixture:
    radius, std = 4 / 1.414, 0.5 / 1.414
    angles = [k * math.pi / 4 for k in range(8)]
    centres = [(radius * math.cos(a), radius * math.sin(a)) for a in angles]
    return Mixture(tuple(Gaussian(c, std) for c in centres))


def _checkerboard() -> Mixture:
    corners = [(a, b) for a in (-4, -2, 0, 2) for b in (-4, -2, 0, 2) if (a + b) % 4 == 0]
    return Mixture(tuple(Square((float(a), float(b)), 2.0) for a, b in corners))


def _rings(radii: tuple[float, ...], noise: float) -> Mixture:
    return Mixture(tuple(NoisyCircle(r, noise) for r in radii))


TOYS: dict[str, Toy] = {
    toy.name: toy
    for toy in (
        Toy("eight_gaussians", _eight_gaussians(), 0.5 / 1.414),
        Toy("checkerboard", _checkerboard(), 0.25),
        Toy("circles", _rings((3.0, 1.5), 0.24), 0.24),
        Toy("pinwheel", Mixture(tuple(PinwheelArm(2 * math.pi * k / 5) for k in range(5))), 0.2),
        Toy("two_spirals", Mixture((SpiralArm(1.0), SpiralArm(-1.0))), 0.1),
        Toy("rings", _rings((3.0, 2.25, 1.5, 0.75), 0.08), 0.08),
        Toy("swiss_roll", Mixture((SwissRoll(),)), 0.2),
    )
}


def toy(name: str) -> Toy:
    """The toy set called ``name``; ``ValueError`` naming the known ones otherwise."""
    try:
        return TOYS[name]
    except KeyError:
        raise ValueError(f"unknown toy data set {name!r}; known: {', '.join(TOYS)}") from None


@dataclass(frozen=True)
class ToyDistribution(TrueDistribution):
    """A toy set's true distribution, in model units when ``standardization`` is set."""

    toy: Toy
    standardization: Standardization | None = None

    def __post_init__(self) -> None:
        self.check_standardization()

    @property
    def has_density(self) -> bool:  # type: ignore[override]
        return self.toy.shape.has_density

    @property
    def detail(self) -> float:
        return self.toy.detail

    def no_density_message(self) -> str:
        return f"{self.toy.name} has no closed-form density here: no entropy, gap or KL"

    def original_sample(self, n: int, generator: torch.Generator) -> Tensor:
        return self.toy.shape.sample(n, generator)

    def original_log_prob(self, x: Tensor) -> Tensor:
        return self.toy.shape.log_prob(x)


def toy_data(
    name: str,
    n_samples: int = 100_000,
    *,
    seed: int | None = None,
    standardization: Standardization | None = None,
    dtype: torch.dtype = torch.float32,
) -> PointData:
    """``n_samples`` points of the toy set ``name``, standardized (with ``standardization``
    when given, else with their own statistics), labelled by component; seeded."""
    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    g = torch.Generator().manual_seed(seed if seed is not None else torch.seed())
    raw, labels = toy(name).shape.draw(n_samples, g)
    return standardized(raw, labels, standardization, dtype)


def toy_splits(
    name: str, n_samples: int = 100_000, n_heldout: int = 20_000, seed: int = 0
) -> tuple[PointData, PointData]:
    """A training set of toy ``name`` and an independent held-out set standardized with the
    training statistics."""
    train_seed, heldout_seed = split_seeds(seed)
    train = toy_data(name, n_samples, seed=train_seed)
    heldout = toy_data(name, n_heldout, seed=heldout_seed, standardization=train.standardization)
    return train, heldout
