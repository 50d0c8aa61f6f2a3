"""fit_target and find_modes against closed forms: Gaussian targets and mixtures whose
normalizers, means, covariances and mode masses are known exactly."""

import copy
import math

import pytest
import torch

from flowforge.errors import InputError
from flowforge.training.modes import find_modes
from flowforge.training.sampler import UNBOUNDED_DF, sampler
from flowforge.training.target import fit_target

CENTRES = torch.tensor([[-6.0, -6.0], [6.0, -6.0], [-6.0, 6.0], [6.0, 6.0]])
WEIGHTS = torch.tensor([0.1, 0.2, 0.3, 0.4])
SCALE = 0.7
LOG_Z = 1.7  # the unnormalized density below is exp(LOG_Z) times a normalized mixture
BOX = (torch.full((2,), -10.0), torch.full((2,), 10.0))


class Mixture:
    """Four isotropic Gaussians of known weights, unnormalized by ``exp(LOG_Z)``."""

    dim, bounds = 2, BOX

    def log_prob(self, x):
        d = ((x[:, None, :] - CENTRES.to(x.dtype)) ** 2).sum(-1) / (2 * SCALE**2)
        normal = -d - math.log(2 * math.pi * SCALE**2)
        return torch.logsumexp(normal + WEIGHTS.to(x.dtype).log(), dim=1) + LOG_Z


def importance(flow, log_p, n=20_000):
    with torch.no_grad():
        x, log_q = flow.sample_and_log_prob(n)
        log_w = log_p(x).double() - log_q.double()
    w = torch.softmax(log_w, 0)
    return float(torch.logsumexp(log_w, 0) - math.log(n)), x, w


def test_find_modes_recovers_means_covariances_and_weights():
    weights, means, covs = find_modes(Mixture().log_prob, *BOX, starts=256, seed=1)
    order = torch.argsort(means[:, 0] * 100 + means[:, 1])
    assert len(weights) == 4
    assert torch.allclose(means[order].float(), CENTRES[[0, 2, 1, 3]], atol=0.05)
    assert torch.allclose(weights[order].float(), WEIGHTS[[0, 2, 1, 3]], atol=0.03)
    eye = SCALE**2 * torch.eye(2, dtype=torch.float64).expand(4, 2, 2)
    assert torch.allclose(covs, eye, atol=0.05)


def test_modes_method_covers_every_mode_with_the_right_mass():
    torch.manual_seed(0)
    target = Mixture()
    flow = sampler(target, components=8, layers=1, hidden=8)
    fit_target(flow, target, steps=100, batch_size=256, progress=False)
    log_z, x, w = importance(flow, target.log_prob)
    assert log_z == pytest.approx(LOG_Z, abs=0.02)
    nearest = torch.cdist(x, CENTRES).argmin(1)
    mass = torch.zeros(4, dtype=torch.float64).index_add_(0, nearest, w)
    assert torch.allclose(mass.float(), WEIGHTS, atol=0.02)
    grid = torch.cartesian_prod(torch.linspace(-100, 100, 41), torch.linspace(-100, 100, 41))
    assert bool(torch.isfinite(flow.log_prob(grid)).all())


@pytest.mark.slow
def test_reverse_kl_fits_a_correlated_gaussian():
    cov = torch.tensor([[1.0, 0.8], [0.8, 1.0]])
    mean = torch.tensor([2.0, -1.0])
    normal = torch.distributions.MultivariateNormal(mean, cov)

    def log_p(x):
        return normal.log_prob(x) - 3.0

    torch.manual_seed(0)
    box = (torch.tensor([-2.0, -5.0]), torch.tensor([6.0, 3.0]))
    flow = sampler(2, box, base="normal", layers=2, hidden=16)
    fit_target(flow, log_p, method="reverse-kl", steps=250, batch_size=256, lr=3e-3, progress=False)
    log_z, _, w = importance(flow, log_p)
    assert log_z == pytest.approx(-3.0, abs=0.03)
    assert 1 / float((w**2).sum()) > 0.8 * len(w)  # ESS above 80 %
    x = flow.sample(20_000)
    assert torch.allclose(x.mean(0), mean, atol=0.05)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.06)


@pytest.mark.parametrize("method", ["modes", "reverse-kl"])
def test_resume_repeats_an_uninterrupted_run_exactly(method):
    target = Mixture()
    states = []

    def keep(state):  # a checkpoint: a copy (the optimizer's state is live)
        states.append(copy.deepcopy(state))

    torch.manual_seed(0)
    whole = sampler(
        target, components=8, layers=1, hidden=8, base="mixture" if method == "modes" else "normal"
    )
    first = type(whole)  # same architecture, fresh copy with the same start
    start = {k: v.clone() for k, v in whole.state_dict().items()}
    fit_target(
        whole, target, method=method, steps=30, round_steps=10, callbacks=[keep], progress=False
    )
    resumed = sampler(
        target, components=8, layers=1, hidden=8, base="mixture" if method == "modes" else "normal"
    )
    assert isinstance(resumed, first)
    resumed.load_state_dict(start)
    fit_target(
        resumed, target, method=method, steps=30, round_steps=10, resume=states[1], progress=False
    )
    for name, value in whole.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_time_budget_is_spent_in_cpu_seconds():
    import time

    torch.manual_seed(0)
    flow = sampler(2, base="normal", layers=1, hidden=8)
    started = time.process_time()
    history = fit_target(
        flow,
        Mixture().log_prob,
        method="reverse-kl",
        steps=10**6,
        time_budget=1.0,
        round_steps=20,
        progress=False,
    )
    spent = time.process_time() - started
    assert 0.8 < spent < 3.0
    assert 0 < history.epochs < 10**6 // 20


