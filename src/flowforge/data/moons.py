"""The noisy two-moons data of the course notebook, standardized per column."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowforge.data.standardize import Standardization


@dataclass(frozen=True)
class PointData:
    """Standardized points with their labels and the standardization that made them.

    ``points`` is ``(n, d)`` in standardized units, ``labels`` is ``(n,)`` (int64),
    ``standardization`` maps original units to standardized ones.
    """

    points: Tensor
    labels: Tensor
    standardization: Standardization

    def __len__(self) -> int:
        return len(self.points)

    @property
    def original_points(self) -> Tensor:
        """The points in the data's original units."""
        return self.standardization.inverse_transform(self.points.double()).to(self.points.dtype)

    def data_loader(self, batch_size: int = 128, shuffle: bool = False, **kwargs):
        """A ``DataLoader`` of ``(x, label)`` batches, like the notebook's ``moon_data_loader``."""
        dataset = torch.utils.data.TensorDataset(self.points, self.labels)
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=shuffle, **kwargs
        )


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
    standardization = standardization or Standardization.fit(raw)
    points = standardization.transform(raw)
    return PointData(
        torch.as_tensor(points, dtype=dtype),
        torch.as_tensor(labels, dtype=torch.int64),
        standardization,
    )


def two_moons_splits(
    n_samples: int = 100_000,
    n_heldout: int = 20_000,
    noise: float = 0.1,
    seed: int = 0,
) -> tuple[PointData, PointData]:
    """A training set and an independent held-out set standardized with its statistics."""
    train_seed, heldout_seed = np.random.SeedSequence(seed).generate_state(2)
    train = two_moons(n_samples, noise, seed=int(train_seed))
    heldout = two_moons(
        n_heldout, noise, seed=int(heldout_seed), standardization=train.standardization
    )
    return train, heldout
