"""Standardized point sets: ``PointData``, and the seeds of a training/held-out split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowforge.workbench.data.standardize import Standardization


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


def standardized(
    raw: np.ndarray | Tensor,
    labels: np.ndarray | Tensor,
    standardization: Standardization | None = None,
    dtype: torch.dtype = torch.float32,
) -> PointData:
    """``raw`` points (``(n, d)``, original units) standardized with ``standardization``,
    or with their own column means and standard deviations when it is ``None``."""
    standardization = standardization or Standardization.fit(raw)
    points = standardization.transform(raw)
    return PointData(
        torch.as_tensor(points, dtype=dtype),
        torch.as_tensor(labels, dtype=torch.int64),
        standardization,
    )


def split_seeds(seed: int) -> tuple[int, int]:
    """Independent seeds of a training set and a held-out set, derived from ``seed``."""
    train_seed, heldout_seed = np.random.SeedSequence(seed).generate_state(2)
    return int(train_seed), int(heldout_seed)
