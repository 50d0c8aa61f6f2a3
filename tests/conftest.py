"""Shared test settings: deterministic seeds and the dtypes every layer is checked in."""

import pytest
import torch

DTYPES = [pytest.param(torch.float32, id="float32"), pytest.param(torch.float64, id="float64")]


# One thread: the models under test are small, where a second thread only adds
# synchronisation, and a busy second core would otherwise stall every test.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield
