"""A single Gaussian fitted by maximum likelihood: the floor of sensible density models."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import MultivariateNormal

from flowforge.workbench.baselines.base import Baseline, check_fit_data


class GaussianBaseline(Baseline):
    """``N(mean, cov)`` with the sample mean and the maximum-likelihood (``1/n``) covariance."""

    name = "gaussian"

    def __init__(self) -> None:
        self.dist: MultivariateNormal | None = None

    def fit(self, train: Tensor, validation: Tensor) -> GaussianBaseline:
        check_fit_data(train, validation)
        x = train.double()
        mean = x.mean(0)
        centred = x - mean
        cov = centred.T @ centred / len(x)
        self.dist = MultivariateNormal(mean, covariance_matrix=cov)
        return self

    def _fitted(self) -> MultivariateNormal:
        if self.dist is None:
            raise RuntimeError("call fit() before using the Gaussian baseline")
        return self.dist

    def log_prob(self, x: Tensor) -> Tensor:
        return self._fitted().log_prob(x.double())

    def sample(self, n: int, seed: int = 0) -> Tensor:
        dist = self._fitted()
        g = torch.Generator().manual_seed(seed)
        eps = torch.randn(n, dist.loc.numel(), generator=g, dtype=torch.float64)
        return dist.loc + eps @ dist.scale_tril.T

    def summary(self) -> dict:
        dist = self._fitted()
        return {"mean": dist.loc.tolist(), "covariance": dist.covariance_matrix.tolist()}
