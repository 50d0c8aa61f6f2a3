import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from flowforge.workbench.data import (
    TOYS,
    NoDensityError,
    Standardization,
    ToyDistribution,
    toy_data,
)
from flowforge.workbench.data.shapes import Gaussian, Mixture, NoisyCircle, Square
from flowforge.workbench.data.toys import Toy, toy_splits
from tests.workbench.data.toy_reference import REFERENCES

WITH_DENSITY = ["eight_gaussians", "checkerboard", "circles", "rings"]
SAMPLED_ONLY = ["pinwheel", "two_spirals", "swiss_roll"]
EDGES = np.linspace(-4.0, 4.0, 33)  # bins of 0.25, aligned with the checkerboard's squares


def truth(name: str, standardization: Standardization | None = None) -> ToyDistribution:
    return ToyDistribution(TOYS[name], standardization)


def reference_points(name: str, n: int, seed: int) -> np.ndarray:
    return REFERENCES[name](n, np.random.default_rng(seed))


def our_points(name: str, n: int, seed: int) -> np.ndarray:
    return truth(name).sample(n, seed).numpy()


# Wrong parameters, 5 % off: where a component sits (the Gaussians' circle, a square's
# size, a ring's radius), and how wide it is (a standard deviation, a side).
PLACE = {
    Gaussian: lambda g: replace(g, centre=tuple(1.05 * c for c in g.centre)),
    Square: lambda s: replace(s, side=1.05 * s.side),
    NoisyCircle: lambda c: replace(c, radius=1.05 * c.radius),
}
WIDTH = {
    Gaussian: lambda g: replace(g, std=1.05 * g.std),
    Square: lambda s: replace(s, side=1.05 * s.side),
    NoisyCircle: lambda c: replace(c, noise=1.05 * c.noise),
}


def altered(name: str, change: dict) -> ToyDistribution:
    """The toy's truth with every component changed by ``change[type(component)]``."""
    shape = TOYS[name].shape
    parts = tuple(change[type(c)](c) for c in shape.components)
    return ToyDistribution(Toy(name, Mixture(parts, shape.weights), TOYS[name].detail))


@pytest.fixture(scope="module", params=WITH_DENSITY)
def grid(request):
    """A toy with a density, on a midpoint grid over [−6, 6]² (original units)."""
    h = 0.025  # cell edges fall on the checkerboard's edges; Gaussians of s.d. 0.08 are smooth
    axis = np.arange(-6 + h / 2, 6, h)
    xx, yy = np.meshgrid(axis, axis)
    x = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1))
    return request.param, truth(request.param).log_prob(x), h * h


def test_every_density_integrates_to_one(grid):
    _, log_p, area = grid
    assert float(log_p.exp().sum()) * area == pytest.approx(1.0, abs=1e-6)


def test_monte_carlo_entropy_agrees_with_the_grid(grid):
    name, log_p, area = grid
    p = log_p.exp()
    on_grid = float(-(p * torch.where(p > 0, log_p, 0.0)).sum()) * area
    mc = truth(name).entropy(40_000, seed=3)
    assert abs(mc.mean - on_grid) < 4 * mc.stderr + 1e-9


def _cell_probabilities(density: ToyDistribution) -> np.ndarray:
    """Each histogram cell's probability by 6×6 Gauss–Legendre (exact on the squares)."""
    u, w = np.polynomial.legendre.leggauss(6)
    width = EDGES[1] - EDGES[0]
    centres = (EDGES[:-1, None] + width * (u + 1) / 2).ravel()
    xx, yy = np.meshgrid(centres, centres)
    p = density.log_prob(torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1))).exp().numpy()
    k = len(EDGES) - 1
    p = p.reshape(k, 6, k, 6) * np.outer(w, w)[None, :, None, :] * (width / 2) ** 2
    return p.sum((1, 3)).T  # (x bins, y bins), as numpy.histogram2d counts


def chi_square_per_dof(points: np.ndarray, density: ToyDistribution) -> float:
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=[EDGES, EDGES])
    expected = _cell_probabilities(density) * len(points)
    keep = expected > 20
    return float(((counts - expected)[keep] ** 2 / expected[keep]).sum() / keep.sum())


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_the_papers_points_and_ours_fit_the_density_and_a_misplaced_one_does_not(name):
    # The reference draws the set as the papers' code does: this checks the geometry and
    # the parameters, not only that our sampler and our density agree with each other.
    reference = reference_points(name, 200_000, seed=1)
    assert chi_square_per_dof(reference, truth(name)) < 1.3
    assert chi_square_per_dof(our_points(name, 200_000, seed=2), truth(name)) < 1.3
    assert chi_square_per_dof(reference, altered(name, PLACE)) > 3


