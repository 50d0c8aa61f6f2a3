"""What training shows in a notebook: one-line summaries and the right progress bar."""

from __future__ import annotations

import importlib.util
import math

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from flowforge import AffineCoupling, Merge, Multivariate, NormalizingFlow, Split, block, train
from flowforge.training import EpochLosses, History
from flowforge.training import progress as progress_module


def test_epoch_losses_is_a_list_with_a_one_line_repr():
    losses = EpochLosses([2.5, 2.0, 1.87])
    assert losses == [2.5, 2.0, 1.87] and isinstance(losses, list)
    assert repr(losses) == "EpochLosses(3 epochs, training NLL 2.5000 → 1.8700 nats per point)"
    assert repr(EpochLosses([1.0])) == "EpochLosses(1 epoch, training NLL 1.0000 nats per point)"
    assert "none" in repr(EpochLosses())


def test_train_returns_epoch_losses_with_every_epochs_mean():
    torch.manual_seed(0)
    x = torch.randn(256, 2)
    model = NormalizingFlow(Multivariate(2), Split(), AffineCoupling(block(1, 1, 8)), Merge())
    losses = train(model, DataLoader(TensorDataset(x, x), batch_size=64), 3, progress=False)
    assert isinstance(losses, EpochLosses) and len(losses) == 3
    assert all(math.isfinite(v) for v in losses)
    assert "\n" not in repr(losses) and repr(losses).startswith("EpochLosses(3 epochs")


def test_history_repr_is_one_line_with_the_best_epoch():
    history = History()
    for t, h in [(2.4, 2.1), (2.0, 1.9), (1.9, 1.95)]:
        history.record(t, h, 1.0, 0.9)
    history.best_epoch = 2
    text = repr(history)
    assert text == (
        "History(3 epochs, training NLL 2.4000 → 1.9000, best held-out NLL 1.9000 at epoch 2)"
    )
    assert History.from_dict(history.to_dict()).heldout_nll == history.heldout_nll


def test_progress_bar_is_the_text_bar_without_ipywidgets(monkeypatch):
    pytest.importorskip("tqdm")
    from tqdm.std import tqdm as text_bar

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ipywidgets" else real(name)
    )
    assert progress_module.progress_bar_class() is text_bar


def test_progress_bar_follows_tqdm_auto_with_ipywidgets(monkeypatch):
    pytest.importorskip("tqdm")
    from tqdm.auto import tqdm as auto_bar

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: object() if name == "ipywidgets" else real(name, *a),
    )
    assert progress_module.progress_bar_class() is auto_bar
