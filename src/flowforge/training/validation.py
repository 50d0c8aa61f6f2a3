"""The held-out NLL after an epoch; under several processes each scores its share."""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.evaluate import log_likelihood, mean_nll
from flowforge.training.distributed import World, all_sum, share


def heldout_nll(
    model: torch.nn.Module, x: Tensor, context: tuple[Tensor, ...] = (), world: World | None = None
) -> float:
    """The mean NLL of the rows of ``x`` (nats per point), in eval mode without autograd.

    With several processes (``world``) each scores its ``share`` of the rows and the
    sums and counts are added up over all of them, so every process gets the mean over
    all rows (not the mean of the processes' means).
    """
    if world is None or not world.distributed:
        return mean_nll(model, x, *context).mean
    start, stop = share(len(x), world)
    log_q = log_likelihood(model, x[start:stop], *(c[start:stop] for c in context))
    sums = torch.stack([-log_q.double().sum(), log_q.new_tensor(len(log_q), dtype=torch.float64)])
    total, count = all_sum(sums, world)
    return float(total) / float(count)
