"""flowforge.integrations.sbi against sbi's own conventions and an exact posterior.

Skipped where sbi is absent (the main venv); CI installs the ``sbi`` extra and runs
``python -m pytest -q tests/integrations/test_sbi.py``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("sbi")

import torch  # noqa: E402
from sbi.inference import NPE  # noqa: E402
from sbi.neural_nets.estimators.base import ConditionalDensityEstimator  # noqa: E402
from sbi.simulators.linear_gaussian import (  # noqa: E402
    linear_gaussian,
    true_posterior_linear_gaussian_mvn_prior,
)
from torch.distributions import MultivariateNormal  # noqa: E402

from flowforge.integrations.sbi import (  # noqa: E402
    FlowforgeEstimator,
    NoTracker,
    build_flowforge,
    flowforge_flow,
)

SMALL = {"layers": 2, "hidden": 8}


@pytest.fixture
def estimator() -> FlowforgeEstimator:
    torch.manual_seed(0)
    theta = torch.randn(200, 3) * torch.tensor([1.0, 5.0, 0.1]) + 2.0
    x = torch.randn(200, 4) * 3.0 - 1.0
    return build_flowforge(theta, x, "nsf", **SMALL)


def test_is_an_sbi_density_estimator(estimator: FlowforgeEstimator) -> None:
    assert isinstance(estimator, ConditionalDensityEstimator)
    assert estimator.input_shape == torch.Size([3])
    assert estimator.condition_shape == torch.Size([4])
    assert estimator.embedding_net is not None


@pytest.mark.parametrize("sample_shape", [(), (5,), (2, 3)])
@pytest.mark.parametrize("batch", [1, 4])
def test_sample_shape(estimator: FlowforgeEstimator, sample_shape: tuple, batch: int) -> None:
    condition = torch.randn(batch, 4)
    samples = estimator.sample(torch.Size(sample_shape), condition)
    assert samples.shape == (*sample_shape, batch, 3)
    samples, log_prob = estimator.sample_and_log_prob(torch.Size(sample_shape), condition)
    assert samples.shape == (*sample_shape, batch, 3)
    assert log_prob.shape == (*sample_shape, batch)
    flat = samples.reshape(-1, batch, 3)
    again = estimator.log_prob(flat, condition).reshape(*sample_shape, batch)
    torch.testing.assert_close(log_prob, again, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("batch", [1, 4])
def test_log_prob_and_loss_shapes(estimator: FlowforgeEstimator, batch: int) -> None:
    condition = torch.randn(batch, 4)
    assert estimator.log_prob(torch.randn(7, batch, 3), condition).shape == (7, batch)
    assert estimator.log_prob(torch.randn(batch, 3), condition).shape == (1, batch)
    # One condition broadcasts over a batch of inputs, as the base class documents.
    assert estimator.log_prob(torch.randn(7, 6, 3), condition[:1]).shape == (7, 6)
    theta = torch.randn(batch, 3)
    loss = estimator.loss(theta, condition)
    assert loss.shape == (batch,)
    torch.testing.assert_close(loss, -estimator.log_prob(theta, condition)[0])


def test_wrong_shapes_are_refused(estimator: FlowforgeEstimator) -> None:
    with pytest.raises(ValueError, match="input"):
        estimator.log_prob(torch.randn(5, 2), torch.randn(5, 4))
    with pytest.raises(ValueError, match="condition"):
        estimator.log_prob(torch.randn(5, 3), torch.randn(5, 2))
    with pytest.raises(ValueError, match="point family"):
        flowforge_flow("multiscale")
    with pytest.raises(ValueError, match="not supported"):
        build_flowforge(
            torch.randn(9, 2), torch.randn(9, 2), z_score_x="transform_to_unconstrained"
        )


def test_log_prob_is_the_flows_with_the_z_score(estimator: FlowforgeEstimator) -> None:
    """The estimator's density is the flow's density at the z-scored input times the
    z-score's Jacobian, the flow's context being the z-scored, embedded condition."""
    torch.manual_seed(1)
    theta, condition = torch.randn(6, 3), torch.randn(6, 4)
    shift, scale = estimator.shift, estimator.scale
    # The z-score is the training batch's (mean 2, standard deviations 1, 5, 0.1).
    torch.testing.assert_close(shift, torch.full((3,), 2.0), atol=0.8, rtol=0)
    torch.testing.assert_close(scale, torch.tensor([1.0, 5.0, 0.1]), rtol=0.2, atol=0)
    context = estimator.embedding_net(condition)
    expected = estimator.net.log_prob((theta - shift) / scale, context) - scale.log().sum()
    torch.testing.assert_close(estimator.log_prob(theta, condition)[0], expected)
    # The condition is z-scored by the batch's own statistics before the embedding.
    raw = build_flowforge(torch.randn(50, 3), torch.randn(50, 4) * 3 - 1, z_score_y="none")
    assert isinstance(raw.embedding_net, torch.nn.Identity)


def test_no_z_score_is_the_plain_flow() -> None:
    torch.manual_seed(2)
    estimator = build_flowforge(
        torch.randn(40, 2) * 4, torch.randn(40, 2), "realnvp", z_score_x="none", z_score_y=None
    )
    theta, condition = torch.randn(5, 2), torch.randn(5, 2)
    torch.testing.assert_close(
        estimator.log_prob(theta, condition)[0], estimator.net.log_prob(theta, condition)
    )


def test_samples_follow_the_z_score() -> None:
    """An untrained flow near the identity samples about the z-score's location and scale."""
    torch.manual_seed(3)
    theta = torch.randn(500, 2) * torch.tensor([10.0, 0.01]) + torch.tensor([100.0, -5.0])
    estimator = build_flowforge(theta, torch.randn(500, 1), "maf", zero_init=True, **SMALL)
    samples = estimator.sample((4000,), torch.zeros(1, 1))[:, 0]
    torch.testing.assert_close(samples.mean(0), theta.mean(0), atol=0.5, rtol=0.01)
    torch.testing.assert_close(samples.std(0), theta.std(0), rtol=0.1, atol=0)


