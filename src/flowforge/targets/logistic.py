"""Bayesian logistic regression on scikit-learn's breast cancer data, with a reference chain.

569 tumours, 30 features standardized (mean 0, standard deviation 1), an intercept:
31 coefficients ``β`` with a ``N(0, prior_scale² I)`` prior and the Bernoulli
likelihood ``p(y = 1 | x) = σ(β₀ + x·β₁:)``. The posterior's normalizer is unknown; its
means and standard deviations come from a long HMC chain, made once by
``benchmarks/logistic_reference.py`` and shipped as ``data/logistic_breast_cancer_reference.json``.
Needs scikit-learn (imported when the target is built).
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.errors import InputError
from flowforge.targets.base import Target

REFERENCE = Path(__file__).resolve().parent / "data" / "logistic_breast_cancer_reference.json"


def breast_cancer() -> tuple[Tensor, Tensor]:
    """The design matrix ``(569, 31)`` (a column of ones, then the standardized features)
    and the labels ``(569,)`` (1 = benign), float64."""
    try:
        from sklearn.datasets import load_breast_cancer
    except ImportError as error:
        raise InputError(
            "the logistic-breast-cancer target needs scikit-learn: "
            "pip install 'flowforge[workbench]'"
        ) from error
    features, labels = load_breast_cancer(return_X_y=True)
    x = torch.as_tensor(features, dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0, unbiased=False)
    design = torch.cat([torch.ones(len(x), 1, dtype=torch.float64), x], 1)
    return design, torch.as_tensor(labels, dtype=torch.float64)


class LogisticRegression(Target):
    """The posterior of a Bayesian logistic regression on the breast cancer data.

    ``log_prob(β) = Σᵢ (yᵢ ηᵢ - log(1 + e^ηᵢ)) - |β|² / (2 prior_scale²)``, ``η = Xβ``.
    ``reference`` holds the shipped chain's ``mean``, ``std``, ``mcse_mean``, ``mcse_std``
    (tensors of shape ``(31,)``) and its ``settings``, for the default prior only.

    Example:
        >>> t = LogisticRegression()
        >>> t.dim, t.log_normalizer, t.reference["mean"].shape
        (31, None, torch.Size([31]))
    """

    name = "logistic-breast-cancer"

    def __init__(self, prior_scale: float = 1.0) -> None:
        if not prior_scale > 0:
            raise InputError(f"prior_scale must be positive, got {prior_scale}")
        self.design, self.labels = breast_cancer()
        self.dim = self.design.shape[1]
        self.prior_scale = float(prior_scale)

    @cached_property
    def reference(self) -> dict | None:
        """The shipped chain's moments for the default prior (``None`` for another prior)."""
        return load_reference() if self.prior_scale == 1.0 and REFERENCE.exists() else None

    def _log_prob(self, beta: Tensor) -> Tensor:
        eta = beta @ self.design.to(beta).T
        likelihood = (self.labels.to(beta) * eta - F.softplus(eta)).sum(1)
        return likelihood - 0.5 * (beta**2).sum(1) / self.prior_scale**2

    def laplace(self, iterations: int = 50) -> tuple[Tensor, Tensor]:
        """The posterior's mode and the inverse Hessian there (Newton's method), float64."""
        beta = torch.zeros(self.dim, dtype=torch.float64)
        prior = torch.eye(self.dim, dtype=torch.float64) / self.prior_scale**2
        for _ in range(iterations):
            prob = torch.sigmoid(self.design @ beta)
            grad = self.design.T @ (self.labels - prob) - prior @ beta
            hess = (self.design.T * (prob * (1 - prob))) @ self.design + prior
            step = torch.linalg.solve(hess, grad)
            beta = beta + step
            if float(step.abs().max()) < 1e-12:
                break
        prob = torch.sigmoid(self.design @ beta)
        hess = (self.design.T * (prob * (1 - prob))) @ self.design + prior
        return beta, torch.linalg.inv(hess)


def load_reference(path: Path = REFERENCE) -> dict:
    """The shipped reference chain's moments (tensors) and settings."""
    raw = json.loads(Path(path).read_text())
    keys = ("mean", "std", "mcse_mean", "mcse_std")
    out = {k: torch.tensor(raw[k], dtype=torch.float64) for k in keys}
    out["settings"] = raw["settings"]
    return out
