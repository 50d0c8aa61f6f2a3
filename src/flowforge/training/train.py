"""The notebook's ``train(model, data_loader, ...)``, on flowforge's fast training path.

Built of ``fit``'s parts: the optimizer's scope (``optim.adam``), a step
(``steps``: hand-written gradients where the model has them) and the epoch loop
(``epoch.train_epoch``); no schedule, average or validation, as in the notebook.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext

import torch
from torch import Tensor

from flowforge.errors import DivergedError, InputError
from flowforge.evaluate import mean_nll
from flowforge.threads import cpu_threads, training_threads
from flowforge.training.batches import (
    check_points,
    epoch_generator,
    fast_loader_order,
    in_memory_points,
    model_device,
    model_dtype,
    split_item,
    tensor_batches,
)
from flowforge.training.divergence import PROBE_ROWS, DivergenceGuard, copy_state
from flowforge.training.epoch import train_epoch
from flowforge.training.optim import adam
from flowforge.training.progress import ProgressReporter
from flowforge.training.state import EpochLosses
from flowforge.training.steps import AutogradStep, handwritten_step


def _check_loader(loader: Iterable, model: torch.nn.Module) -> Tensor:
    """Validate every batch before the first step, so bad data never costs a step; a
    loader without a single row is an ``InputError``. Returns the divergence probe: the
    first ``PROBE_ROWS`` rows."""
    width, dtype = getattr(model, "width", None), model_dtype(model)
    points = in_memory_points(loader)
    if points is not None:
        check_points(points, width, dtype=dtype)
        probe, rows = points[:PROBE_ROWS], len(points)
    else:
        probe, rows = None, 0
        for item in loader:
            x = split_item(item)[0]
            check_points(x, width, dtype=dtype)
            probe, rows = x[:PROBE_ROWS] if probe is None else probe, rows + len(x)
    if rows == 0:
        raise InputError("the data loader yields no rows: give it at least one point")
    return probe


@contextmanager
def _optimizer(model: torch.nn.Module, optimizer, lr: float) -> Iterator[torch.optim.Optimizer]:
    """The optimizer for the block: a ready one as it is; ``torch.optim.Adam`` as the same
    Adam in one update over the parameters flattened for the block; another class called."""
    if isinstance(optimizer, torch.optim.Optimizer):
        with nullcontext(optimizer) as ready:
            yield ready
    elif optimizer is torch.optim.Adam:
        with adam(model.parameters(), lr) as flat:
            yield flat
    else:
        yield optimizer(model.parameters(), lr=lr)


def train(
    model: torch.nn.Module,
    data_loader: Iterable,
    num_epochs: int = 100,
    lr: float = 0.001,
    optimizer: type[torch.optim.Optimizer] | Callable | torch.optim.Optimizer = torch.optim.Adam,
    device: str | torch.device | None = None,
    *,
    progress: bool = True,
    seed: int = 0,
    threads: int | str | None = "auto",
) -> EpochLosses:
    """Train a normalizing flow by maximum likelihood, the course notebook's ``train``.

    Every batch is validated (width, finite values) before the first step. A
    ``DataLoader`` over a ``TensorDataset`` is read by slicing the tensor instead of
    fetching items one by one: the same batches when it does not shuffle, a
    ``seed``-determined shuffle when it does. There is no schedule, weight average or
    validation, as in the notebook; ``fit`` has them.

    Args:
        model: The flow (a ``NormalizingFlow``), trained in place.
        data_loader: Yields ``(x, y)`` pairs (``y`` is ignored) or bare tensors of
            points.
        num_epochs: Passes over the data.
        lr: The learning rate.
        optimizer: An optimizer class (called with the parameters and ``lr``) or a
            ready optimizer.
        device: Moves the model there first (``None``: the model's device).
        progress: Show a progress bar.
        seed: Sets the order of a shuffling ``DataLoader``'s batches.
        threads: CPU threads while training (``"auto"``: one for small models; see
            ``flowforge.threads``).

    Returns:
        The mean NLL per point (nats) of every epoch, as ``EpochLosses`` (a list whose
        ``repr`` is a one-line summary).

    Raises:
        InputError: If a batch has the wrong width or non-finite values, or the loader
            yields no rows.
        DivergedError: For a non-finite epoch mean, NaN or infinite weights after an
            epoch, or a non-finite or absurd NLL of the first 256 rows after it
            (``flowforge.training.divergence``); the model keeps the weights after the
            last good epoch (before training if none was).

    Example:
        >>> import torch
        >>> from torch.utils.data import DataLoader, TensorDataset
        >>> from flowforge import realnvp, train
        >>> _ = torch.manual_seed(0)
        >>> model = realnvp(2, couplings=2, hidden=8)
        >>> points = torch.randn(256, 2) * 0.5 + 1.0
        >>> loader = DataLoader(TensorDataset(points, torch.zeros(256)), batch_size=64)
        >>> losses = train(model, loader, num_epochs=3, lr=1e-2, progress=False)
        >>> losses  # doctest: +ELLIPSIS
        EpochLosses(3 epochs, training NLL ... nats per point)
        >>> losses[-1] < losses[0]
        True
    """
    if device is not None:
        model.to(device)
    device = model_device(model)
    probe = _check_loader(data_loader, model).to(device)
    batch_size = getattr(data_loader, "batch_size", None) or 1
    threads = training_threads(model, batch_size, threads)
    with cpu_threads(threads), _optimizer(model, optimizer, lr) as opt:
        return _train_epochs(model, data_loader, opt, num_epochs, device, progress, seed, probe)


def _train_epochs(
    model: torch.nn.Module,
    data_loader: Iterable,
    opt: torch.optim.Optimizer,
    num_epochs: int,
    device: torch.device,
    progress: bool,
    seed: int,
    probe: Tensor,
) -> EpochLosses:
    """``train``'s loop: epochs of tensor-sliced batches, or of the loader's own, through
    the hand-written step where the model has one (else autograd), at a constant rate."""
    order = fast_loader_order(data_loader)
    points = in_memory_points(data_loader).to(device) if order else None
    what = f"NLL of the first {len(probe)} training rows"
    guard = DivergenceGuard(mean_nll(model, probe).mean if num_epochs else math.nan)
    losses = EpochLosses()
    last_good = copy_state(model.state_dict())
    step = handwritten_step(model) or AutogradStep(model)
    reporter = ProgressReporter(num_epochs, enabled=progress)
    model.train()
    try:
        for epoch in range(num_epochs):
            if order:
                batches = tensor_batches(
                    points,
                    data_loader.batch_size,
                    shuffle=order == "shuffled",
                    generator=epoch_generator(seed, epoch),
                    drop_last=data_loader.drop_last,
                )
            else:
                batches = ((x.to(device), ()) for x, _ in map(split_item, data_loader))
            losses.append(train_epoch(step, batches, opt, epoch=epoch))
            guard.weights(model, epoch)
            guard.heldout(mean_nll(model, probe).mean, epoch, what)
            last_good = copy_state(model.state_dict())
            reporter.update(losses[-1])
    except DivergedError:
        model.load_state_dict(last_good)
        raise
    finally:
        reporter.close()
    return losses
