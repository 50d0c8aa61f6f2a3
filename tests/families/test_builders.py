import math

import pytest
import torch

from flowforge import AffineCoupling, check_flow, realnvp
from tests.helpers import seed_model


def test_realnvp_defaults_are_the_notebook_model():
    model, reference = realnvp(), seed_model()
    assert [type(m).__name__ for m in model.flow] == [type(m).__name__ for m in reference.flow]
    assert sum(p.numel() for p in model.parameters()) == 1352
    model.load_state_dict(reference.state_dict())  # same parameter names and shapes


@pytest.mark.parametrize("width", [2, 3, 5, 8])
@pytest.mark.parametrize("couplings", [1, 2, 3])
def test_realnvp_any_width_passes_the_contract(width, couplings):
    model = realnvp(width, couplings=couplings, hidden=8).double()
    check_flow(model.flow, torch.randn(4, width, dtype=torch.float64))
    assert sum(isinstance(m, AffineCoupling) for m in model.flow) == couplings


def test_uniform_base_and_errors():
    assert torch.isneginf(
        realnvp(base="uniform").base_distribution.log_prob(torch.full((1, 2), 4.0))
    )
    with pytest.raises(ValueError, match="unknown base 'cauchy'"):
        realnvp(base="cauchy")
    with pytest.raises(ValueError, match="width >= 2"):
        realnvp(1)


def test_multiscale_has_the_parts_of_each_scale():
    from flowforge import multiscale
    from flowforge.dequantization import DequantizedFlow
    from flowforge.layers import FactorOut, Flatten, MaskedSplineCoupling

    model = multiscale(scales=3, steps=1, hidden=8)
    assert isinstance(model, DequantizedFlow) and model.levels == 17
    latent_end = model.flow[0]
    assert isinstance(latent_end, Flatten)
    assert latent_end.shapes == ((2, 4, 4), (4, 2, 2), (16, 1, 1))
    assert sum(isinstance(layer, FactorOut) for layer in model.flow) == 2
    x = torch.randint(0, 17, (5, 64)).float()
    assert [tuple(p.shape) for p in model.eval().latents(x)] == [
        (5, 2, 4, 4),
        (5, 4, 2, 2),
        (5, 16, 1, 1),
    ]
    # Zero conditioners: at initialization the flow is the logit (the actnorms are unset).
    lp = model.log_prob(x)
    y = (x + torch.rand(x.shape, generator=torch.Generator().manual_seed(0))) / 17
    z = torch.logit(0.05 + 0.9 * y)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1)
    expected += torch.log(0.9 / ((0.05 + 0.9 * y) * (0.95 - 0.9 * y))).sum(1) - 64 * math.log(17)
    torch.testing.assert_close(lp, expected, rtol=1e-5, atol=1e-3)
    spline = multiscale(steps=1, hidden=8, transformer="spline", checkerboard=2)
    assert sum(isinstance(layer, MaskedSplineCoupling) for layer in spline.modules()) == 5


def test_multiscale_checks_the_image_shape():
    from flowforge import multiscale

    with pytest.raises(ValueError, match="takes image_shape=.*not a width; got 64"):
        multiscale(64)  # the builder's first argument before image runs had a kind
    with pytest.raises(ValueError, match=r"must be \(channels, height, width\), got \(8, 8\)"):
        multiscale((8, 8))
    with pytest.raises(ValueError, match="divisible by 8, got 8×12"):
        multiscale((1, 8, 12), scales=3)
    with pytest.raises(ValueError, match="unknown transformer 'cubic'"):
        multiscale(transformer="cubic")
    with pytest.raises(ValueError, match="need scales >= 1.* got scales=0"):
        multiscale(scales=0)
    with pytest.raises(ValueError, match="checkerboard >= 0; .*checkerboard=-1"):
        multiscale(checkerboard=-1)


def test_multiscale_is_as_wide_as_its_images():
    from flowforge import multiscale

    model = multiscale((3, 4, 4), scales=1, steps=1, hidden=4, checkerboard=0)
    assert model.width == 48 and model.dims == 48 and model.image_shape == (3, 4, 4)
    x = torch.randint(0, 17, (2, 48)).float()
    assert model.log_prob(x).shape == (2,)
