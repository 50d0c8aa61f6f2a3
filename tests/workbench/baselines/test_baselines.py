import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.neighbors import KernelDensity

from flowforge import two_moons
from flowforge.workbench.baselines import (
    FlowBaseline,
    GANBaseline,
    GaussianBaseline,
    KernelDensityBaseline,
    MixtureBaseline,
    NoLikelihoodError,
    UniformFlowBaseline,
)
from flowforge.workbench.scoring.metrics import energy_distance


def blobs(n: int, seed: int) -> torch.Tensor:
    """Three well-separated Gaussian blobs in 2-D (equal shares)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-4.0, 0.0], [0.0, 4.0], [4.0, 0.0]], dtype=torch.float64)
    return centres[torch.arange(n) % 3] + 0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)


@pytest.fixture(scope="module")
def moons():
    data = two_moons(3000, seed=0)
    return data.points[:2500], data.points[2500:]


def test_gaussian_fit_is_the_closed_form():
    x = blobs(600, 0)
    model = GaussianBaseline().fit(x, blobs(60, 1))
    mean = x.numpy().mean(0)
    cov = np.cov(x.numpy().T, bias=True)  # maximum likelihood: divide by n
    np.testing.assert_allclose(model.summary()["mean"], mean)
    np.testing.assert_allclose(model.summary()["covariance"], cov)
    points = blobs(20, 2)
    np.testing.assert_allclose(
        model.log_prob(points).numpy(), multivariate_normal(mean, cov).logpdf(points.numpy())
    )
    s = model.sample(50_000, seed=3)
    np.testing.assert_allclose(s.mean(0).numpy(), mean, atol=0.05)
    assert torch.equal(s, model.sample(50_000, seed=3))


def test_mixture_picks_its_components_on_validation_data():
    candidates = (1, 2, 3, 6, 12, 24, 32)
    model = MixtureBaseline(candidates, patience=2).fit(blobs(600, 0), blobs(3000, 1))
    summary = model.summary()
    scores = {int(k): v for k, v in summary["validation_nll"].items()}
    assert summary["components"] == min(scores, key=scores.get) == 3  # the three blobs
    assert sorted(scores) == [1, 2, 3, 6, 12]  # two candidates without improvement: stop
    lp = model.log_prob(blobs(100, 2))
    assert lp.shape == (100,) and torch.isfinite(lp).all()
    s = model.sample(3000, seed=0)
    assert s.shape == (3000, 2) and torch.equal(s, model.sample(3000, seed=0))
    assert abs(float((s[:, 0] > 2).double().mean()) - 1 / 3) < 0.05


def test_kernel_density_picks_its_bandwidth_on_validation_data(moons):
    train, validation = moons
    model = KernelDensityBaseline(bandwidths=(0.01, 0.02, 0.04, 0.08, 0.16, 0.32)).fit(
        train, validation
    )
    scores = {float(k): v for k, v in model.summary()["validation_nll"].items()}
    chosen = model.summary()["bandwidth"]
    assert scores[chosen] == min(scores.values()) and 0.01 < chosen < 0.32
    assert len(scores) < 6  # the widest (slowest) kernels were never needed
    reference = KernelDensity(bandwidth=chosen).fit(train.double().numpy())
    np.testing.assert_allclose(
        model.log_prob(validation).numpy(),
        reference.score_samples(validation.double().numpy()),
        atol=1e-5,
    )
    assert torch.isfinite(model.surface(torch.zeros(5, 2))).all()
    assert model.sample(100, seed=1).shape == (100, 2)


def test_gan_samples_move_toward_the_data():
    target = torch.tensor([3.0, -2.0], dtype=torch.float64)
    data = target + 0.5 * torch.randn(4000, 2, generator=torch.Generator().manual_seed(0)).double()
    untrained = GANBaseline(steps=0, hidden=32, lr=1e-3, seed=1).fit(data, data[:500])
    gan = GANBaseline(steps=600, hidden=32, lr=1e-3, seed=1).fit(data, data[:500])
    before, after = untrained.sample(1000, seed=2), gan.sample(1000, seed=2)
    assert energy_distance(after, data[:1000]) < 0.2 * energy_distance(before, data[:1000])
    assert torch.linalg.vector_norm(after.mean(0) - target) < 0.5
    d = gan.surface(data[:100])
    assert ((d >= 0) & (d <= 1)).all()
    with pytest.raises(NoLikelihoodError):
        gan.log_prob(data[:3])
    again = GANBaseline(steps=600, hidden=32, lr=1e-3, seed=1).fit(data, data[:500])
    assert torch.equal(again.sample(50, seed=2), gan.sample(50, seed=2))  # seeded


def test_flow_trains_and_scores(moons):
    train, validation = moons
    model = FlowBaseline(epochs=3, seed=0).fit(train, validation)
    summary = model.summary()
    assert summary["epochs"] == 3 and summary["best_epoch"] in (1, 2, 3)
    lp = model.log_prob(validation)
    assert lp.dtype == torch.float64 and torch.isfinite(lp).all()
    assert -float(lp.mean()) < summary["validation_nll"][0] + 1e-4 or summary["best_epoch"] == 1
    again = FlowBaseline(epochs=3, seed=0).fit(train, validation)
    assert torch.equal(again.sample(20, seed=5), model.sample(20, seed=5))


def test_uniform_base_flow_walks_the_data_off_its_support(moons):
    train, validation = moons
    model = UniformFlowBaseline(epochs=2, record_every=1, seed=0).fit(train, validation)
    s = model.summary()
    assert s["validation_outside_at_init"] == 0.0  # U(-3, 3)² covers the data at first
    assert s["validation_outside_after_training"] > 0.9
    assert s["first_recorded_step_with_a_point_outside"] is not None
    trace = s["trace"]
    assert trace["log_det"][-1] > trace["log_det"][0] + 5  # expansion is all the gradient sees
    assert math.isinf(trace["loss"][-1])
    assert torch.isneginf(model.log_prob(validation)).double().mean() > 0.9


def test_errors_are_clear():
    with pytest.raises(RuntimeError, match="fit"):
        GaussianBaseline().sample(3)
    with pytest.raises(ValueError, match="shape"):
        GaussianBaseline().fit(torch.zeros(5), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="NaN"):
        MixtureBaseline().fit(torch.full((5, 2), math.nan), torch.zeros(5, 2))
    with pytest.raises(ValueError, match="width"):
        KernelDensityBaseline().fit(torch.zeros(5, 2), torch.zeros(5, 3))
    with pytest.raises(ValueError, match="positive integers"):
        MixtureBaseline(components=(0, 2))
    with pytest.raises(ValueError, match="steps"):
        GANBaseline(steps=-1)
