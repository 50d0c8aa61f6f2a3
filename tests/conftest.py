"""Shared test settings: deterministic seeds and the dtypes every layer is checked in."""

import pytest
import torch

DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield
