"""The floor under every NLL: the true entropy of the data, and a model's gap to it.

A run's data record names its data set (``flowforge.workbench.data.DATASETS``); when the true
density of that data is known (the moons, eight Gaussians, checkerboard, circles,
rings), ``floor_of`` turns a model's per-point log-likelihoods into the NLL's gap to
the true entropy and the paired estimate of ``KL(truth ‖ model)``, both in nats. Both
estimate the KL divergence when the points are drawn from the true distribution (a
held-out set is). A set without a known density (pinwheel, two spirals, swiss roll) is
scored by ``sample_check``: distances from the model's samples to the held-out points,
next to those of a fresh sample of the data, their floor.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from flowforge.evaluate import NLLEstimate, nll_estimate, sample_points
from flowforge.workbench.data.moons_density import MoonsDensity
from flowforge.workbench.data.registry import DATASETS
from flowforge.workbench.data.standardize import Standardization
from flowforge.workbench.data.true_distribution import TrueDistribution
from flowforge.workbench.scoring.metrics import (
    PairedEstimate,
    SampleReferee,
    SampleScores,
    median_bandwidth,
    nll_gap,
    paired_kl,
)

ENTROPY_SAMPLES = 100_000
ENTROPY_SEED = 0
SAMPLE_POINTS = 5_000  # model samples and held-out points in a sample check


def true_distribution(
    data: Mapping[str, Any], standardization: Standardization
) -> TrueDistribution | None:
    """The true distribution of a run's data (its config's ``data`` record), in model units.

    ``None`` for a data set flowforge does not know, or moons without noise (points on
    two curves, which is no distribution in the plane).
    """
    entry = DATASETS.get(data.get("name"))
    return None if entry is None else entry.distribution(standardization, data)


def true_density(
    data: Mapping[str, Any], standardization: Standardization
) -> TrueDistribution | None:
    """``true_distribution`` when its density is known, else ``None`` (pinwheel, ...)."""
    truth = true_distribution(data, standardization)
    return truth if truth is not None and truth.has_density else None


@lru_cache(maxsize=16)
def true_entropy(
    truth: TrueDistribution, n: int = ENTROPY_SAMPLES, seed: int = ENTROPY_SEED
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
        return describe_truth(self.to_dict())


@dataclass(frozen=True)
class SampleCheck:
    """For data without a known density: distances from ``n`` model samples to the first
    ``n`` held-out points (``model``), and from a fresh sample of the data to the same
    points (``floor``, what a perfect model scores), with the MMD bandwidths used
    (model units). ``note`` says why there is no gap or KL (empty if there is a density)."""

    model: SampleScores
    floor: SampleScores
    n: int
    bandwidths: dict[str, float]
    note: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "no_true_density": self.note,
            "sample_distances": {
                "n": self.n,
                "bandwidths": dict(self.bandwidths),
                "model": self.model.to_dict(),
                "fresh_sample_of_the_data": self.floor.to_dict(),
            },
        }

    def describe(self) -> str:
        """The note, then each distance of the model with the fresh sample's in brackets."""
        return describe_truth(self.to_dict())


def _pm(mean: float, stderr: float) -> str:
    return "inf" if mean == math.inf else f"{mean:.4f} ± {stderr:.4f}"


def _distances(d: Mapping[str, Any]) -> str:
    """``energy 1.2e-03 (3.0e-05), MMD² h=0.14 ...`` from ``SampleCheck.to_dict`` values."""
    model, floor, h = d["model"], d["fresh_sample_of_the_data"], d["bandwidths"]
    parts = [f"energy {model['energy']:.2e} ({floor['energy']:.2e})"]
    parts += [f"MMD² h={h[k]:.2f} {model['mmd2'][k]:.2e} ({floor['mmd2'][k]:.2e})" for k in h]
    parts.append(f"sliced W1 {model['sliced_w1']:.4f} ({floor['sliced_w1']:.4f})")
    return ", ".join(parts)


def describe_truth(scores: Mapping[str, Any]) -> str:
    """One line from ``Floor.to_dict`` or ``SampleCheck.to_dict`` values (a run's
    ``metrics.json`` holds them under ``heldout``); empty when it holds neither."""
    if "gap_to_entropy" in scores:
        return (
            f"gap to the true entropy H = {scores['true_entropy']:.4f} ± "
            f"{scores['true_entropy_stderr']:.4f}: "
            f"{_pm(scores['gap_to_entropy'], scores['gap_stderr'])} nats; KL(truth ‖ model) "
            f"paired on the same points: {_pm(scores['kl_paired'], scores['kl_paired_stderr'])}"
        )
    if "sample_distances" in scores:
        d = scores["sample_distances"]
        distances = (
            f"distances of {d['n']} model samples to {d['n']} of the points scored (in "
            f"brackets: a fresh sample of the data's distribution, the floor): {_distances(d)}"
        )
        return "; ".join(filter(None, [scores["no_true_density"], distances]))
    return ""


def floor_of(
    truth: TrueDistribution, x: Tensor, log_q: Tensor, entropy: NLLEstimate | None = None
) -> Floor:
    """The floor scores of a model with log-likelihoods ``log_q`` (``(n,)``, nats) at ``x``.

    ``x`` is ``(n, 2)`` in model units; ``entropy`` defaults to ``true_entropy(truth)``.
    """
    entropy = entropy or true_entropy(truth)
    log_q = log_q.double()
    return Floor(
        entropy, nll_gap(nll_estimate(log_q), entropy), paired_kl(truth.log_prob(x), log_q)
    )


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """torch's generators (CPU and initialized CUDA devices) seeded for a block, then restored."""
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        yield


def sample_check(
    truth: TrueDistribution,
    points: Tensor,
    model: torch.nn.Module,
    seed: int = 0,
    n: int = SAMPLE_POINTS,
) -> SampleCheck:
    """Distances of ``n`` samples of ``model`` and of ``truth`` to the first ``n`` rows of
    ``points`` (``(m, 2)``, model units; fewer if ``m < n``), all drawn with ``seed``.

    MMD² uses two RBF widths: the median distance between the points, and the truth's
    ``noise_scale`` (its finest feature).
    """
    reference = points[:n].detach().double().cpu()
    n = len(reference)
    bandwidths = {"median": median_bandwidth(reference, seed=seed), "fine": truth.noise_scale}
    referee = SampleReferee(reference, bandwidths)
    with _seeded(seed):
        drawn = sample_points(model, n).detach().double().cpu()
    note = "" if truth.has_density else truth.no_density_message()
    return SampleCheck(
        referee.score(drawn), referee.score(truth.sample(n, seed)), n, bandwidths, note
    )


def truth_scores(
    truth: TrueDistribution,
    x: Tensor,
    log_q: Tensor,
    model: torch.nn.Module,
    *,
    seed: int = 0,
    entropy: NLLEstimate | None = None,
) -> Floor | SampleCheck:
    """How far a model is from the truth at points ``x`` (``(n, 2)``, model units) where its
    log-likelihoods are ``log_q``: the gap and the paired KL (``floor_of``) when the
    truth's density is known, else the sample distances of ``sample_check``."""
    if truth.has_density:
        return floor_of(truth, x, log_q, entropy)
    return sample_check(truth, x, model, seed)


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
