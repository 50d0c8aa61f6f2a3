"""The posterior's scores: importance-weighted moments and their Monte Carlo errors are
calibrated (checked on a Gaussian whose moments are known in closed form)."""

import math

import torch
from benchmarks.sampling import posterior_scores


class _Gaussian:
    """A 1-D normal of scale ``scale``: a proposal (``sample_and_log_prob``) or, with an
    exact ``reference`` (no chain error), the target."""

    def __init__(self, scale: float, generator: torch.Generator | None = None) -> None:
        self.scale, self.generator = scale, generator
        self.reference = {
            "mean": torch.zeros(1, dtype=torch.float64),
            "std": torch.full((1,), scale, dtype=torch.float64),
            "mcse_mean": torch.zeros(1, dtype=torch.float64),
            "mcse_std": torch.zeros(1, dtype=torch.float64),
        }

    def log_prob(self, x):
        return (-0.5 * (x / self.scale) ** 2 - math.log(self.scale)).sum(-1)

    def sample_and_log_prob(self, n):
        x = self.scale * torch.randn(n, 1, generator=self.generator, dtype=torch.float64)
        return x, self.log_prob(x)


def test_the_errors_of_weighted_means_and_stds_are_calibrated():
    # a proposal 1.6 times wider than the target: ESS about 65 %, and a weighted variance
    # whose error std^2 / ESS-style formulas misjudge; over 400 repetitions the |z| of
    # the mean and of the std must average that of a standard normal, sqrt(2/pi) = 0.80
    generator = torch.Generator().manual_seed(0)
    target, proposal = _Gaussian(1.0), _Gaussian(1.6, generator)
    scores = [posterior_scores(proposal, target, n=2000) for _ in range(400)]
    mean_z = sum(s["max_z_mean"] for s in scores) / len(scores)
    std_z = sum(s["max_z_std"] for s in scores) / len(scores)
    expected = math.sqrt(2 / math.pi)
    assert abs(mean_z - expected) < 0.1, mean_z
    assert abs(std_z - expected) < 0.1, std_z
    assert 0.5 < scores[0]["ess"] < 0.8 and scores[0]["coefficients"] == 1
    # the rms of the z-scores (here of one coefficient) squares to 1 on average
    for of in ("mean", "std"):
        assert abs(sum(s[f"rms_z_{of}"] ** 2 for s in scores) / len(scores) - 1) < 0.2
