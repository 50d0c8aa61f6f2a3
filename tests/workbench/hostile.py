"""Hostile files for the loaders (issue 15, item 6): what must be refused before a byte is read."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

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
