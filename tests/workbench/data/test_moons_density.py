import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.datasets import make_moons

from flowforge import two_moons
from flowforge.workbench.data import Standardization
from flowforge.workbench.data.moons_density import MoonsDensity, outer_fraction

STD = Standardization((0.5, 0.25), (0.87, 0.5))  # close to the moons' own statistics


def direct_log_density(x: np.ndarray, noise: float, outer: float, panels: int = 1024):
    """log p(x) in original units straight from the definition: for each moon, the
    average over θ of the 2-D Gaussian density around (cos θ, sin θ) or
    (1 − cos θ, 0.5 − sin θ), by composite Gauss–Legendre over θ (no polar coordinates)."""
    u, w = np.polynomial.legendre.leggauss(8)
    edges = np.linspace(0, math.pi, panels + 1)
    theta = (edges[:-1, None] + np.diff(edges)[:, None] * (u + 1) / 2).ravel()
    log_w = np.log(np.tile(w / 2, panels) / panels)  # weights of the mean over θ
    arcs = [
        np.stack([np.cos(theta), np.sin(theta)], 1),
        np.stack([1 - np.cos(theta), 0.5 - np.sin(theta)], 1),
    ]
    terms = []
    for arc, share in zip(arcs, (outer, 1 - outer)):
        d2 = ((x[:, None, :] - arc[None, :, :]) ** 2).sum(-1)
        log_n = -d2 / (2 * noise**2) - math.log(2 * math.pi * noise**2)
        terms.append(math.log(share) + logsumexp(log_n + log_w, axis=1))
    return np.logaddexp(*terms)


@pytest.fixture(scope="module")
def plane():
    """A grid over the standardized plane, the true density on it, and the cell area."""
    h = 0.04  # the trapezoid rule's error on Gaussians of s.d. 0.115 is ~exp(-2π²σ²/h²)
    axis = np.arange(-4.5, 4.5 + h / 2, h)
    xx, yy = np.meshgrid(axis, axis)
    grid = torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1))
    truth = MoonsDensity(0.1, STD)
    return truth, truth.log_prob(grid), h * h


@pytest.mark.parametrize("noise", [0.1, 0.05])
def test_log_density_matches_the_definition(noise):
    rng = np.random.default_rng(0)
    raw, _ = make_moons(200, noise=noise, random_state=1)
    points = np.concatenate([raw, rng.uniform([-2.5, -1.5], [3.5, 2.0], (200, 2))])
    truth = MoonsDensity(noise, STD, outer=0.4)
    ours = truth.log_prob(STD.transform(torch.from_numpy(points))).numpy()
    expected = direct_log_density(points, noise, 0.4) - STD.log_abs_det
    np.testing.assert_allclose(ours, expected, atol=1e-8, rtol=0)


def test_standardization_adds_its_log_jacobian():
    x = torch.from_numpy(make_moons(50, noise=0.1, random_state=2)[0])
    raw = MoonsDensity(0.1).log_prob(x)
    standardized = MoonsDensity(0.1, STD).log_prob(STD.transform(x))
    torch.testing.assert_close(standardized, raw + sum(math.log(s) for s in STD.std))


def test_integrates_to_one_on_a_grid(plane):
    _, log_p, area = plane
    assert float(log_p.exp().sum()) * area == pytest.approx(1.0, abs=1e-6)


def test_entropy_estimate_agrees_with_the_grid_integral(plane):
    truth, log_p, area = plane
    p = log_p.exp()
    grid_entropy = float(-(p * log_p).sum()) * area
    mc = truth.entropy(40_000, seed=3)
    assert 0.001 < mc.stderr < 0.01
    assert abs(mc.mean - grid_entropy) < 4 * mc.stderr


def _bin_probabilities(truth: MoonsDensity, edges: np.ndarray) -> np.ndarray:
    """Each histogram cell's probability under ``truth`` by 4x4 Gauss–Legendre per cell."""
    u, w = np.polynomial.legendre.leggauss(4)
    width = edges[1] - edges[0]
    centres = (edges[:-1, None] + width * (u + 1) / 2).ravel()
    xx, yy = np.meshgrid(centres, centres)
    p = truth.log_prob(torch.from_numpy(np.stack([xx.ravel(), yy.ravel()], 1))).exp().numpy()
    k = len(edges) - 1
    p = p.reshape(k, 4, k, 4) * np.outer(w, w)[None, :, None, :] * (width / 2) ** 2
    return p.sum((1, 3)).T  # (x bins, y bins), as numpy.histogram2d counts


def chi_square_per_dof(points: np.ndarray, truth: MoonsDensity) -> float:
    edges = np.linspace(-2.7, 2.7, 31)
    counts, _, _ = np.histogram2d(points[:, 0], points[:, 1], bins=[edges, edges])
    expected = _bin_probabilities(truth, edges) * len(points)
    keep = expected > 20
    return float(((counts - expected)[keep] ** 2 / expected[keep]).sum() / keep.sum())


def test_histogram_of_sampled_points_agrees():
    truth = MoonsDensity(0.1, STD)
    assert chi_square_per_dof(truth.sample(300_000, seed=4).numpy(), truth) < 1.3


def test_histogram_of_make_moons_agrees_and_a_wrong_noise_does_not():
    # scikit-learn's own points: this checks the geometry, not just our sampler.
    raw, _ = make_moons(300_000, noise=0.1, random_state=5)
    points = STD.transform(raw)
    assert chi_square_per_dof(points, MoonsDensity(0.1, STD)) < 1.3
    assert chi_square_per_dof(points, MoonsDensity(0.105, STD)) > 3  # the test has power


def test_outer_share_follows_make_moons_for_odd_n():
    for n in (7, 100, 1001):
        _, labels = make_moons(n, random_state=0)
        assert outer_fraction(n) == (labels == 0).mean()
    data = two_moons(1001, seed=0)
    truth = MoonsDensity.of(data, 0.1)
    assert truth.outer == 500 / 1001 and truth.standardization == data.standardization


def test_sampler_draws_random_angles_and_a_random_split():
    truth = MoonsDensity(1e-9, outer=0.5)
    outer_counts = []
    for seed in range(5):
        x = truth.sample(2000, seed=seed).numpy()
        on_outer = np.abs(np.hypot(x[:, 0], x[:, 1]) - 1) < 1e-6
        outer_counts.append(int(on_outer.sum()))
        gaps = np.diff(np.sort(np.arctan2(x[on_outer, 1], x[on_outer, 0])))
        assert gaps.std() > 0.5 * gaps.mean()  # evenly spaced angles would have std 0
    assert len(set(outer_counts)) > 1 and outer_counts != [1000] * 5
    assert torch.equal(truth.sample(10, seed=1), truth.sample(10, seed=1))


def test_the_truth_beats_fitted_models_on_heldout_data():
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import KernelDensity

    train = two_moons(5000, seed=6)
    heldout = two_moons(2000, seed=7, standardization=train.standardization).points.double()
    truth_nll = -float(MoonsDensity.of(train, 0.1).log_prob(heldout).mean())
    x = train.points.double().numpy()
    for model in (GaussianMixture(12, random_state=0).fit(x), KernelDensity(bandwidth=0.06).fit(x)):
        assert truth_nll < -float(model.score_samples(heldout.numpy()).mean())


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="noise must be positive"):
        MoonsDensity(0.0)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        MoonsDensity(0.1, outer=1.5)
    with pytest.raises(ValueError, match=r"shape \(n, 2\)"):
        MoonsDensity(0.1).log_prob(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="width 3"):
        MoonsDensity(0.1, Standardization((0.0,) * 3, (1.0,) * 3))
