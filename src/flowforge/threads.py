"""How many CPU threads training uses, set for the duration of a block and then restored.

For a small flow one step is a few hundred tiny operations: a second thread cannot
speed them up, and when another process holds the other core the threads of one
operation wait for each other (OpenMP) and training slows to a crawl. So training on
the CPU uses one thread unless a step has enough arithmetic to share.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

# Below this many floating-point operations per training step, one thread is used.
# benchmarks/speed.py measures the seed's model (1,352 parameters) at batch 8,192,
# about 66 MFLOP per step, and finds two threads no faster than one.
SMALL_STEP_FLOPS = 100e6


@contextmanager
def cpu_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; restore the previous count after.

    ``None`` leaves torch's setting alone.
    """
    if n is None:
        yield
        return
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be a positive int or None, got {n!r}")
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def training_threads(
    model: torch.nn.Module, batch_size: int, threads: int | str | None = "auto"
) -> int | None:
    """The thread count for training ``model`` with ``batch_size`` rows per step.

    ``threads`` is a count, ``None`` (torch's own setting), or ``"auto"``: one thread
    on the CPU when a step needs fewer than ``SMALL_STEP_FLOPS`` (about 6 operations
    per parameter per row, forward and backward), else torch's own setting.
    """
    if threads is None or isinstance(threads, int):
        return threads
    if threads != "auto":
        raise ValueError(f"threads must be 'auto', a positive int or None, got {threads!r}")
    parameters = list(model.parameters())
    if any(p.device.type != "cpu" for p in parameters):
        return None
    flops = 6 * sum(p.numel() for p in parameters) * batch_size
    return 1 if flops < SMALL_STEP_FLOPS else None
