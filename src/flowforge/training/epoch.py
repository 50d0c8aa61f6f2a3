"""One epoch: a loop over batches that calls a step, then the epoch's mean NLL."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor

from flowforge.errors import DivergedError
from flowforge.training.averaging import WeightAverage
from flowforge.training.distributed import World, all_sum, share
from flowforge.training.divergence import FIX
from flowforge.training.schedule import Schedule
from flowforge.training.steps import Step


def train_epoch(
    step: Step,
    batches: Iterable[tuple[Tensor, tuple[Tensor, ...]]],
    optimizer: torch.optim.Optimizer,
    schedule: Schedule | None = None,
    epoch: int = 0,
    world: World | None = None,
    average: WeightAverage | None = None,
) -> float:
    """One pass of optimizer steps over ``batches``; returns the mean NLL per point (nats).

    For every batch: the ``schedule`` (if any) sets the learning rate, the gradients are
    zeroed, ``step`` computes the loss and adds its gradient, the optimizer steps, and
    the ``average`` (a ``WeightAverage``, if any) is updated. ``epoch`` (from 0) names
    the epoch in errors.

    With several processes (``world``) every batch is a global batch and the step trains
    on this process's share (``DataParallelStep``); the mean returned is over every
    process's rows: sums and counts, all-reduced. The losses stay on the device until
    the epoch ends (one host sync per epoch). Raises ``DivergedError`` (a
    ``FloatingPointError``) if the loss became NaN or infinite.
    """
    world = World() if world is None else world
    losses, weights, own_rows = [], [], 0
    for x, context in batches:
        if schedule is not None:
            schedule.apply(optimizer)
        rows = len(x)
        optimizer.zero_grad(set_to_none=True)
        loss = step(x, context)
        optimizer.step()
        if average is not None:
            average.update()
        losses.append(loss.detach())
        weights.append(rows / world.size)  # loss * weight: this process's sum of -log p
        start, stop = share(rows, world)
        own_rows += stop - start
    return _mean(losses, weights, own_rows, epoch, world)


def _mean(losses: list[Tensor], weights: list[float], rows: int, epoch: int, world: World) -> float:
    """The mean of the losses over all processes' ``rows``; ``DivergedError`` if not finite."""
    if not losses:
        return math.nan
    weights = torch.tensor(weights, dtype=losses[0].dtype, device=losses[0].device)
    local = torch.stack(losses) @ weights
    sums = torch.stack([local.double(), local.new_tensor(rows, dtype=torch.float64)])
    total, count = all_sum(sums, world)
    mean = float(total) / float(count)
    if not math.isfinite(mean):
        raise DivergedError(f"training diverged in epoch {epoch + 1} (mean NLL {mean}); {FIX}")
    return mean
