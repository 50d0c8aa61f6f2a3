import math

import pytest
import torch

from flowforge import MoonsDensity, Standardization, two_moons
from flowforge.evaluate import NLLEstimate
from flowforge.truth import floor_of, true_density

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