def test_bad_input_is_one_line_with_the_fix():
    flow = sampler(2, base="normal", layers=1, hidden=8)
    with pytest.raises(InputError, match="unknown method 'fab'; use one of modes"):
        fit_target(flow, Mixture(), method="fab")
    with pytest.raises(InputError, match="has none; build it with sampler"):
        fit_target(flow, Mixture(), method="modes")
    with pytest.raises(InputError, match="no bounds"):
        fit_target(flow, Mixture().log_prob, method="forward-kl")
    with pytest.raises(InputError, match="log_prob"):
        fit_target(flow, 3.0, method="reverse-kl")


def test_modes_method_without_bounds_starts_on_the_laplace_approximation():
    """A 6-D Gaussian with no box: the search (in [-5, 5]^6) finds its mean, and the
    Laplace covariance is exact, so the importance weights are nearly constant."""
    torch.manual_seed(0)
    a = torch.randn(6, 6) * 0.3
    cov = a @ a.T + 0.2 * torch.eye(6)
    mean = torch.linspace(-1.0, 1.0, 6)
    normal = torch.distributions.MultivariateNormal(mean, cov)

    def log_p(x):
        return normal.log_prob(x) + 2.0

    flow = sampler(6, components=1, layers=2, hidden=8, df=None)  # Gaussian components
    fit_target(flow, log_p, steps=20, round_steps=10, progress=False)
    log_z, x, w = importance(flow, log_p)
    assert log_z == pytest.approx(2.0, abs=0.01)
    assert 1 / float((w**2).sum()) > 0.95 * len(w)
    assert torch.allclose(w @ x.double(), mean.double(), atol=0.03)
    # the default for a target without bounds: Student-t components (df 5), whose tails
    # are heavier than this target's, so every weight is bounded, at some cost in ESS
    torch.manual_seed(0)
    flow = sampler(6, components=1, layers=2, hidden=8)
    assert float(flow.base_distribution.df) == UNBOUNDED_DF
    fit_target(flow, log_p, steps=20, round_steps=10, progress=False)
    log_z, x, w = importance(flow, log_p)
    assert log_z == pytest.approx(2.0, abs=0.01)
    assert 0.6 * len(w) < 1 / float((w**2).sum()) < 0.95 * len(w)
    assert float(w.max()) * len(w) < 5


def test_without_bounds_the_sampler_spans_the_box_the_modes_are_searched_in():
    # the splines act on [-4, 4] and map [-3, 3] onto the box: an unbounded target gets
    # the mode search's [-5, 5]^d, so a posterior's tails stay inside the splines' reach
    from flowforge.training.modes import UNBOUNDED
    from flowforge.training.sampler import BOX

    flow = sampler(3, components=1, layers=1, hidden=4)
    scale, translate = list(flow.flow)[-2:]
    corner = torch.full((1, 3), BOX)
    mapped, _ = translate(scale(corner)[0])
    assert torch.allclose(mapped, torch.full((1, 3), UNBOUNDED))
    assert torch.allclose(translate(scale(-corner)[0])[0], torch.full((1, 3), -UNBOUNDED))


def test_the_sampler_s_base_gets_student_t_components_only_without_bounds():
    from flowforge import targets
    from flowforge.distributions import GaussianMixture, StudentTMixture

    posterior = sampler(targets.get("logistic-breast-cancer"), layers=1, hidden=4)
    assert type(posterior.base_distribution) is StudentTMixture
    assert float(posterior.base_distribution.df) == UNBOUNDED_DF
    for flow in (
        sampler(Mixture(), layers=1, hidden=4),  # bounds: Gaussian
        sampler(3, BOX3, layers=1, hidden=4),  # a box given: Gaussian
        sampler(3, layers=1, hidden=4, df=math.inf),
        sampler(3, layers=1, hidden=4, df=None),
    ):
        assert type(flow.base_distribution) is GaussianMixture
    assert float(sampler(3, BOX3, layers=1, hidden=4, df=3).base_distribution.df) == 3.0
    for bad in (0, -1.0, "five"):
        with pytest.raises(InputError, match="positive number of degrees of freedom"):
            sampler(3, layers=1, hidden=4, df=bad)
    with pytest.raises(InputError, match="base='mixture'"):
        sampler(3, base="normal", layers=1, hidden=4, df=5)


BOX3 = (torch.full((3,), -2.0), torch.full((3,), 2.0))
