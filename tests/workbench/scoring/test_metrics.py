import math

import numpy as np
import pytest
import torch
from scipy.stats import wasserstein_distance

from flowforge.evaluate import NLLEstimate
from flowforge.workbench.scoring.metrics import (
    SampleReferee,
    directions,
    energy_distance,
    median_bandwidth,
    mmd2,
    nll_gap,
    paired_kl,
    sliced_wasserstein,
    wasserstein_1d,
)

SHIFT = torch.tensor([1.0, 0.5], dtype=torch.float64)


def normal_lattice(k: int) -> torch.Tensor:
    """``k²`` points that stand in for N(0, I₂) almost exactly: a grid of normal quantiles."""
    q = torch.special.ndtri((torch.arange(k, dtype=torch.float64) + 0.5) / k)
    return torch.cartesian_prod(q, q)


def normal(n: int, seed: int, shift: torch.Tensor | None = None) -> torch.Tensor:
    x = torch.randn(n, 2, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return x if shift is None else x + shift


def energy_of_shifted_normals(mu: float) -> float:
    """2E|X−Y| − E|X−X'| − E|Y−Y'| for N(0, I₂) and N(μ, I₂): X − Y is N(μ, 2I), whose
    norm is Rice-distributed with mean √π · L_{1/2}(−μ²/4); X − X' has mean norm √π."""
    a = torch.tensor(mu * mu / 4, dtype=torch.float64)
    laguerre = (1 + a) * torch.special.i0e(a / 2) + a * torch.special.i1e(a / 2)
    return float(2 * math.sqrt(math.pi) * (laguerre - 1))


def mmd2_of_shifted_normals(mu: float, h: float) -> float:
    """MMD² with exp(−|a−b|²/2h²) for N(0, I₂) vs N(μ, I₂): E k over N(m, 2I) in 2-D is
    h²/(h²+2) · exp(−|m|²/(2(h²+2)))."""
    c = h * h / (h * h + 2)
    return 2 * c * (1 - math.exp(-mu * mu / (2 * (h * h + 2))))


@pytest.fixture(scope="module")
def samples():
    return normal(2000, 0), normal(2000, 1), normal(2000, 2, SHIFT)


def test_a_distribution_against_itself_scores_about_zero(samples):
    x, y, z = samples
    assert abs(energy_distance(x, y)) < 0.01 < energy_distance(x, z)
    assert abs(mmd2(x, y, 1.0)) < 0.003 and abs(mmd2(x, y, 0.3)) < 0.003
    assert sliced_wasserstein(x, y) < 0.06


def test_shifted_normals_match_the_closed_forms():
    # Quantile lattices of N(0, I₂) and N(μ, I₂) estimate the expectations to ~1e-3,
    # far tighter than random samples of the same size.
    x = normal_lattice(50)
    mu = float(torch.linalg.vector_norm(SHIFT))
    assert energy_distance(x, x + SHIFT) == pytest.approx(energy_of_shifted_normals(mu), abs=1.5e-3)
    for h in (1.0, 0.3):
        assert mmd2(x, x + SHIFT, h) == pytest.approx(mmd2_of_shifted_normals(mu, h), abs=1.5e-3)
    # Each projection on u is N(0,1) vs N(u·μ, 1), W1 = |u·μ|; its mean over the circle is 2|μ|/π.
    assert sliced_wasserstein(x, x + SHIFT) == pytest.approx(2 * mu / math.pi, abs=1e-3)


def test_energy_and_mmd_u_statistics_by_hand():
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([[0.0, 2.0], [0.0, 3.0], [1.0, 1.0]], dtype=torch.float64)
    d_xy = torch.cdist(x, y)
    d_yy = torch.cdist(y, y)
    expected = 2 * d_xy.mean() - 1.0 - d_yy.sum() / 6
    assert energy_distance(x, y) == pytest.approx(float(expected))
    k = lambda d: torch.exp(-(d**2) / 2)  # noqa: E731
    expected_mmd = (2 * k(torch.tensor(1.0))) / 2 + (k(d_yy).sum() - 3) / 6 - 2 * k(d_xy).mean()
    assert mmd2(x, y, 1.0) == pytest.approx(float(expected_mmd))


def test_one_dimensional_wasserstein():
    a = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 2.0, 3.0]], dtype=torch.float64)
    assert wasserstein_1d(a, b).item() == pytest.approx(1.0)
    a, b = torch.tensor([[0.0, 1.0]]).double(), torch.tensor([[0.0, 0.5, 1.0]]).double()
    assert wasserstein_1d(a, b).item() == pytest.approx(1 / 6)
    rng = np.random.default_rng(0)
    u, v = rng.normal(size=(4, 300)), rng.gamma(2.0, size=(4, 170))
    ours = wasserstein_1d(torch.from_numpy(u), torch.from_numpy(v)).numpy()
    np.testing.assert_allclose(ours, [wasserstein_distance(p, q) for p, q in zip(u, v)])


