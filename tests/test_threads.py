import pytest
import torch

from flowforge import fit, realnvp
from flowforge.threads import cpu_threads, training_threads


def test_cpu_threads_sets_and_restores_even_on_error():
    before = torch.get_num_threads()
    with cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(KeyError), cpu_threads(1):
        raise KeyError("boom")
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before


def test_bad_thread_counts():
    with pytest.raises(ValueError, match="positive int"), cpu_threads(0):
        pass
    with pytest.raises(ValueError, match="'auto'"):
        training_threads(realnvp(), 128, "many")


def test_small_models_train_on_one_thread_large_ones_keep_torchs_setting():
    assert training_threads(realnvp(), 8192) == 1  # the notebook's model
    big = torch.nn.Linear(4096, 4096)  # 16.8 M parameters
    assert training_threads(big, 8) is None
    assert training_threads(realnvp(), 128, 3) == 3
    assert training_threads(realnvp(), 128, None) is None


def test_fit_uses_the_policy_and_restores_the_setting():
    before = torch.get_num_threads()
    seen = []
    fit(
        realnvp(),
        torch.randn(300, 2),
        epochs=2,
        batch_size=100,
        progress=False,
        callbacks=[lambda state: seen.append(torch.get_num_threads())],
    )
    assert seen == [1, 1]
    assert torch.get_num_threads() == before
