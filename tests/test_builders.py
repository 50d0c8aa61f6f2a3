import pytest
import torch

from flowforge import AffineCoupling, check_flow, realnvp
from tests.training.test_fit import seed_model


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
