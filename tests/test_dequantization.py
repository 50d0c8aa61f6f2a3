"""Uniform dequantization, the discrete log-probability bound and bits per dimension."""

import math

import pytest
import torch
from torch.distributions import Uniform

from flowforge import Multivariate
from flowforge.dequantization import DequantizedFlow, bits_per_dim, dequantize
from flowforge.layers import Flatten, Logit, Unflatten


def uniform_model(levels: int = 17, dims: int = 64) -> DequantizedFlow:
    return DequantizedFlow(
        Multivariate(dims, Uniform(0.0, 1.0)), levels=levels, image_shape=(1, dims, 1)
    )


def test_a_uniform_density_scores_exactly_log2_levels():
    model = uniform_model().double().eval()
    k = torch.randint(0, 17, (50, 64)).double()
    nll = -model.log_prob(k)
    torch.testing.assert_close(nll, torch.full((50,), 64 * math.log(17), dtype=torch.float64))
    bpd = bits_per_dim(nll, 64)
    assert torch.allclose(bpd, torch.tensor(math.log2(17), dtype=torch.float64), atol=1e-12)
    assert bits_per_dim(64 * math.log(17), 64) == pytest.approx(math.log2(17), rel=1e-15)


def test_bits_per_dim_of_a_cube_density():
    # A density of 2**64 on the cube (NLL_cube = -64 ln 2) saves one bit per pixel.
    nll_cube = -64 * math.log(2)
    assert bits_per_dim(nll_cube + 64 * math.log(17), 64) == pytest.approx(math.log2(17) - 1)
    with pytest.raises(ValueError, match="dims must be positive"):
        bits_per_dim(1.0, 0)


def test_dequantized_values_stay_in_their_pixel_cell():
    k = torch.arange(17.0).repeat(200, 1)
    y = dequantize(k, 17)
    assert (y >= k / 17).all() and (y < (k + 1) / 17).all()
    assert y.min() >= 0 and y.max() < 1
    spread = (y * 17 - k).flatten()
    assert 0.45 < float(spread.mean()) < 0.55 and float(spread.std()) > 0.25  # ≈ U(0, 1)


def test_log_prob_is_the_flows_density_at_the_dequantized_point():
    torch.manual_seed(0)
    model = DequantizedFlow(
        Multivariate(4), Logit(0.05), levels=5, image_shape=(1, 2, 2), noise_seed=7
    ).double()
    model.eval()
    k = torch.tensor([[0.0, 1.0, 4.0, 2.0]], dtype=torch.float64)
    u = torch.rand(k.shape, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    y = (k + u) / 5
    z = torch.logit(0.05 + 0.9 * y)
    log_density = (
        torch.distributions.Normal(0.0, 1.0).log_prob(z).sum()
        + torch.log(0.9 / ((0.05 + 0.9 * y) * (0.95 - 0.9 * y))).sum()
    )
    expected = log_density - 4 * math.log(5)
    torch.testing.assert_close(model.log_prob(k), expected.reshape(1))


def test_eval_noise_is_repeatable_and_training_noise_fresh():
    torch.manual_seed(0)
    model = DequantizedFlow(Multivariate(4), Logit(), levels=17, image_shape=(1, 2, 2))
    k = torch.randint(0, 17, (8, 4)).float()
    model.eval()
    assert torch.equal(model.log_prob(k), model.log_prob(k))
    model.train()
    assert not torch.equal(model.log_prob(k), model.log_prob(k))


def test_samples_are_pixel_values():
    torch.manual_seed(0)
    # latent first: vector to image (Flatten), pixels (Logit), image to row (Unflatten)
    model = DequantizedFlow(
        Multivariate(4),
        Flatten((1, 2, 2)),
        Logit(),
        Unflatten((1, 2, 2)),
        levels=17,
        image_shape=(1, 2, 2),
    )
    x = model.sample(100)
    assert x.shape == (100, 4)
    assert torch.equal(x, x.round()) and x.min() >= 0 and x.max() <= 16


def test_wrong_images_are_refused():
    model = uniform_model(dims=4)
    with pytest.raises(ValueError, match=r"flat images of shape \(batch, 4\)"):
        model.log_prob(torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match=r"pixel values must lie in \[0, 16\]"):
        model.log_prob(torch.full((2, 4), 17.0))
    with pytest.raises(ValueError, match=r"must be floats .* got a torch.int64 tensor"):
        model.log_prob(torch.zeros(2, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="have 4 pixels, but the base distribution has width 5"):
        DequantizedFlow(Multivariate(5), levels=17, image_shape=(1, 2, 2))
    with pytest.raises(ValueError, match="levels must be an integer of at least 2"):
        DequantizedFlow(Multivariate(4), levels=1, image_shape=(1, 2, 2))
