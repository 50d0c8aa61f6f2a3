"""Per-column standardization, kept so held-out data and samples use the training statistics."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class Standardization:
    """The affine map ``x -> (x - mean) / std`` per column, fitted on training data.

    ``mean`` and ``std`` are in the data's original units. ``log_abs_det`` is
    ``log|det ∂(standardized)/∂(original)| = -sum(log std)``, so a density ``q`` over
    standardized points gives ``log p(x) = log q(transform(x)) + log_abs_det`` in
    original units.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} entries but std has {len(self.std)}")
        if not all(s > 0 and math.isfinite(s) for s in self.std):
            raise ValueError(f"standard deviations must be positive and finite, got {self.std}")

    @classmethod
    def fit(cls, points: np.ndarray | Tensor) -> Standardization:
        """Column means and (population) standard deviations of ``points`` (``(n, d)``)."""
        x = np.asarray(points, dtype=np.float64)
        std = x.std(axis=0)
        if np.any(std == 0):
            raise ValueError("a column of the data is constant; it cannot be standardized")
        return cls(tuple(x.mean(axis=0).tolist()), tuple(std.tolist()))

    @property
    def width(self) -> int:
        return len(self.mean)

    @property
    def log_abs_det(self) -> float:
        return -float(np.sum(np.log(self.std)))

    def _stats(self, like: np.ndarray | Tensor) -> tuple:
        if isinstance(like, Tensor):
            kw = {"dtype": like.dtype, "device": like.device}
            return torch.tensor(self.mean, **kw), torch.tensor(self.std, **kw)
        return np.asarray(self.mean), np.asarray(self.std)

    def _check(self, x: np.ndarray | Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.width:
            raise ValueError(
                f"expected points of shape (n, {self.width}), got {tuple(x.shape)}: the data "
                f"must have the {self.width} columns the model was trained on"
            )

    def transform(self, x: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """Original units -> standardized."""
        self._check(x)
        mean, std = self._stats(x)
        return (x - mean) / std

    def inverse_transform(self, z: np.ndarray | Tensor) -> np.ndarray | Tensor:
        """Standardized -> original units."""
        self._check(z)
        mean, std = self._stats(z)
        return z * std + mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> Standardization:
        try:
            return cls(tuple(float(v) for v in d["mean"]), tuple(float(v) for v in d["std"]))
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a valid standardization record: {d!r} ({error})") from None
