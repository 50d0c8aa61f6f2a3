"""The targets: normalizers by quadrature against closed forms, exact samplers against
quadrature moments, the funnel's marginals, the registry."""

from __future__ import annotations

import math

import pytest
import torch

from flowforge import targets
from flowforge.errors import InputError
from flowforge.targets import grid_log_integral

pytestmark = pytest.mark.cpu_only
TWO_D = ("two-moons", "circular-mixture", "ring-mixture", "banana", "funnel", "gmm40")


def test_quadrature_of_gaussians_matches_the_closed_form():
    cov = torch.tensor([[2.0, 0.9], [0.9, 0.7]], dtype=torch.float64)
    prec, mean = torch.linalg.inv(cov), torch.tensor([0.5, -1.0], dtype=torch.float64)

    def log_p(x):
        d = x - mean
        return -0.5 * ((d @ prec) * d).sum(1)

    exact = math.log(2 * math.pi) + 0.5 * math.log(float(torch.det(cov)))
    box = (torch.tensor([-10.0, -10.0]), torch.tensor([10.0, 10.0]))
    for spacing in (0.05, 0.1):
        assert grid_log_integral(log_p, *box, spacing) == pytest.approx(exact, abs=1e-9)
    # A coarse grid is measurably off: the check can fail.
    assert abs(grid_log_integral(log_p, *box, 1.5) - exact) > 1e-4


@pytest.mark.parametrize("name", ["circular-mixture", "banana", "funnel", "gmm40"])
def test_quadrature_at_two_spacings_matches_the_closed_normalizer(name):
    t = targets.get(name)
    assert t.closed_log_normalizer is not None
    for spacing in (t.spacing, 2 * t.spacing):
        assert t.quadrature(spacing) == pytest.approx(t.log_normalizer, abs=1e-6)


@pytest.mark.parametrize("name", ["two-moons", "ring-mixture"])
def test_quadrature_normalizers_agree_at_two_spacings_and_a_wider_box(name):
    t = targets.get(name)
    assert t.closed_log_normalizer is None
    assert t.quadrature(2 * t.spacing) == pytest.approx(t.log_normalizer, abs=1e-8)
    wide = grid_log_integral(t.log_prob, -2 * t.bounds[1], 2 * t.bounds[1], t.spacing)
    assert wide == pytest.approx(t.log_normalizer, abs=1e-6)


def test_ring_weights_by_quadrature_follow_the_radii():
    # The rings share a radial profile, so the mass grows with the radius (1:2).
    w = targets.get("ring-mixture").weights
    assert w.tolist() == pytest.approx([1 / 3, 2 / 3], abs=1e-4)
    two_moons = targets.get("two-moons")
    assert two_moons.quadrature_weights().tolist() == pytest.approx([0.5, 0.5], abs=1e-9)


@pytest.mark.parametrize("name", TWO_D)
def test_exact_samplers_match_the_density(name):
    """The share of samples in each half-plane (and per mode) against quadrature."""
    t = targets.get(name)
    x = t.sample(40_000, generator=torch.Generator().manual_seed(1))
    assert x.shape == (40_000, 2) and torch.isfinite(t.log_prob(x)).all()
    upper = lambda p: p[:, 1] > p[:, 0] * 0.3 + 0.1  # noqa: E731  an arbitrary half-plane
    share = math.exp(t.quadrature(mask=upper) - t.log_normalizer)
    seen = float(upper(x).double().mean())
    assert abs(seen - share) < 4 * math.sqrt(share * (1 - share) / len(x)) + 1e-3
    if t.modes is not None:
        counts = torch.bincount(t.assign(x), minlength=len(t.modes)).double() / len(x)
        se = (t.weights * (1 - t.weights) / len(x)).sqrt()
        assert ((counts - t.weights).abs() < 5 * se + 1e-4).all()


def test_log_prob_is_differentiable_and_keeps_the_dtype():
    for name in TWO_D + ("funnel10",):
        t = targets.get(name)
        x = torch.randn(5, t.dim, requires_grad=True)
        lp = t.log_prob(x)
        assert lp.shape == (5,) and lp.dtype == torch.float32
        (g,) = torch.autograd.grad(lp.sum(), x)
        assert torch.isfinite(g).all()


def test_bad_points_get_one_line_errors():
    t = targets.get("two-moons")
    with pytest.raises(InputError, match=r"shape \(n, 2\)"):
        t.log_prob(torch.zeros(3, 3))
    with pytest.raises(InputError, match="floating-point"):
        t.log_prob(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="not a mixture"):
        targets.get("banana").assign(torch.zeros(1, 2))


def test_the_registry_lists_and_builds_every_target():
    assert targets.NAMES == (
        "two-moons",
        "circular-mixture",
        "ring-mixture",
        "banana",
        "funnel",
        "gmm40",
        "funnel10",
        "logistic-breast-cancer",
    )
    for name in targets.NAMES[:-1]:
        assert targets.get(name).name == name
    with pytest.raises(InputError, match="unknown target 'moons'; choose one of two-moons"):
        targets.get("moons")


def test_gmm40_follows_fabs_recipe():
    t = targets.get("gmm40")
    torch.manual_seed(0)  # FAB seeds the global generator and draws the means from it
    fab = (torch.rand((40, 2)) - 0.5) * 2 * 40
    assert torch.equal(t.modes, fab.double())
    assert t.scale == pytest.approx(math.log1p(math.e))


def test_funnel10_marginals():
    t = targets.get("funnel10")
    assert t.log_normalizer == pytest.approx(5 * math.log(2 * math.pi) + math.log(3.0))
    # Each marginal density integrates to one; x's at 0 is E[N(0; 0, e^v)] = e^{9/8}/sqrt(2 pi).
    s = torch.linspace(-9, 9, 8001, dtype=torch.float64)
    grid = torch.sinh(s)  # fine near 0 (the x marginal's narrow peak), out to +-4000
    for i in (0, 1):
        dens = t.marginal_log_prob(grid, i).exp() * torch.cosh(s)
        assert float(torch.trapezoid(dens, s)) == pytest.approx(1.0, abs=1e-4)
    at_zero = t.marginal_log_prob(torch.zeros(1), 3)
    assert float(at_zero) == pytest.approx(9 / 8 - 0.5 * math.log(2 * math.pi), abs=1e-6)
    # Exact samples against the marginal CDFs (Kolmogorov-Smirnov, 4000 samples).
    x = t.sample(4000, generator=torch.Generator().manual_seed(0))
    for i in (0, 4):
        cdf = torch.cumulative_trapezoid(t.marginal_log_prob(grid, i).exp() * torch.cosh(s), s)
        values = torch.sort(x[:, i]).values
        model = cdf[torch.searchsorted(grid[1:], values).clamp(max=len(cdf) - 1)]
        empirical = torch.arange(1, len(values) + 1, dtype=torch.float64) / len(values)
        assert float((model - empirical).abs().max()) < 1.63 / math.sqrt(len(values))
    assert float(x[:, 0].std()) == pytest.approx(3.0, rel=0.05)
