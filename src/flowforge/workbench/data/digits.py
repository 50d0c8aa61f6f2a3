"""scikit-learn's digits: 1,797 images of 8×8 pixels with values 0–16, split once, for good.

``load_digits`` ships inside scikit-learn (no download). The split is fixed: a
permutation drawn from ``numpy.random.default_rng(SPLIT_SEED)`` puts 1,257 images in
the training set, 180 in the validation set and 360 in the test set, whatever seed a
run trains with, so every model is scored on the same test images. Images are rows of
64 pixel values (row-major, as ``load_digits().data``), as floats; labels are digits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from flowforge.workbench.data.points import PointData
from flowforge.workbench.data.standardize import Standardization

IMAGE_SHAPE = (1, 8, 8)
LEVELS = 17  # pixel values 0, 1, ..., 16
SPLIT_SEED = 0
SIZES = {"train": 1257, "validation": 180, "test": 360}


@dataclass(frozen=True)
class ImageFormat:
    """What an image data set's rows are: images of ``shape`` ``(C, H, W)``, flattened,
    with integer pixel values from 0 to ``levels - 1``."""

    shape: tuple[int, int, int]
    levels: int

    @property
    def dims(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]


DIGITS = ImageFormat(IMAGE_SHAPE, LEVELS)


@dataclass(frozen=True)
class DigitSplits:
    """The fixed training, validation and test sets of the digits (pixel values 0–16)."""

    train: PointData
    validation: PointData
    test: PointData


def _load() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float64), digits.target.astype(np.int64)


def identity_standardization(width: int) -> Standardization:
    """The standardization that changes nothing: image models work in pixel units."""
    return Standardization((0.0,) * width, (1.0,) * width)


def digit_splits(dtype: torch.dtype = torch.float32) -> DigitSplits:
    """The fixed split of the 1,797 digits: 1,257 training, 180 validation, 360 test images."""
    images, labels = _load()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(images))
    cuts = np.cumsum([SIZES["train"], SIZES["validation"]])
    parts = np.split(order, cuts)
    standardization = identity_standardization(images.shape[1])
    made = [
        PointData(
            torch.as_tensor(images[rows], dtype=dtype),
            torch.as_tensor(labels[rows]),
            standardization,
        )
        for rows in parts
    ]
    return DigitSplits(*made)


def digits_train_test(
    n_samples: int | None = None, n_heldout: int | None = None, *, seed: int = 0
) -> tuple[PointData, PointData]:
    """The digits' training and test sets, as a run trains and scores on them.

    The split is fixed (``seed`` does not change it), so sizes cannot be chosen:
    ``ValueError`` if ``n_samples`` or ``n_heldout`` is given.
    """
    if n_samples is not None or n_heldout is not None:
        raise ValueError(
            f"the digits have a fixed split ({SIZES['train']} training, "
            f"{SIZES['validation']} validation, {SIZES['test']} test images); "
            "their sizes cannot be chosen"
        )
    splits = digit_splits()
    return splits.train, splits.test