def test_embedding_net_feeds_the_flow() -> None:
    torch.manual_seed(4)
    embedding = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 5))
    estimator = build_flowforge(torch.randn(30, 2), torch.randn(30, 2, 3), embedding_net=embedding)
    assert estimator.condition_shape == torch.Size([2, 3])
    assert estimator.embedding_net[1] is embedding
    assert estimator.sample((3,), torch.randn(4, 2, 3)).shape == (3, 4, 2)
    assert estimator.log_prob(torch.randn(3, 4, 2), torch.randn(4, 2, 3)).shape == (3, 4)


def test_to_moves_parameters_and_buffers(estimator: FlowforgeEstimator) -> None:
    condition, theta = torch.randn(2, 4), torch.randn(2, 3)
    before = estimator.log_prob(theta, condition)
    moved = estimator.to("cpu").to(torch.float64)
    assert moved.shift.dtype == torch.float64 and moved.scale.dtype == torch.float64
    assert all(p.dtype == torch.float64 for p in moved.parameters())
    after = moved.log_prob(theta.double(), condition.double())
    torch.testing.assert_close(after.float(), before, atol=1e-4, rtol=1e-4)
    moved = moved.to(torch.float32).to("cpu")
    assert {t.device.type for t in [*moved.parameters(), *moved.buffers()]} == {"cpu"}
    torch.testing.assert_close(moved.log_prob(theta, condition), before)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU")
def test_to_cuda() -> None:
    estimator = build_flowforge(torch.randn(30, 2), torch.randn(30, 2), **SMALL).to("cuda")
    condition = torch.randn(3, 2, device="cuda")
    assert estimator.sample((4,), condition).device.type == "cuda"
    assert estimator.log_prob(torch.randn(3, 2, device="cuda"), condition).shape == (1, 3)


def test_npe_recovers_the_linear_gaussian_posterior(tmp_path, monkeypatch) -> None:
    """NPE with a flowforge NSF on sbi's 2-D linear Gaussian: the posterior mean and
    covariance at an observation are close to the exact Gaussian posterior's."""
    torch.manual_seed(0)
    dim = 2
    shift, cov = torch.zeros(dim), 0.25 * torch.eye(dim)
    prior = MultivariateNormal(torch.zeros(dim), torch.eye(dim))
    theta = prior.sample((1000,))
    x = linear_gaussian(theta, shift, cov)
    monkeypatch.chdir(tmp_path)  # where sbi's default tracker would write sbi-logs/
    inference = NPE(
        prior,
        density_estimator=flowforge_flow("nsf"),
        tracker=NoTracker(),
        show_progress_bars=False,
    )
    inference.append_simulations(theta, x).train(show_train_summary=False)
    posterior = inference.build_posterior()
    x_o = torch.tensor([[0.5, -0.8]])
    exact = true_posterior_linear_gaussian_mvn_prior(
        x_o, shift, cov, prior.mean, prior.covariance_matrix
    )
    samples = posterior.sample((2000,), x=x_o, show_progress_bars=False)
    assert samples.shape == (2000, dim)
    # Within a third of a posterior standard deviation (0.45) from 1,000 simulations
    # (sbi's own MAF is off by about 0.08 here).
    torch.testing.assert_close(samples.mean(0), exact.mean, atol=0.15, rtol=0)
    torch.testing.assert_close(samples.std(0), exact.stddev, atol=0.1, rtol=0)
    # The learned log-density at exact posterior draws tracks the exact one.
    draws = exact.sample((500,))
    gap = exact.log_prob(draws) - posterior.log_prob(draws, x=x_o)
    assert gap.mean().abs() < 0.3
    assert not list(tmp_path.iterdir()), "NoTracker wrote files"


