import pytest

from tests.workbench.helpers import train_tiny


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """One tiny trained run folder shared by the read-only command tests."""
    return train_tiny(tmp_path_factory.mktemp("runs") / "tiny")
