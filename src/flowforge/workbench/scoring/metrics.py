"""Distances between samples, and likelihood-based scores against a known true density.

Sample-based (for any model that can sample, a GAN included):

- ``energy_distance(x, y) = 2 E|X − Y| − E|X − X'| − E|Y − Y'|`` (Székely), in model
  units, ≥ 0 and 0 only for equal distributions;
- ``mmd2(x, y, h)``, the squared maximum mean discrepancy with the RBF kernel
  ``k(a, b) = exp(−|a − b|² / (2 h²))``;
- ``sliced_wasserstein(x, y)``, the 1-Wasserstein distance of 1-D projections,
  averaged over directions.

Energy distance and MMD² are unbiased U-statistics (within-sample sums skip the
diagonal), so two samples of one distribution score 0 on average and may score
slightly below 0. ``SampleReferee`` scores many samples against one reference set,
computing the reference's own terms once.

Likelihood-based: ``paired_kl(log_p, log_q)`` estimates ``KL(p ‖ q)`` as the mean of
``log p − log q`` over points drawn from ``p``, with its standard error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.evaluate import NLLEstimate, nll_estimate

CHUNK = 64  # rows per block: a 64 x 10,000 block of float64 stays in cache


def _as_points(x: Tensor, what: str) -> Tensor:
    x = torch.as_tensor(x)
    if x.dim() != 2 or len(x) < 2:
        raise ValueError(f"{what} must be a tensor of shape (n >= 2, d), got {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{what} contains NaN or infinite values")
    return x.double()


@dataclass(frozen=True)
class PairSums:
    """Sums over all pairs ``(a_i, b_j)`` of ``|a_i − b_j|`` and of each RBF kernel."""

    distance: float
    kernels: tuple[float, ...]
    pairs: int


def _block_sums(d2: Tensor, bandwidths: tuple[float, ...]) -> tuple[float, list[float]]:
    """Sum of distances and of each kernel over a block of squared distances (``inf`` = skip)."""
    finite = torch.isfinite(d2)
    distance = float(torch.where(finite, d2, 0.0).sqrt_().sum())
    kernels = [float(torch.exp(d2 / (-2 * h * h)).sum()) for h in bandwidths]
    return distance, kernels


def pair_sums(a: Tensor, b: Tensor | None, bandwidths: tuple[float, ...]) -> PairSums:
    """Sums of ``|a_i − b_j|`` and of each RBF kernel over all pairs of rows, in blocks.

    With ``b=None`` the pairs are those of distinct rows of ``a`` (``i != j``), each
    block computed once for ``i < j`` and counted twice.
    """
    own = b is None
    dist_sum, kernel_sums = 0.0, [0.0] * len(bandwidths)
    for start in range(0, len(a), CHUNK):
        rows = a[start : start + CHUNK]
        d2 = torch.cdist(rows, a[start:] if own else b).square_()
        if own:  # keep j > i only
            i = torch.arange(len(rows))[:, None]
            d2.masked_fill_(torch.arange(d2.shape[1])[None, :] <= i, math.inf)
        distance, kernels = _block_sums(d2, bandwidths)
        dist_sum += distance
        kernel_sums = [s + k for s, k in zip(kernel_sums, kernels)]
    if own:
        return PairSums(2 * dist_sum, tuple(2 * k for k in kernel_sums), len(a) * (len(a) - 1))
    return PairSums(dist_sum, tuple(kernel_sums), len(a) * len(b))


def _own_sums(x: Tensor, bandwidths: tuple[float, ...]) -> PairSums:
    return pair_sums(x, None, bandwidths)


def _combine(xx: PairSums, yy: PairSums, xy: PairSums) -> tuple[float, tuple[float, ...]]:
    """Energy distance and MMD² (one per bandwidth) from the three pair sums."""
    energy = 2 * xy.distance / xy.pairs - xx.distance / xx.pairs - yy.distance / yy.pairs
    mmds = tuple(
        kxx / xx.pairs + kyy / yy.pairs - 2 * kxy / xy.pairs
        for kxx, kyy, kxy in zip(xx.kernels, yy.kernels, xy.kernels)
    )
    return energy, mmds


def energy_distance(x: Tensor, y: Tensor) -> float:
    """Unbiased energy distance ``2E|X−Y| − E|X−X'| − E|Y−Y'|`` of ``(n, d)`` and ``(m, d)``."""
    x, y = _as_points(x, "x"), _as_points(y, "y")
    return _combine(_own_sums(x, ()), _own_sums(y, ()), pair_sums(x, y, ()))[0]


def mmd2(x: Tensor, y: Tensor, bandwidth: float) -> float:
    """Unbiased MMD² between ``x`` and ``y`` with the RBF kernel of width ``bandwidth``."""
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be positive, got {bandwidth}")
    x, y = _as_points(x, "x"), _as_points(y, "y")
    h = (float(bandwidth),)
    return _combine(_own_sums(x, h), _own_sums(y, h), pair_sums(x, y, h))[1][0]


def median_bandwidth(x: Tensor, max_points: int = 2000, seed: int = 0) -> float:
    """The median heuristic: the median distance between distinct rows of ``x``.

    Uses at most ``max_points`` rows (a seeded random subset) to bound the cost.
    """
    x = _as_points(x, "x")
    if len(x) > max_points:
        x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:max_points]]
    d = torch.pdist(x)
    return float(d.median())


def directions(d: int, count: int = 180, seed: int = 0) -> Tensor:
    """Unit vectors ``(count, d)`` for slicing: evenly spaced half-circle angles when
    ``d == 2`` (a quadrature of the average over directions), else seeded random ones.
    """
    if d == 2:
        angles = math.pi * (torch.arange(count, dtype=torch.float64) + 0.5) / count
        return torch.stack([torch.cos(angles), torch.sin(angles)], 1)
    g = torch.Generator().manual_seed(seed)
    v = torch.randn(count, d, generator=g, dtype=torch.float64)
    return v / torch.linalg.vector_norm(v, dim=1, keepdim=True)


def wasserstein_1d(a: Tensor, b: Tensor) -> Tensor:
    """W1 between the empirical distributions of rows of ``a`` (``(k, n)``) and ``b`` (``(k, m)``).

    ``∫ |F_a(t) − F_b(t)| dt`` for each of the ``k`` rows; returns ``(k,)``.
    """
    a, b = a.sort(1).values, b.sort(1).values
    grid = torch.cat([a, b], 1).sort(1).values
    inner = grid[:, :-1].contiguous()
    f_a = torch.searchsorted(a, inner, right=True).double() / a.shape[1]
    f_b = torch.searchsorted(b, inner, right=True).double() / b.shape[1]
    return ((f_a - f_b).abs() * grid.diff(dim=1)).sum(1)


def sliced_wasserstein(x: Tensor, y: Tensor, count: int = 180, seed: int = 0) -> float:
    """Sliced 1-Wasserstein distance: W1 of projections, averaged over ``count`` directions."""
    x, y = _as_points(x, "x"), _as_points(y, "y")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has width {x.shape[1]} but y has width {y.shape[1]}")
    u = directions(x.shape[1], count, seed)
    return float(wasserstein_1d(u @ x.T, u @ y.T).mean())


@dataclass(frozen=True)
class SampleScores:
    """Distances from a sample to the reference: energy, MMD² per named bandwidth, SW1."""

    energy: float
    mmd2: dict[str, float]
    sliced_w1: float

    def to_dict(self) -> dict:
        return {"energy": self.energy, "mmd2": dict(self.mmd2), "sliced_w1": self.sliced_w1}


class SampleReferee:
    """Scores samples against one fixed reference set with fixed bandwidths.

    ``bandwidths`` maps a name (e.g. ``"median"``, ``"fine"``) to an RBF width in model
    units; every sample is scored with the same kernels, so scores are comparable.
    """

    def __init__(self, reference: Tensor, bandwidths: dict[str, float], directions: int = 180):
        if any(not h > 0 for h in bandwidths.values()):
            raise ValueError(f"bandwidths must be positive, got {bandwidths}")
        self.reference = _as_points(reference, "reference")
        self.names = tuple(bandwidths)
        self.widths = tuple(float(h) for h in bandwidths.values())
        self.directions = directions
        self._own = _own_sums(self.reference, self.widths)

    def score(self, sample: Tensor) -> SampleScores:
        """All distances between ``sample`` (``(n, d)``) and the reference."""
        x = _as_points(sample, "sample")
        if x.shape[1] != self.reference.shape[1]:
            raise ValueError(
                f"sample has width {x.shape[1]}, the reference {self.reference.shape[1]}"
            )
        energy, mmds = _combine(
            _own_sums(x, self.widths), self._own, pair_sums(x, self.reference, self.widths)
        )
        sw = sliced_wasserstein(x, self.reference, self.directions)
        return SampleScores(energy, dict(zip(self.names, mmds)), sw)


class PairedEstimate(NLLEstimate):
    """A mean of per-point differences in nats (a KL divergence or a gap to the entropy),
    its standard error, ``n``, and how many points had ``log q = −inf`` (which make the
    mean infinite). The fields and their meaning are ``NLLEstimate``'s."""