def _cnn(condition_shape: tuple[int, ...]) -> torch.nn.Module:
    from sbi.neural_nets.embedding_nets import CNNEmbedding

    return CNNEmbedding(condition_shape, kernel_size=1)


# The grid of sbi's own density-estimator tests (its repository's
# tests/density_estimator_test.py, not shipped in the wheel): 1-D and 4-D inputs, 1-D and
# 7-D conditions, 2-D conditions through sbi's CNNEmbedding with "structured" z-scoring.
@pytest.mark.parametrize("input_width", [1, 4])
@pytest.mark.parametrize("condition_shape", [(1,), (7,), (2, 7), (7, 2)])
@pytest.mark.parametrize("batch", [1, 10])
def test_sbi_estimator_conventions(input_width: int, condition_shape: tuple, batch: int) -> None:
    torch.manual_seed(5)
    structured = len(condition_shape) > 1
    estimator = build_flowforge(
        torch.randn(1000, input_width),
        torch.randn(1000, *condition_shape),
        embedding_net=_cnn(condition_shape) if structured else None,
        z_score_y="structured" if structured else "independent",
        **SMALL,
    )
    inputs = torch.rand(batch, input_width).unsqueeze(0).expand(2, -1, -1)
    condition = torch.randn(batch, *condition_shape)
    assert estimator.loss(inputs[0], condition).shape == (batch,)
    log_probs = estimator.log_prob(inputs, condition)
    assert log_probs.shape == (2, batch)
    # Identical inputs give identical values, and a batch equals its rows one by one.
    torch.testing.assert_close(log_probs[0], log_probs[1])
    one_by_one = torch.cat(
        [estimator.log_prob(inputs[:, i : i + 1], condition[i : i + 1]) for i in range(batch)],
        dim=1,
    )
    torch.testing.assert_close(log_probs, one_by_one, atol=1e-5, rtol=1e-5)
    for shape in [(), (1,), (2, 3)]:
        assert estimator.sample(shape, condition).shape == (*shape, batch, input_width)


def test_two_moons_reference_is_the_posterior() -> None:
    """benchmarks.sbi's exact two-moons sampler against rejection ABC (prior draws whose
    simulation lands within 0.01 of x_o): a classifier cannot tell them apart."""
    from benchmarks.sbi import two_moons, two_moons_reference
    from sbi.utils.metrics import c2st

    torch.manual_seed(0)
    x_o = torch.zeros(1, 2)
    theta = torch.rand(2_000_000, 2) * 2 - 1
    abc = theta[(two_moons(theta) - x_o).norm(dim=1) < 0.01]
    assert len(abc) > 200
    reference = two_moons_reference(x_o, len(abc))
    assert (reference.abs() <= 1).all()
    assert abs(c2st(reference, abc).item() - 0.5) < 0.06


def test_the_defaults_start_as_the_z_scored_prior_and_can_be_overridden() -> None:
    """``build_flowforge``'s defaults (``ESTIMATOR_DEFAULTS``): a tanh MAF whose last
    layers are zero, so before training ``log q(theta | x)`` is the diagonal Gaussian of
    the batch's mean and standard deviation, whatever ``x``, written out here."""
    torch.manual_seed(1)
    theta = torch.randn(300, 3) * torch.tensor([2.0, 0.5, 1.0]) + torch.tensor([1.0, -3, 0])
    x = torch.randn(300, 2)
    estimator = build_flowforge(theta, x)
    assert type(estimator.net.flow[0]).__name__ == "MaskedAutoregressive"
    assert any(isinstance(m, torch.nn.Tanh) for m in estimator.net.modules())
    assert not any(isinstance(m, torch.nn.ReLU) for m in estimator.net.modules())
    mean, std = theta.mean(0), theta.std(0)
    expected = torch.distributions.Normal(mean, std).log_prob(theta[:7]).sum(-1)
    got = estimator.log_prob(theta[:7], x[:7]).squeeze(0)
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
    relu = build_flowforge(theta, x, activation=torch.nn.ReLU, zero_init=False)
    assert any(isinstance(m, torch.nn.ReLU) for m in relu.net.modules())
    # a family without one of the defaults' options builds without it (realnvp: no activation)
    assert build_flowforge(theta, x, "realnvp").log_prob(theta[:2], x[:2]).shape == (1, 2)
