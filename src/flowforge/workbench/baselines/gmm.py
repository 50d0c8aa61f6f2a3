"""scikit-learn's ``GaussianMixture``, with the number of components chosen on validation data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from flowforge.workbench.baselines.base import Baseline, check_fit_data

COMPONENTS = (1, 2, 4, 8, 12, 16, 24, 32)


class MixtureBaseline(Baseline):
    """A full-covariance Gaussian mixture; ``components`` are the candidates tried.

    Candidates are fitted by EM on the training data (seeded), in increasing order,
    until ``patience`` in a row fail to improve the validation NLL; the one with the
    best validation NLL is kept. ``scores`` maps each tried candidate to its
    validation NLL (nats per point).
    """

    name = "gmm"

    def __init__(
        self,
        components: Sequence[int] = COMPONENTS,
        seed: int = 0,
        max_iter: int = 200,
        patience: int = 2,
    ) -> None:
        if not components or any(int(k) != k or k < 1 for k in components):
            raise ValueError(f"components must be positive integers, got {list(components)}")
        self.components = tuple(int(k) for k in components)
        self.seed = seed
        self.max_iter = max_iter
        self.patience = patience
        self.model = None
        self.scores: dict[int, float] = {}

    def fit(self, train: Tensor, validation: Tensor) -> MixtureBaseline:
        from sklearn.mixture import GaussianMixture

        check_fit_data(train, validation)
        x, v = train.double().numpy(), validation.double().numpy()
        best, worse = None, 0
        for k in sorted(self.components):
            if k > len(x) or worse >= self.patience:
                break
            gm = GaussianMixture(k, random_state=self.seed, max_iter=self.max_iter).fit(x)
            self.scores[k] = -float(gm.score(v))
            improved = best is None or self.scores[k] < self.scores[best.n_components]
            best, worse = (gm, 0) if improved else (best, worse + 1)
        self.model = best
        return self

    def _fitted(self):
        if self.model is None:
            raise RuntimeError("call fit() before using the mixture baseline")
        return self.model

    def log_prob(self, x: Tensor) -> Tensor:
        return torch.from_numpy(self._fitted().score_samples(x.double().numpy()))

    def sample(self, n: int, seed: int = 0) -> Tensor:
        gm = self._fitted()
        rng = np.random.default_rng(seed)
        counts = rng.multinomial(n, gm.weights_)
        parts = [
            rng.multivariate_normal(mean, cov, size=c)
            for mean, cov, c in zip(gm.means_, gm.covariances_, counts)
        ]
        x = np.concatenate(parts)[rng.permutation(n)]
        return torch.from_numpy(x)

    def summary(self) -> dict:
        return {
            "components": int(self._fitted().n_components),
            "validation_nll": {str(k): v for k, v in self.scores.items()},
        }
