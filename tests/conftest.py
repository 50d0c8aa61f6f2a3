"""Shared test settings: deterministic seeds, one thread, and the ``--device``/``--dtype``
options (``tests/helpers.py``). Helpers are imported from ``tests.helpers``, never from here.
"""

import pytest
import torch

from tests import helpers

# One thread: the models under test are small, where a second thread only adds
# synchronisation, and a busy second core would otherwise stall every test.
torch.set_num_threads(1)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--device",
        default="cpu",
        help="torch's default device for the library tests (cpu, cuda, cuda:1, mps)",
    )
    parser.addoption(
        "--dtype",
        choices=("float32", "float64", "both"),
        default="both",
        help="the dtype(s) of the dtype-parametrized tests (default: both)",
    )


def pytest_configure(config: pytest.Config) -> None:
    chosen = config.getoption("--dtype")
    helpers.OPTIONS["dtypes"] = ("float32", "float64") if chosen == "both" else (chosen,)
    helpers.OPTIONS["device"] = config.getoption("--device")
    helpers.DTYPES[:] = helpers.dtype_params()
    config.addinivalue_line(
        "markers", "cpu_only: needs the CPU (numpy, files, subprocesses); ignores --device"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The workbench's and the benchmarks' tests run on the CPU whatever ``--device`` says
    (they read files, use numpy and start processes)."""
    for item in items:
        parts = item.path.relative_to(config.rootpath).parts
        if len(parts) > 1 and parts[0] == "tests" and parts[1] in ("workbench", "benchmarks"):
            item.add_marker(pytest.mark.cpu_only)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(1234)
    yield


@pytest.fixture(autouse=True)
def _device(request: pytest.FixtureRequest):
    """The chosen ``--device`` as torch's default device, except for ``cpu_only`` tests."""
    device = helpers.OPTIONS["device"]
    if device == "cpu" or request.node.get_closest_marker("cpu_only"):
        yield
        return
    torch.set_default_device(device)
    try:
        yield
    finally:
        torch.set_default_device("cpu")