def test_directions_are_unit_vectors():
    u = directions(2, 90)
    torch.testing.assert_close(torch.linalg.vector_norm(u, dim=1), torch.ones(90).double())
    assert (u[:, 1] > 0).all()  # half circle: each line counted once
    v = directions(5, 64, seed=1)
    assert v.shape == (64, 5) and torch.equal(v, directions(5, 64, seed=1))


def test_median_bandwidth_of_a_standard_normal():
    # |X − X'| for X ~ N(0, I₂) is Rayleigh with scale √2: median 2√(ln 2).
    assert median_bandwidth(normal(3000, 3)) == pytest.approx(2 * math.sqrt(math.log(2)), rel=0.03)


def test_referee_agrees_with_the_separate_functions(samples):
    x, _, z = samples
    x, z = x[:800], z[:600]
    scores = SampleReferee(x, {"wide": 1.0, "narrow": 0.3}).score(z)
    assert scores.energy == pytest.approx(energy_distance(z, x), rel=1e-9)
    assert scores.mmd2["narrow"] == pytest.approx(mmd2(z, x, 0.3), rel=1e-9)
    assert scores.sliced_w1 == pytest.approx(sliced_wasserstein(z, x), rel=1e-9)


def test_paired_kl_of_two_normals():
    # KL(N(0,1) ‖ N(1,1)) = 1/2; the paired estimate over draws from p is unbiased.
    x = torch.randn(20_000, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    log_p = -0.5 * x**2
    log_q = -0.5 * (x - 1) ** 2
    est = paired_kl(log_p, log_q)
    assert abs(est.mean - 0.5) < 4 * est.stderr
    assert est.stderr == pytest.approx(float((log_p - log_q).std()) / math.sqrt(20_000))


def test_paired_kl_is_infinite_when_q_misses_points():
    est = paired_kl(torch.zeros(3), torch.tensor([0.0, -math.inf, -1.0]))
    assert est.mean == math.inf and est.n_outside == 1


def test_nll_gap_adds_errors_in_quadrature():
    gap = nll_gap(NLLEstimate(2.0, 0.03, 100), NLLEstimate(1.8, 0.04, 1000))
    assert gap.mean == pytest.approx(0.2) and gap.stderr == pytest.approx(0.05)
    assert (
        nll_gap(NLLEstimate(math.inf, math.nan, 10, 2), NLLEstimate(1.8, 0.04, 10)).mean == math.inf
    )


def test_bad_input_is_refused():
    x = normal(10, 0)
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        mmd2(x, x, 0.0)
    with pytest.raises(ValueError, match="NaN or infinite"):
        energy_distance(x, torch.full((4, 2), math.nan))
    with pytest.raises(ValueError, match="shape"):
        sliced_wasserstein(torch.zeros(5), x)
    with pytest.raises(ValueError, match="width"):
        SampleReferee(x, {"h": 1.0}).score(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="same n"):
        paired_kl(torch.zeros(3), torch.zeros(4))
