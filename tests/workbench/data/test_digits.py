"""scikit-learn's digits: a fixed, disjoint training/validation/test split of all 1,797 images."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from flowforge.workbench.data import DATASETS, DIGITS, digit_splits


def _rows(images: np.ndarray, labels: np.ndarray) -> list[tuple]:
    return sorted(tuple(row) + (int(label),) for row, label in zip(images, labels))


def test_the_split_is_a_partition_of_all_digits():
    splits = digit_splits()
    parts = (splits.train, splits.validation, splits.test)
    assert [len(p) for p in parts] == [1257, 180, 360]
    joined = _rows(
        np.concatenate([p.points.numpy() for p in parts]),
        np.concatenate([p.labels.numpy() for p in parts]),
    )
    digits = load_digits()
    assert joined == _rows(digits.data.astype(np.float32), digits.target)
    for part in parts:
        assert part.points.shape[1] == DIGITS.dims == 64
        assert torch.equal(part.points, part.points.round())
        assert part.points.min() == 0 and part.points.max() == 16
        assert set(part.labels.tolist()) == set(range(10))


def test_the_split_is_fixed_whatever_the_seed():
    a, b = digit_splits(), digit_splits()
    assert torch.equal(a.test.points, b.test.points)
    train, test = DATASETS["digits"].splits(seed=5)
    assert torch.equal(train.points, a.train.points) and torch.equal(test.points, a.test.points)
    assert train.standardization.log_abs_det == 0  # pixel units, as the models take them


def test_the_digits_are_registered_as_images_with_no_sizes():
    entry = DATASETS["digits"]
    assert entry.image.shape == (1, 8, 8) and entry.image.levels == 17
    assert entry.distribution(None, {"name": "digits"}) is None
    with pytest.raises(ValueError, match="fixed split .1257 training, 180 validation, 360 test"):
        entry.splits(100, 10)
