"""The noisy two-moons data of the course notebook, standardized per column."""

from __future__ import annotations

import torch

from flowforge.workbench.data.points import PointData, split_seeds, standardized
from flowforge.workbench.data.standardize import Standardization

__all__ = ["PointData", "two_moons", "two_moons_splits"]


def two_moons(
    n_samples: int = 100_000,
    noise: float = 0.1,
    *,
    seed: int | None = None,
    standardization: Standardization | None = None,
    dtype: torch.dtype = torch.float32,
) -> PointData:
    """The notebook's data (section 10.5): scikit-learn's noisy two moons, standardized.

    Each column is standardized with ``standardization`` when given (pass the training
    set's to standardize a held-out set with the training statistics), else with this
    sample's own mean and standard deviation, as the notebook does. ``seed`` makes
    the draw reproducible.
    """
    from sklearn.datasets import make_moons

    if n_samples < 2:
        raise ValueError(f"n_samples must be at least 2, got {n_samples}")
    if not noise >= 0:
        raise ValueError(f"noise must be non-negative, got {noise}")
    raw, labels = make_moons(n_samples=n_samples, noise=noise, random_state=seed)
    return standardized(raw, labels, standardization, dtype)


def two_moons_splits(
    n_samples: int = 100_000,
    n_heldout: int = 20_000,
    noise: float = 0.1,
    seed: int = 0,
) -> tuple[PointData, PointData]:
    """A training set and an independent held-out set standardized with its statistics."""
    train_seed, heldout_seed = split_seeds(seed)
    train = two_moons(n_samples, noise, seed=train_seed)
    heldout = two_moons(n_heldout, noise, seed=heldout_seed, standardization=train.standardization)
    return train, heldout
