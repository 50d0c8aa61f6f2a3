"""The interface every model in a comparison offers: fit, sample, and a likelihood if it has one."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from flowforge.errors import NoLikelihoodError


class Baseline(ABC):
    """A model the comparison trains and scores, flows included.

    Points are ``(n, width)`` tensors in model (standardized) units; ``log_prob``
    returns ``(n,)`` float64 log-densities in nats; ``sample(n, seed)`` returns
    ``(n, width)`` float64 points and is reproducible for a given ``seed``.
    ``surface(x)`` is what a figure draws over the plane: the log-density, or for a
    GAN its discriminator's probability that ``x`` is real (named by ``surface_label``).
    ``summary()`` reports what fitting chose or saw (a JSON-ready dict).
    """

    name: str = "model"
    has_likelihood: bool = True
    surface_label: str = "log-density (nats)"

    @abstractmethod
    def fit(self, train: Tensor, validation: Tensor) -> Baseline:
        """Fit on ``train``; ``validation`` chooses hyperparameters or the best epoch."""

    @abstractmethod
    def sample(self, n: int, seed: int = 0) -> Tensor:
        """``n`` draws from the fitted model: ``(n, width)`` float64."""

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density of each row of ``x`` in nats: ``(n,)`` float64."""
        raise NoLikelihoodError(f"{self.name} defines no density; it can only be sampled")

    def surface(self, x: Tensor) -> Tensor:
        """The quantity drawn over the plane at the rows of ``x``: ``(n,)`` float64."""
        return self.log_prob(x)

    def summary(self) -> dict:
        """What fitting chose or observed, as plain JSON values."""
        return {}


def check_fit_data(train: Tensor, validation: Tensor) -> None:
    """Raise ``ValueError`` unless both are finite ``(n, d)`` tensors of the same width."""
    for what, x in (("training data", train), ("validation data", validation)):
        if not isinstance(x, Tensor) or x.dim() != 2 or len(x) < 2:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"{what} must be a tensor of shape (n >= 2, width), got {shape}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{what} contains NaN or infinite values; remove them first")
    if train.shape[1] != validation.shape[1]:
        raise ValueError(
            f"training data has width {train.shape[1]} but validation data {validation.shape[1]}"
        )


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Run a block with torch's global generator seeded, restoring its state afterwards.

    Network initializers draw from the global generator; this keeps them reproducible
    without changing the caller's random state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