@pytest.mark.parametrize("name", WITH_DENSITY)
def test_the_papers_points_score_the_entropy_and_a_wider_density_does_not(name):
    # E[−log p(X)] = H(p) for X ~ p: sensitive to widths a histogram of 0.25 bins blurs
    # (the rings' noise is 0.08). The papers' points are evenly spaced in angle for the
    # rings and circles, so their average is at least as close as an i.i.d. sample's.
    reference = torch.from_numpy(reference_points(name, 100_000, seed=6))
    for density, close in ((truth(name), True), (altered(name, WIDTH), False)):
        nll = -density.log_prob(reference)
        entropy = density.entropy(100_000, seed=7)
        stderr = math.hypot(float(nll.std()) / math.sqrt(len(nll)), entropy.stderr)
        assert (abs(float(nll.mean()) - entropy.mean) < 4 * stderr + 1e-9) == close, density


def two_sample_chi_square(a: np.ndarray, b: np.ndarray) -> float:
    """Per degree of freedom, for two equal-sized samples over the same bins."""
    ca, _, _ = np.histogram2d(a[:, 0], a[:, 1], bins=[EDGES, EDGES])
    cb, _, _ = np.histogram2d(b[:, 0], b[:, 1], bins=[EDGES, EDGES])
    keep = ca + cb > 40
    return float(((ca - cb)[keep] ** 2 / (ca + cb)[keep]).sum() / keep.sum())


PERTURBED = {
    "pinwheel": lambda arm: replace(arm, rate=0.3),
    "two_spirals": lambda arm: replace(arm, noise=0.12),
    "swiss_roll": lambda roll: replace(roll, noise=1.15),
}


@pytest.mark.parametrize("name", SAMPLED_ONLY)
def test_sampled_sets_match_the_papers_generators_and_a_changed_one_does_not(name):
    reference = reference_points(name, 100_000, seed=4)
    assert two_sample_chi_square(our_points(name, 100_000, seed=5), reference) < 1.3
    shape = TOYS[name].shape
    changed = Mixture(tuple(PERTURBED[name](c) for c in shape.components))
    other = changed.sample(100_000, torch.Generator().manual_seed(5)).numpy()
    assert two_sample_chi_square(other, reference) > 3


def test_checkerboard_entropy_is_log_32_and_standardization_shifts_it():
    assert truth("checkerboard").entropy(1000).mean == pytest.approx(math.log(32), abs=1e-12)
    train, _ = toy_splits("checkerboard", 5000, 10, seed=0)
    std = train.standardization
    h = truth("checkerboard", std).entropy(1000)
    assert h.mean == pytest.approx(math.log(32) - sum(math.log(s) for s in std.std), abs=1e-12)
    assert h.stderr < 1e-12  # log p is the same everywhere on the support
    assert math.log(32) == pytest.approx(3.4657, abs=1e-4)


def test_model_units_add_the_standardizations_log_jacobian():
    std = Standardization((0.3, -0.2), (1.7, 1.4))
    x = truth("rings").sample(100, seed=0)
    model_units = truth("rings", std).log_prob(std.transform(x))
    torch.testing.assert_close(model_units, truth("rings").log_prob(x) + math.log(1.7 * 1.4))


def test_heldout_points_rounded_to_float32_keep_a_finite_truth():
    train, heldout = toy_splits("checkerboard", 20_000, 20_000, seed=0)
    assert heldout.points.dtype == torch.float32
    log_p = truth("checkerboard", train.standardization).log_prob(heldout.points)
    assert bool(torch.isfinite(log_p).all())


def test_splits_are_seeded_and_standardized_with_the_training_statistics():
    train, heldout = toy_splits("pinwheel", 3000, 1000, seed=7)
    again, _ = toy_splits("pinwheel", 3000, 1000, seed=7)
    assert torch.equal(train.points, again.points)
    assert heldout.standardization == train.standardization
    torch.testing.assert_close(
        train.points.double().mean(0), torch.zeros(2).double(), atol=1e-6, rtol=0
    )
    assert not torch.equal(train.points[:1000], heldout.points)
    assert not torch.equal(train.points, toy_splits("pinwheel", 3000, 1000, seed=8)[0].points)


def test_labels_are_the_components():
    data = toy_data("rings", 4000, seed=0)
    radius = torch.linalg.vector_norm(data.original_points.double(), dim=1)
    for label, ring in enumerate((3.0, 2.25, 1.5, 0.75)):
        assert abs(float(radius[data.labels == label].mean()) - ring) < 0.02
    assert set(toy_data("swiss_roll", 100, seed=0).labels.tolist()) == {0}


@pytest.mark.parametrize("name", SAMPLED_ONLY)
def test_sets_without_a_density_say_so(name):
    t = truth(name)
    assert not t.has_density
    with pytest.raises(NoDensityError, match=f"{name} has no closed-form density"):
        t.log_prob(torch.zeros(3, 2))
    with pytest.raises(NoDensityError):
        t.entropy(10)
    assert t.sample(5, seed=0).shape == (5, 2)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="unknown toy data set 'moons'; known: eight_gaussians"):
        toy_data("moons", 10)
    with pytest.raises(ValueError, match="at least 2"):
        toy_data("rings", 1)
    with pytest.raises(ValueError, match="width 3"):
        ToyDistribution(TOYS["rings"], Standardization((0.0,) * 3, (1.0,) * 3))