def paired_kl(log_p: Tensor, log_q: Tensor) -> PairedEstimate:
    """``KL(p ‖ q) ≈ mean(log p(x) − log q(x))`` over points ``x ~ p``, with its standard error.

    Both are ``(n,)`` log-densities in nats at the same points. Pairing cancels the
    point-to-point variation both densities share, so the error is far smaller than
    that of a difference of two mean NLLs.
    """
    log_p, log_q = torch.as_tensor(log_p).double(), torch.as_tensor(log_q).double()
    if log_p.shape != log_q.shape or log_p.dim() != 1 or len(log_p) < 2:
        raise ValueError(
            f"need two (n,) tensors of log-densities at the same n >= 2 points, got "
            f"{tuple(log_p.shape)} and {tuple(log_q.shape)}"
        )
    if not bool(torch.isfinite(log_p).all()):
        raise ValueError("log_p must be finite: the points must be drawn from p")
    # The mean of log p − log q is the "NLL" of the log-ratio log q − log p.
    return PairedEstimate(**vars(nll_estimate(log_q - log_p)))


def nll_gap(nll: NLLEstimate, entropy: NLLEstimate) -> PairedEstimate:
    """A model's held-out NLL minus the true entropy (both nats), an unpaired estimate of
    ``KL(p ‖ q)``; the standard errors add in quadrature."""
    if math.isinf(nll.mean):
        return PairedEstimate(math.inf, math.nan, nll.n, nll.n_outside)
    stderr = math.hypot(nll.stderr, entropy.stderr)
    return PairedEstimate(nll.mean - entropy.mean, stderr, nll.n)
