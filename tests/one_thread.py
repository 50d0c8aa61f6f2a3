"""A fixture for modules of many small tensor operations: run them on one torch thread.

On a busy 2-core machine a second thread mostly waits for a core; one thread is both
faster and steadier for tensors this small. Use with
``pytestmark = pytest.mark.usefixtures("one_thread")`` after importing ``one_thread``.
"""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
