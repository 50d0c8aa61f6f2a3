"""Every family of points (realnvp, nice, maf, iaf, nsf, ...): contract, densities,
conditioning, training; each at the small size its declaration gives (``test_size``)."""

import pytest
import torch

from flowforge import SplineCoupling, check_flow, fit, iaf, maf, nice, nsf
from flowforge.families import BUILDERS, FAMILIES, POINTS
from flowforge.layers import Inverse, LULinear, MaskedAutoregressive, Permute

# Every family of points at its declared test size, and variants beyond it:
# case -> (family, options added to its test size).
CASES = {name: (name, {}) for name, family in FAMILIES.items() if family.data == POINTS}
CASES |= {
    "nsf-coupling": ("nsf", {"coupling": True}),
    "maf-spline": ("maf", {"transformer": "spline"}),
}
NAMES = list(CASES)
NEW = [name for name in NAMES if name != "realnvp"]  # realnvp's density: tests/test_flow.py


def _build(name: str, width: int = 2, **options):
    family, extra = CASES[name]
    declared = FAMILIES[family]
    return declared.build(width, **declared.test_size, **extra, **options).double()


def _perturb(model):
    """Move every parameter off its initial value, so the tests see a non-trivial flow."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def test_every_family_is_registered():
    assert {"realnvp", "nice", "maf", "iaf", "nsf"} <= set(BUILDERS)
    assert BUILDERS == {name: family.build for name, family in FAMILIES.items()}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("width", [2, 3])
def test_builders_pass_the_contract_with_and_without_context(name, width):
    model = _perturb(_build(name, width))
    check_flow(model.flow, torch.randn(4, width, dtype=torch.float64))
    conditional = _perturb(_build(name, width, context_width=2))
    c = torch.randn(4, 2, dtype=torch.float64)
    check_flow(conditional.flow, torch.randn(4, width, dtype=torch.float64), c)


@pytest.mark.parametrize("name", NEW)
def test_density_integrates_to_one(name):
    model = _perturb(_build(name))
    # Steps of 0.05 over [-9, 9]: the tails of every family at its test size lie inside.
    grid = torch.linspace(-9, 9, 361, dtype=torch.float64)
    x = torch.cartesian_prod(grid, grid)
    with torch.no_grad():
        mass = model.log_prob(x).exp().sum() * (grid[1] - grid[0]) ** 2
    assert float(mass) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize("name", NAMES)
def test_conditional_sampling_several_per_context(name):
    model = _perturb(_build(name, context_width=1))
    context = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    x, log_p = model.sample_and_log_prob(3, context)
    assert x.shape == (2, 3, 2) and log_p.shape == (2, 3)
    for i in range(2):
        torch.testing.assert_close(log_p[i], model.log_prob(x[i], context[i].expand(3, 1)))
    other = model.log_prob(x[0], context[1].expand(3, 1))
    assert not torch.allclose(other, log_p[0])


@pytest.mark.parametrize("name", NAMES)
def test_every_family_learns(name):
    torch.manual_seed(0)
    model = _build(name).float()
    data = torch.randn(512, 2) * torch.tensor([0.3, 2.0]) + torch.tensor([1.0, -1.0])
    before = -model.log_prob(data).mean().item()
    history = fit(model, data, epochs=2, batch_size=64, lr=1e-2, warmup=0, progress=False)
    assert history.train_nll[-1] < before - 0.2


def test_builder_structure_and_options():
    assert sum(isinstance(m, MaskedAutoregressive) for m in maf(3, layers=4).flow) == 4
    layers = iaf(3, layers=2).flow
    assert isinstance(layers[0], Inverse) and isinstance(layers[0].layer, MaskedAutoregressive)
    assert sum(isinstance(m, SplineCoupling) for m in nsf(4, layers=3, coupling=True).flow) == 3
    assert any(isinstance(m, LULinear) for m in nsf(3, mixing="lu").flow)
    assert any(isinstance(m, Permute) for m in maf(3, mixing="random").flow)
    assert nice(4).flow[-1].scale.requires_grad
    with pytest.raises(ValueError, match="unknown mixing 'shuffle'"):
        maf(3, mixing="shuffle")
    with pytest.raises(ValueError, match="unknown transformer 'cubic'"):
        maf(3, transformer="cubic")


@pytest.mark.parametrize("name", ["maf", "nsf"])
def test_zero_init_builds_the_base_distribution(name):
    model = BUILDERS[name](3, zero_init=True)
    x = torch.randn(10, 3)
    torch.testing.assert_close(model.log_prob(x), model.base_distribution.log_prob(x))
