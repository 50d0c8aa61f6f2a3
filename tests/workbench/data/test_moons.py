import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from flowforge import two_moons
from flowforge.workbench.data import Standardization, two_moons_splits


def test_notebook_data_standardized_per_column():
    data = two_moons(100_000, seed=0)
    assert data.points.shape == (100_000, 2) and data.points.dtype == torch.float32
    assert set(data.labels.unique().tolist()) == {0, 1}
    torch.testing.assert_close(
        data.points.double().mean(0), torch.zeros(2).double(), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(
        data.points.double().std(0, unbiased=False), torch.ones(2).double(), atol=1e-6, rtol=0
    )


def test_same_points_as_the_notebook_recipe():
    raw, _ = make_moons(n_samples=1000, noise=0.1, random_state=3)
    expected = (raw - raw.mean(0)) / raw.std(0)
    np.testing.assert_allclose(two_moons(1000, seed=3).points.numpy(), expected, atol=1e-6)


def test_heldout_uses_training_statistics():
    train, heldout = two_moons_splits(5000, 3000, seed=1)
    assert heldout.standardization == train.standardization
    raw = heldout.original_points.double()
    own = Standardization.fit(raw)
    assert own != train.standardization  # a different sample has different statistics
    torch.testing.assert_close(
        train.standardization.transform(raw).float(), heldout.points, atol=1e-5, rtol=0
    )


def test_seed_makes_draws_reproducible():
    a, b = two_moons(100, seed=7), two_moons(100, seed=7)
    assert torch.equal(a.points, b.points)
    assert not torch.equal(a.points, two_moons(100, seed=8).points)


def test_standardization_round_trip_and_log_det():
    s = Standardization((1.0, -2.0), (2.0, 0.5))
    x = torch.randn(5, 2, dtype=torch.float64)
    torch.testing.assert_close(s.inverse_transform(s.transform(x)), x)
    assert s.log_abs_det == pytest.approx(-math.log(2.0) - math.log(0.5))
    assert Standardization.from_dict(s.to_dict()) == s


def test_standardization_errors():
    with pytest.raises(ValueError, match="positive"):
        Standardization((0.0,), (0.0,))
    with pytest.raises(ValueError, match=r"shape \(n, 2\), got \(3, 3\)"):
        Standardization((0.0, 0.0), (1.0, 1.0)).transform(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="constant"):
        Standardization.fit(np.ones((4, 2)))
    with pytest.raises(ValueError, match="not a valid standardization"):
        Standardization.from_dict({"mean": [0.0]})


def test_data_loader_yields_point_label_pairs():
    loader = two_moons(300, seed=0).data_loader(batch_size=128)
    x, y = next(iter(loader))
    assert x.shape == (128, 2) and y.shape == (128,)
