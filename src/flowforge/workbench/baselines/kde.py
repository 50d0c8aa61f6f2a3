"""scikit-learn's Gaussian ``KernelDensity``, with the bandwidth chosen on validation data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from flowforge.workbench.baselines.base import Baseline, check_fit_data

BANDWIDTHS = tuple(float(h) for h in np.geomspace(0.01, 0.32, 11))
SURFACE_ATOL = 1e-6


class KernelDensityBaseline(Baseline):
    """A Gaussian kernel density estimate over the training points.

    The bandwidths (model units) are tried in increasing order, each scored by its
    mean validation NLL (``scores``), until one is worse than the one before: the
    validation NLL of a kernel estimate is unimodal in the bandwidth, and the wide
    kernels that follow are the slowest to evaluate. The best one is kept. ``rtol`` is
    scikit-learn's relative tolerance for the tree-based sums (1e-6 moves a
    log-density by at most about 1e-6 nats).
    """

    name = "kde"

    def __init__(self, bandwidths: Sequence[float] = BANDWIDTHS, rtol: float = 1e-6) -> None:
        if not bandwidths or any(not h > 0 for h in bandwidths):
            raise ValueError(f"bandwidths must be positive, got {list(bandwidths)}")
        self.bandwidths = tuple(float(h) for h in bandwidths)
        self.rtol = rtol
        self.model = None
        self.scores: dict[float, float] = {}

    def fit(self, train: Tensor, validation: Tensor) -> KernelDensityBaseline:
        from sklearn.neighbors import KernelDensity

        check_fit_data(train, validation)
        x, v = train.double().numpy(), validation.double().numpy()
        best, previous = None, float("inf")
        for h in sorted(self.bandwidths):
            kde = KernelDensity(bandwidth=h, rtol=self.rtol).fit(x)
            self.scores[h] = -float(kde.score_samples(v).mean())
            if best is None or self.scores[h] < self.scores[best.bandwidth]:
                best = kde
            if self.scores[h] > previous:
                break
            previous = self.scores[h]
        self.model = best
        return self

    def _fitted(self):
        if self.model is None:
            raise RuntimeError("call fit() before using the kernel density baseline")
        return self.model

    def log_prob(self, x: Tensor) -> Tensor:
        return torch.from_numpy(self._fitted().score_samples(x.double().numpy()))

    def surface(self, x: Tensor) -> Tensor:
        """The log-density for a figure: densities below ``SURFACE_ATOL`` are approximate.

        Far from the data the tree needs many nodes to meet a relative tolerance; an
        absolute one on the density keeps a plot of the plane fast.
        """
        kde = self._fitted()
        kde.set_params(atol=SURFACE_ATOL)
        try:
            return self.log_prob(x)
        finally:
            kde.set_params(atol=0.0)

    def sample(self, n: int, seed: int = 0) -> Tensor:
        return torch.from_numpy(self._fitted().sample(n, random_state=seed).astype(np.float64))

    def summary(self) -> dict:
        return {
            "bandwidth": float(self._fitted().bandwidth),
            "validation_nll": {f"{h:.4g}": s for h, s in self.scores.items()},
        }
