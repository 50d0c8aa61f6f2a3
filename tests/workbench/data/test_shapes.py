import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from flowforge.workbench.data import NoDensityError
from flowforge.workbench.data.arc_integral import log_half_circle_integral
from flowforge.workbench.data.shapes import (
    EDGE_TOLERANCE,
    Gaussian,
    Mixture,
    NoisyCircle,
    PinwheelArm,
    Square,
)


def points(n: int = 400, spread: float = 4.0, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return spread * (2 * torch.rand(n, 2, generator=g, dtype=torch.float64) - 1)


@pytest.mark.parametrize("radius, noise", [(3.0, 0.08), (1.5, 0.24), (0.75, 0.5)])
def test_noisy_circle_is_the_arc_integral_over_both_halves(radius, noise):
    # p(x) = exp(−(ρ² + r²)/2σ²) / (2πσ²) · (1/2π) ∫₀^{2π} exp(κ cos(t − φ)) dt, κ = ρr/σ²,
    # with the integral as two half circles through the moons' quadrature.
    x = points()
    rho, phi = torch.linalg.vector_norm(x, dim=1), torch.atan2(x[:, 1], x[:, 0])
    kappa = rho * radius / noise**2
    halves = torch.logaddexp(
        log_half_circle_integral(kappa, phi), log_half_circle_integral(kappa, phi - math.pi)
    )
    expected = (
        halves
        - math.log(2 * math.pi)
        - (rho**2 + radius**2) / (2 * noise**2)
        - math.log(2 * math.pi * noise**2)
    )
    torch.testing.assert_close(NoisyCircle(radius, noise).log_prob(x), expected, atol=1e-9, rtol=0)


def test_noisy_circle_matches_a_plain_average_over_angles():
    radius, noise = 2.25, 0.08
    x = points(200, 3.0, seed=1).numpy()
    t = 2 * math.pi * (np.arange(20_000) + 0.5) / 20_000  # midpoints: exact for periodic
    ring = radius * np.stack([np.cos(t), np.sin(t)], 1)
    d2 = ((x[:, None, :] - ring[None]) ** 2).sum(-1)
    log_n = -d2 / (2 * noise**2) - math.log(2 * math.pi * noise**2)
    expected = logsumexp(log_n, axis=1) - math.log(len(t))
    ours = NoisyCircle(radius, noise).log_prob(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-9, rtol=0)


def test_gaussian_is_scipys():
    x = points(50)
    ours = Gaussian((1.0, -2.0), 0.35).log_prob(x).numpy()
    expected = multivariate_normal([1.0, -2.0], 0.35**2 * np.eye(2)).logpdf(x.numpy())
    np.testing.assert_allclose(ours, expected, atol=1e-12, rtol=0)


def test_square_is_uniform_with_a_thin_edge():
    square = Square((-4.0, 0.0), 2.0)
    edge = EDGE_TOLERANCE / 2
    x = torch.tensor(
        [[-3.0, 1.0], [-4.0, 0.0], [-2.0 + edge, 2.0 + edge], [-1.99, 1.0], [-3.0, -0.01]],
        dtype=torch.float64,
    )
    expected = torch.tensor([-math.log(4)] * 3 + [-math.inf] * 2, dtype=torch.float64)
    torch.testing.assert_close(square.log_prob(x), expected, atol=1e-15, rtol=0)
    drawn = square.sample(1000, torch.Generator().manual_seed(0))
    assert bool(torch.isfinite(square.log_prob(drawn)).all())


def test_mixture_density_is_the_weighted_sum():
    parts = (Gaussian((0.0, 0.0), 1.0), NoisyCircle(2.0, 0.3))
    mixture = Mixture(parts, (0.3, 0.7))
    x = points(100)
    expected = torch.log(0.3 * parts[0].log_prob(x).exp() + 0.7 * parts[1].log_prob(x).exp())
    torch.testing.assert_close(mixture.log_prob(x), expected, atol=1e-12, rtol=1e-12)


def test_mixture_draws_each_component_with_its_weight_and_labels_it():
    mixture = Mixture((Gaussian((-5.0, 0.0), 0.1), Gaussian((5.0, 0.0), 0.1)), (0.25, 0.75))
    x, labels = mixture.draw(20_000, torch.Generator().manual_seed(0))
    share = float(labels.double().mean())
    assert abs(share - 0.75) < 4 * math.sqrt(0.75 * 0.25 / 20_000)
    assert bool(((x[:, 0] > 0) == (labels == 1)).all())  # each point from its own component
    again, _ = mixture.draw(20_000, torch.Generator().manual_seed(0))
    assert torch.equal(x, again)


def test_bad_mixtures_and_sampled_only_shapes_are_refused():
    with pytest.raises(ValueError, match="summing to 1"):
        Mixture((Gaussian((0.0, 0.0), 1.0),), (0.5,))
    arms = Mixture((PinwheelArm(0.0), Gaussian((0.0, 0.0), 1.0)))
    assert not arms.has_density
    with pytest.raises(NoDensityError, match="PinwheelArm"):
        arms.log_prob(points(3))
