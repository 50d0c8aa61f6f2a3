"""Importance diagnostics: the estimators against closed forms, an exact sampler scored
as perfect, and a sampler that dropped a mode flagged by the broad proposal."""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch

from flowforge import NormalizingFlow, targets
from flowforge.distributions import Multivariate
from flowforge.errors import InputError
from flowforge.importance import diagnose, estimate, importance_weights
from flowforge.layers import AffineCoupling, Merge, Split, Swap
from flowforge.nets import block
from flowforge.targets import TargetSampler

pytestmark = pytest.mark.cpu_only
GAP = "the flow's log Z-hat"


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_estimate_matches_the_formulas():
    log_w = torch.tensor([0.0, math.log(3.0), -math.inf, math.log(2.0)], dtype=torch.float64)
    w = log_w.exp()
    log_z, se, ess = estimate(log_w)
    assert log_z == pytest.approx(math.log(float(w.mean())))
    assert se == pytest.approx(float(w.std()) / 2 / float(w.mean()))
    assert ess == pytest.approx(float(w.sum() ** 2 / (4 * (w**2).sum())))
    # One weight carries everything: an ESS of one sample.
    assert estimate(torch.tensor([0.0, -800.0, -800.0], dtype=torch.float64))[2] == pytest.approx(
        1 / 3
    )


def test_importance_weights_refuse_nan_and_mismatched_shapes():
    assert importance_weights(torch.zeros(2), torch.ones(2)).tolist() == [-1.0, -1.0]
    with pytest.raises(InputError, match="NaN"):
        importance_weights(torch.tensor([0.0, math.nan]), torch.zeros(2))
    with pytest.raises(InputError, match=r"\(n,\)"):
        importance_weights(torch.zeros(2), torch.zeros(3))


@pytest.mark.parametrize("name", ["two-moons", "ring-mixture", "gmm40"])
def test_an_exact_sampler_scores_as_perfect(name):
    t = targets.get(name)
    d = diagnose(TargetSampler(t, generator=seeded(0)), t, 10_000, generator=seeded(1))
    assert d.ess > 0.999 and d.broad_ess > 0.3
    assert abs(d.log_z_error) < 1e-6 and d.log_z_se < 1e-3  # the weights are all Z
    assert abs(d.reverse_kl) < 1e-6
    assert abs(d.broad_log_z - t.log_normalizer) < 4 * d.broad_log_z_se + 1e-4
    assert d.modes_covered == len(t.modes) and not d.disagree and d.warnings == []
    assert d.finite_fraction == 1.0


@pytest.mark.parametrize("broad", ["defensive", "uniform", "gaussian"])
def test_one_moon_is_flagged_by_the_broad_proposal_alone(broad):
    """The flow's own ESS (~1) and error bar (~0) see nothing; the broad proposal does,
    even when the target does not say where its modes are."""
    moons = copy.copy(targets.get("two-moons"))
    moons.modes = None
    one_moon = TargetSampler(targets.get("two-moons"), keep=[0], generator=seeded(2))
    d = diagnose(one_moon, moons, 10_000, broad=broad, generator=seeded(3))
    assert d.ess > 0.999 and d.log_z_se < 1e-3
    assert d.log_z_error == pytest.approx(-math.log(2), abs=1e-6)
    assert d.disagree and d.warnings[0].startswith(GAP)
    assert abs(d.broad_log_z - moons.log_normalizer) < 4 * d.broad_log_z_se + 1e-3
    assert d.summary().startswith("WARNING: " + GAP)


def test_mode_mass_sees_a_single_missing_mode_of_forty():
    t = targets.get("gmm40")
    d = diagnose(TargetSampler(t, keep=list(range(1, 40)), generator=seeded(4)), t, 10_000)
    assert d.modes_covered == 39 and float(d.mode_mass[0]) == 0.0
    assert d.disagree and any(w.startswith("modes: only 39 of 40") for w in d.warnings)
    assert d.log_z_error == pytest.approx(math.log(39 / 40), abs=1e-6)


def test_a_flow_is_diagnosed_and_its_non_finite_log_prob_is_reported():
    torch.manual_seed(0)
    flow = NormalizingFlow(
        Multivariate(2),
        *(Split(), AffineCoupling(block(1, 1, 8)), Swap(), AffineCoupling(block(1, 1, 8)), Merge()),
    )
    t = targets.get("circular-mixture")
    d = diagnose(flow, t, 5000, generator=seeded(5), grid=50)
    assert d.finite_fraction == 1.0 and 0 < d.ess < 1 and d.broad == "defensive"
    assert d.reverse_kl > 0  # an untrained flow is far from the target
    json.dumps(d.as_dict())

    class Holey:  # a sampler whose density is NaN on part of the box
        def sample_and_log_prob(self, n):
            return flow.sample_and_log_prob(n)

        def log_prob(self, x):
            lp = flow.log_prob(x)
            return torch.where(x[:, 0] > 2.5, math.nan, lp)

    d = diagnose(Holey(), t, 5000, generator=seeded(5), grid=50)
    assert d.finite_fraction == pytest.approx(0.86)  # 7 of 50 grid columns are NaN
    assert any("not finite on 14.00 %" in w for w in d.warnings)


def test_non_finite_samples_are_left_out_and_reported():
    t = targets.get("circular-mixture")
    exact = TargetSampler(t, generator=seeded(8))

    class Overflowing:  # every tenth sample overflows, every tenth log q is NaN
        def sample_and_log_prob(self, n):
            x, log_q = exact.sample_and_log_prob(n)
            x[::10] = math.inf
            log_q[5::10] = math.nan
            return x, log_q

    d = diagnose(Overflowing(), t, 1000, broad=None, generator=seeded(9))
    assert d.nonfinite_samples == 200 and d.broad == "uniform" and abs(d.log_z_error) < 1e-6
    assert any("200 of the flow's samples" in w for w in d.warnings)


def test_funnel10_in_ten_dimensions_uses_the_matched_gaussian():
    t = targets.get("funnel10")
    d = diagnose(TargetSampler(t, generator=seeded(6)), t, 10_000, generator=seeded(7))
    assert d.broad == "defensive" and d.ess > 0.999 and abs(d.log_z_error) < 1e-6
    assert not d.disagree and d.modes_covered is None and d.finite_fraction is None


class _NarrowGaussian:
    """``N(0, s² I)`` as a proposal: far too narrow for the banana, so its weights are
    dominated by a few samples from the shoulders."""

    def __init__(self, scale: float) -> None:
        self.base = torch.distributions.Independent(
            torch.distributions.Normal(torch.zeros(2, dtype=torch.float64), scale), 1
        )

    def sample_and_log_prob(self, n: int):
        x = self.base.sample((n,))
        return x, self.base.log_prob(x)

    def log_prob(self, x):
        return self.base.log_prob(x.double())


def test_a_flow_with_a_tiny_ess_is_flagged_even_when_its_error_bar_covers_the_gap():
    torch.manual_seed(0)
    banana = targets.get("banana")
    d = diagnose(_NarrowGaussian(0.15), banana, 20_000, generator=torch.Generator().manual_seed(0))
    assert d.ess < 0.01
    assert any(w.startswith("the flow's ESS") for w in d.warnings)
    assert d.disagree
