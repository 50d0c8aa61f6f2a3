"""``WeightAverage``: an exponential moving average of the weights (Polyak averaging).

At a learning rate that trains quickly, the weights keep jittering around a good point:
the notebook's model's held-out NLL moves by about 0.02 from one epoch to the next at a
rate of 1e-2. The average of the recent iterates sits nearer the middle of that jitter,
so it is the better model to evaluate, keep and return, while training continues from
the iterates themselves. ``fit(ema=...)`` keeps one::

    average = WeightAverage(model.parameters(), decay=0.98)
    for x in batches:
        ...  # loss.backward(); optimizer.step()
        average.update()
        with average.applied():  # the model holds the average in the block
            heldout = mean_nll(model, validation)
    average.copy_to_tensors()  # end with the average for good
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor


def ema_decay(decay: float, step: int) -> float:
    """The decay after ``step`` updates (from 1): ``min(decay, (1 + step) / (10 + step))``.

    TensorFlow's ``ExponentialMovingAverage(num_updates=...)`` convention: early on the
    average forgets the initialization quickly, later it spans about ``1 / (1 - decay)``
    steps.
    """
    return min(decay, (1 + step) / (10 + step))


class WeightAverage:
    """The moving average ``a <- a + (1 - d) (w - a)`` of tensors ``w``, after each step.

    ``tensors`` are what the optimizer updates in place: the parameters, or
    ``FlatAdam``'s one flat buffer (then an update is a single operation). ``decay``
    in ``(0, 1)`` is the largest ``d`` (``ema_decay``); ``step`` is the number of updates
    already made (for a resumed run). ``with average.applied():`` puts the average into
    the tensors for the block and the iterates back after it (also when it raises):
    ``fit`` evaluates and keeps the average there, and goes on training from the
    iterates. ``copy_to_tensors()`` leaves the average in the tensors for good.
    """

    def __init__(self, tensors: Iterable[Tensor], decay: float, step: int = 0) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(
                f"the weight-average decay must be in (0, 1), got {decay}; use 0 for no "
                "average, or e.g. 0.98 for an average over about the last 50 steps"
            )
        self.decay = float(decay)
        self.step = int(step)
        self.swapped = False
        # Detached views share the tensors' storage, and autograd never sees them: no
        # ``no_grad`` needed per step.
        self.tensors = [t.detach() for t in tensors]
        self.average = [t.clone() for t in self.tensors]

    def update(self) -> None:
        """Move the average toward the tensors' current values (call after every step)."""
        self.step += 1
        weight = 1.0 - ema_decay(self.decay, self.step)
        if len(self.tensors) == 1:
            self.average[0].lerp_(self.tensors[0], weight)
        else:
            torch._foreach_lerp_(self.average, self.tensors, weight)

    def swap(self) -> None:
        """Exchange the tensors' values with the average (``swapped`` says which is where)."""
        for tensor, average in zip(self.tensors, self.average):
            kept = tensor.clone()
            tensor.copy_(average)
            average.copy_(kept)
        self.swapped = not self.swapped

    @contextmanager
    def applied(self) -> Iterator[None]:
        """The average in the tensors for the block; the iterates, exactly, after it."""
        if self.swapped:
            raise RuntimeError("the average is already applied (nested applied() blocks)")
        self.swap()
        try:
            yield
        finally:
            self.swap()

    def copy_to_tensors(self) -> None:
        """Put the average into the tensors for good (the iterates are dropped)."""
        if self.swapped:
            raise RuntimeError("copy_to_tensors() inside applied(): the average is already in")
        for tensor, average in zip(self.tensors, self.average):
            tensor.copy_(average)
