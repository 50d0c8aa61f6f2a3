"""What data-parallel training needs of a model, and the model wrapped for it.

``check_distributed`` refuses, on every process and with the same message, what
DistributedDataParallel cannot train; ``data_parallel`` wraps a module in it.
``flowforge.training.steps.DataParallelStep`` trains through the wrapped module.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.errors import LaunchError
from flowforge.layers.normalization import BatchNormFlow
from flowforge.training.distributed import World, check_same_data, takes_keyword


def check_distributed(
    model: torch.nn.Module,
    device: torch.device,
    data: Tensor,
    validation: Tensor | None,
    batch_size: int,
    world: World,
) -> None:
    """Raise ``LaunchError`` (on every process) for what data-parallel training cannot do."""
    if batch_size < world.size:
        raise LaunchError(
            f"batch size {batch_size} is smaller than the {world.size} processes: every "
            f"process needs rows of every batch; use a batch size of at least {world.size} "
            "(it is the global batch, split between the processes) or fewer processes"
        )
    if any(isinstance(m, BatchNormFlow) for m in model.modules()):
        raise LaunchError(
            "BatchNormFlow normalizes by its batch's statistics, and under several "
            "processes each would see only its share of the batch: use ActNorm "
            "(initialized from the data) instead, or train in one process"
        )
    if device.type == "cuda" and device.index != world.local_rank:
        raise LaunchError(
            f"process {world.rank} (local rank {world.local_rank}) trains on {device}: "
            f"each process needs its own GPU; move the model to cuda:{world.local_rank} "
            "(flowforge.local_device()) before fit"
        )
    check_same_data(data, validation, world)


def unused_parameters(model: torch.nn.Module, data: Tensor, context: tuple[Tensor, ...]) -> bool:
    """Whether some trainable parameter gets no gradient from the NLL of two rows
    (DistributedDataParallel must then look for such parameters after every step)."""
    params = [p for p in model.parameters() if p.requires_grad]
    saved = [p.grad for p in params]
    for p in params:
        p.grad = None
    (-model(data[:2], *(c[:2] for c in context)).sum()).backward()
    unused = any(p.grad is None for p in params)
    for p, grad in zip(params, saved):
        p.grad = grad
    return unused


def data_parallel(
    module: torch.nn.Module, device: torch.device, find_unused: bool
) -> torch.nn.Module:
    """``module`` in DistributedDataParallel, which broadcasts rank 0's weights and buffers.

    Buffers are not broadcast again before every step: no layer ``fit`` trains under
    several processes changes one in training (``BatchNormFlow`` is refused).
    """
    from torch.nn.parallel import DistributedDataParallel

    # torch 2.13 renamed the switch (the old name warns); both still sync at construction.
    renamed = takes_keyword(DistributedDataParallel, "forward_sync_buffers")
    no_sync = {"forward_sync_buffers" if renamed else "broadcast_buffers": False}
    return DistributedDataParallel(
        module,
        device_ids=[device] if device.type == "cuda" else None,
        find_unused_parameters=find_unused,
        **no_sync,
    )
