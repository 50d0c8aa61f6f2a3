"""Hostile files for the loaders (issue 15, item 6): what must be refused before a byte is read."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import torch

from flowforge.training.state import History, TrainState

# What each kind of path is, as the loaders' messages name it.
KINDS = {
    "fifo": "named pipe",
    "dev-zero": "a device",
    "folder": "a folder",
    "huge": "bytes, more than flowforge reads",
}


def make(kind: str, path: Path, size: int) -> Path:
    """Put a hostile ``kind`` of thing at ``path``; ``size`` is just over the loader's limit
    (a sparse file: it takes no room on disk)."""
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path.symlink_to("/dev/zero")
    elif kind == "folder":
        path.mkdir()
    elif kind == "huge":
        with open(path, "wb") as file:
            file.truncate(size)
    else:
        raise ValueError(kind)
    return path


def within(seconds: float, call: Callable[[], object]) -> BaseException | object:
    """``call()``'s result or the exception it raised; AssertionError if it takes longer than
    ``seconds`` (it blocked, on a FIFO say; it is left behind in a daemon thread)."""
    outcome: list = []

    def target() -> None:
        try:
            outcome.append(call())
        except BaseException as error:  # noqa: BLE001 -- handed to the test
            outcome.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"still reading after {seconds} s: the loader blocked"
    return outcome[0]


def tiny_train_state(epoch: int = 1) -> TrainState:
    """A real (Adam, averaged, best-kept) training state small enough to flip every bit."""
    torch.manual_seed(epoch)
    layer = torch.nn.Linear(2, 2)
    optimizer = torch.optim.Adam(layer.parameters(), lr=1e-2)
    for _ in range(2):
        optimizer.zero_grad()
        layer(torch.randn(4, 2)).sum().backward()
        optimizer.step()
    history = History()
    for e in range(epoch):
        history.record(1.5 - e / 10, 1.25 - e / 10, 0.5, 0.4)
    history.best_epoch = epoch
    return TrainState(
        epoch=epoch,
        step=2 * epoch,
        history=history,
        model_state=layer.state_dict(),
        optimizer_state=optimizer.state_dict(),
        best_model_state=layer.state_dict(),
        training_state={"w": torch.ones(2)},
    )
