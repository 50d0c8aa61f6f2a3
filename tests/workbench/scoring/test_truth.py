import math

import pytest
import torch

from flowforge import two_moons
from flowforge.evaluate import NLLEstimate
from flowforge.workbench.data import (
    TOYS,
    MoonsDensity,
    Standardization,
    ToyDistribution,
    toy_splits,
)
from flowforge.workbench.scoring.truth import (
    Floor,
    SampleCheck,
    describe_truth,
    floor_of,
    true_density,
    true_distribution,
    truth_scores,
)

STD = Standardization((0.5, 0.25), (0.87, 0.5))


def test_the_true_density_of_a_runs_data():
    truth = true_density({"name": "two_moons", "noise": 0.1, "n_samples": 1001}, STD)
    assert truth == MoonsDensity(0.1, STD, 500 / 1001)
    assert true_density({"name": "two_moons", "noise": 0.0, "n_samples": 100}, STD) is None
    assert true_density({"name": "other", "noise": 0.1}, STD) is None


def test_floor_scores_from_their_definitions():
    truth = MoonsDensity(0.1, STD)
    x = truth.sample(400, seed=0)
    log_q = truth.log_prob(x) - 0.25 + 0.1 * torch.randn(400, dtype=torch.float64)
    entropy = NLLEstimate(1.83, 0.002, 1000)
    floor = floor_of(truth, x, log_q, entropy)
    assert floor.gap.mean == pytest.approx(float(-log_q.mean()) - 1.83)
    assert floor.gap.stderr == pytest.approx(math.hypot(float(log_q.std()) / 20, 0.002))
    assert floor.kl.mean == pytest.approx(float((truth.log_prob(x) - log_q).mean()))
    assert floor.kl.stderr < floor.gap.stderr  # pairing removes the shared variation
    assert set(floor.to_dict()) >= {"true_entropy", "gap_to_entropy", "kl_paired"}
    assert "gap to the true entropy H = 1.8300 ± 0.0020" in floor.describe()


def test_a_model_that_misses_points_has_an_infinite_floor():
    truth = MoonsDensity(0.1, two_moons(100, seed=0).standardization)
    x = truth.sample(10, seed=1)
    log_q = torch.zeros(10, dtype=torch.float64)
    log_q[3] = -math.inf
    floor = floor_of(truth, x, log_q, NLLEstimate(1.8, 0.01, 100))
    assert floor.gap.mean == math.inf and floor.kl.mean == math.inf
    assert "inf" in floor.describe()


class Sampler(torch.nn.Module):
    """A stand-in model that samples from ``truth`` (or, without one, a standard normal)."""

    def __init__(self, truth=None):
        super().__init__()
        self.truth = truth

    def sample(self, n: int) -> torch.Tensor:
        if self.truth is None:
            return torch.randn(n, 2)
        return self.truth.sample(n, seed=int(torch.randint(2**31, ()))).float()


def test_the_truth_of_every_toy_record():
    rings = true_density({"name": "rings", "n_samples": 100, "n_heldout": 10}, STD)
    assert rings == ToyDistribution(TOYS["rings"], STD)
    pinwheel = {"name": "pinwheel", "n_samples": 100}
    assert true_density(pinwheel, STD) is None
    assert true_distribution(pinwheel, STD) == ToyDistribution(TOYS["pinwheel"], STD)
    assert true_distribution({"name": "mnist"}, STD) is None


def test_a_set_without_density_is_scored_by_sample_distances_against_a_fresh_sample():
    train, heldout = toy_splits("pinwheel", 2000, 2000, seed=0)
    truth = ToyDistribution(TOYS["pinwheel"], train.standardization)
    log_q = torch.zeros(2000)
    perfect = truth_scores(truth, heldout.points, log_q, Sampler(truth), seed=1)
    normal = truth_scores(truth, heldout.points, log_q, Sampler(), seed=1)
    assert isinstance(perfect, SampleCheck) and perfect.n == 2000
    assert perfect.bandwidths["fine"] == pytest.approx(truth.noise_scale)
    assert abs(perfect.model.energy) < 5 * abs(perfect.floor.energy) + 2e-3
    assert normal.model.energy > 10 * max(perfect.model.energy, 1e-3)
    assert normal.model.sliced_w1 > 2 * perfect.model.sliced_w1
    record = normal.to_dict()
    assert (
        record["no_true_density"]
        == "pinwheel has no closed-form density here: no entropy, gap or KL"
    )
    assert set(record["sample_distances"]) == {
        "n",
        "bandwidths",
        "model",
        "fresh_sample_of_the_data",
    }
    line = normal.describe()
    assert line.startswith("pinwheel has no closed-form density") and "distances of 2000" in line
    assert f"energy {normal.model.energy:.2e} ({normal.floor.energy:.2e})" in line


def test_a_set_with_density_gets_the_gap_and_the_paired_kl():
    train, heldout = toy_splits("checkerboard", 500, 500, seed=0)
    truth = ToyDistribution(TOYS["checkerboard"], train.standardization)
    log_q = truth.log_prob(heldout.points) - 0.1
    floor = truth_scores(truth, heldout.points, log_q, Sampler(), entropy=NLLEstimate(1.8, 0.0, 10))
    assert isinstance(floor, Floor)
    assert floor.kl.mean == pytest.approx(0.1) and floor.kl.stderr == pytest.approx(0, abs=1e-12)
    assert describe_truth(floor.to_dict()) == floor.describe() and describe_truth({}) == ""
