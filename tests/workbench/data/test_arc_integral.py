import math

import numpy as np
import pytest
import torch

from flowforge.workbench.data.arc_integral import (
    angular_distance_to_arc,
    log_half_circle_integral,
    log_peak_integral,
)


def brute_force(kappa: np.ndarray, phi: np.ndarray, panels: int = 2048) -> np.ndarray:
    """``log ∫₀^π exp(κ cos(t − φ)) dt`` by plain composite Gauss–Legendre (8 nodes per panel)."""
    x, w = np.polynomial.legendre.leggauss(8)
    edges = np.linspace(0, math.pi, panels + 1)
    t = (edges[:-1, None] + np.diff(edges)[:, None] * (x + 1) / 2).ravel()
    weights = np.tile(w / 2, panels) * (math.pi / panels)
    e = kappa[:, None] * np.cos(t[None, :] - phi[:, None])
    top = e.max(1)
    return top + np.log((np.exp(e - top[:, None]) * weights).sum(1))


def test_two_halves_make_the_full_circle_bessel_integral():
    # ∫ over [0, π] plus ∫ over [π, 2π] is 2π I0(κ), for every κ and φ.
    g = torch.Generator().manual_seed(0)
    kappa = torch.cat([torch.tensor([0.0, 1e-9]), torch.logspace(-3, 4, 400, dtype=torch.float64)])
    phi = 20 * (torch.rand(len(kappa), generator=g, dtype=torch.float64) - 0.5)
    both = torch.logaddexp(
        log_half_circle_integral(kappa, phi), log_half_circle_integral(kappa, phi + math.pi)
    )
    exact = math.log(2 * math.pi) + kappa + torch.log(torch.special.i0e(kappa))
    torch.testing.assert_close(both, exact, atol=1e-11, rtol=1e-13)


def test_matches_a_much_finer_plain_quadrature():
    rng = np.random.default_rng(1)
    kappa = np.exp(rng.uniform(np.log(1e-3), np.log(2000.0), 600))
    phi = rng.uniform(-2 * math.pi, 2 * math.pi, 600)
    phi[:6] = [0.0, math.pi, -math.pi, math.pi / 2, -math.pi / 2, 1e-12]
    ours = log_half_circle_integral(torch.from_numpy(kappa), torch.from_numpy(phi)).numpy()
    np.testing.assert_allclose(ours, brute_force(kappa, phi), atol=1e-9, rtol=0)


@pytest.mark.parametrize("phi", [0.3, -0.3, 2.0, -2.5])
def test_fewer_nodes_converge_to_the_default(phi):
    kappa = torch.tensor([5.0, 300.0, 5000.0], dtype=torch.float64)
    phi = torch.full_like(kappa, phi)
    coarse = log_half_circle_integral(kappa, phi, nodes=8)
    fine = log_half_circle_integral(kappa, phi, nodes=64)
    assert not torch.allclose(coarse, fine, atol=1e-9, rtol=0)  # 8 nodes are visibly short
    torch.testing.assert_close(log_half_circle_integral(kappa, phi), fine, atol=1e-11, rtol=0)


def test_special_values_and_symmetry():
    zero = torch.zeros(3, dtype=torch.float64)
    assert torch.allclose(
        log_half_circle_integral(zero, torch.tensor([0.0, 1.0, -2.0]).double()),
        torch.full((3,), math.log(math.pi), dtype=torch.float64),
    )
    kappa = torch.tensor([0.5, 40.0, 900.0], dtype=torch.float64)
    phi = torch.tensor([0.2, 1.1, -0.7], dtype=torch.float64)
    # The arc [0, π] is symmetric about π/2: φ and π − φ see the same integral.
    torch.testing.assert_close(
        log_half_circle_integral(kappa, phi), log_half_circle_integral(kappa, math.pi - phi)
    )


def test_peak_form_is_finite_where_the_plain_value_overflows():
    kappa = torch.tensor([1e6], dtype=torch.float64)
    log_j, delta = log_peak_integral(kappa, torch.tensor([-1.0], dtype=torch.float64))
    assert torch.isfinite(log_j).all() and delta.item() == pytest.approx(1.0)


def test_angular_distance_to_the_arc():
    phi = torch.tensor([0.5, -0.5, -2.9, 3.5, 2 * math.pi + 0.1], dtype=torch.float64)
    expected = torch.tensor([0.0, 0.5, math.pi - 2.9, 3.5 - math.pi, 0.0], dtype=torch.float64)
    torch.testing.assert_close(angular_distance_to_arc(phi), expected)


def test_negative_kappa_is_refused():
    with pytest.raises(ValueError, match="non-negative"):
        log_half_circle_integral(torch.tensor([-1.0]), torch.tensor([0.0]))
