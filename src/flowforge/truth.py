"""The floor under every NLL on moons data: the true entropy, and a model's gap to it.

A run's data set names its generator (``two_moons`` with a noise level); when the true
density of that data is known (``MoonsDensity``), ``floor_of`` turns a model's
per-point log-likelihoods into the NLL's gap to the true entropy and the paired
estimate of ``KL(truth ‖ model)``, both in nats. Both estimate the KL divergence when
the points are drawn from the moons distribution (a held-out set is).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from flowforge.data.moons_density import MoonsDensity, outer_fraction
from flowforge.data.standardize import Standardization
from flowforge.evaluate import NLLEstimate, nll_estimate
from flowforge.metrics import PairedEstimate, nll_gap, paired_kl

ENTROPY_SAMPLES = 100_000
ENTROPY_SEED = 0


def true_density(data: Mapping[str, Any], standardization: Standardization) -> MoonsDensity | None:
    """The true distribution of a run's data (its config's ``data`` record), in model units.

    ``None`` when flowforge knows no density for it: another data set, or moons without
    noise (points on two curves, which have no density in the plane).
    """
    if data.get("name") != "two_moons" or not float(data.get("noise", 0.0)) > 0:
        return None
    outer = outer_fraction(int(data.get("n_samples", 2)))
    return MoonsDensity(float(data["noise"]), standardization, outer)


@lru_cache(maxsize=16)
def true_entropy(
    truth: MoonsDensity, n: int = ENTROPY_SAMPLES, seed: int = ENTROPY_SEED
) -> NLLEstimate:
    """``truth.entropy(n, seed)``, remembered: one Monte Carlo estimate per distribution."""
    return truth.entropy(n, seed)


@dataclass(frozen=True)
class Floor:
    """The true entropy ``H``, a model's NLL minus ``H``, and the paired KL estimate (nats)."""

    entropy: NLLEstimate
    gap: PairedEstimate
    kl: PairedEstimate

    def to_dict(self) -> dict[str, float]:
        return {
            "true_entropy": self.entropy.mean,
            "true_entropy_stderr": self.entropy.stderr,
            "gap_to_entropy": self.gap.mean,
            "gap_stderr": self.gap.stderr,
            "kl_paired": self.kl.mean,
            "kl_paired_stderr": self.kl.stderr,
        }

    def describe(self) -> str:
        """One line: the gap to ``H`` and the paired KL, each with its standard error."""
        return (
            f"gap to the true entropy H = {self.entropy.mean:.4f} ± {self.entropy.stderr:.4f}: "
            f"{_pm(self.gap)} nats; KL(truth ‖ model) paired on the same points: {_pm(self.kl)}"
        )


def _pm(e: PairedEstimate) -> str:
    return "inf" if e.mean == float("inf") else f"{e.mean:.4f} ± {e.stderr:.4f}"


def floor_of(
    truth: MoonsDensity, x: Tensor, log_q: Tensor, entropy: NLLEstimate | None = None
) -> Floor:
    """The floor scores of a model with log-likelihoods ``log_q`` (``(n,)``, nats) at ``x``.

    ``x`` is ``(n, 2)`` in model units; ``entropy`` defaults to ``true_entropy(truth)``.
    """
    entropy = entropy or true_entropy(truth)
    log_q = log_q.double()
    return Floor(
        entropy, nll_gap(nll_estimate(log_q), entropy), paired_kl(truth.log_prob(x), log_q)
    )


def given_label(truth: MoonsDensity, label: int) -> MoonsDensity:
    """One moon's distribution, ``p(x | label)``: label 0 is the outer moon, 1 the inner
    one, as ``make_moons`` labels them."""
    if label not in (0, 1):
        raise ValueError(f"the moons have labels 0 and 1, got {label}")
    return replace(truth, outer=1.0 if label == 0 else 0.0)


def conditional_floor_of(truth: MoonsDensity, x: Tensor, labels: Tensor, log_q: Tensor) -> Floor:
    """The floor scores of a model of ``p(x | label)`` with log-likelihoods ``log_q`` at ``x``.

    Each point is scored against its own moon's density; the floor is the conditional
    entropy ``H(X | label)``, the labels' shares times each moon's entropy.
    """
    log_p = torch.empty(len(x), dtype=torch.float64)
    mean, variance = 0.0, 0.0
    for label in (0, 1):
        mask = labels == label
        moon = given_label(truth, label)
        log_p[mask] = moon.log_prob(x[mask]) if mask.any() else log_p[mask]
        share, h = float(mask.double().mean()), true_entropy(moon)
        mean, variance = mean + share * h.mean, variance + (share * h.stderr) ** 2
    entropy = NLLEstimate(mean, math.sqrt(variance), ENTROPY_SAMPLES)
    log_q = log_q.double()
    return Floor(entropy, nll_gap(nll_estimate(log_q), entropy), paired_kl(log_p, log_q))
