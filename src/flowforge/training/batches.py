"""Getting training batches: validation of the data, and batches without per-item collation.

The batches of epoch ``e`` depend only on the seed and ``e`` (``epoch_generator``), so a
resumed run sees the very batches an uninterrupted one would.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from flowforge.errors import InputError
from flowforge.values import as_context

Batch = tuple[Tensor, tuple[Tensor, ...]]  # points (B, D) and context tensors (B, ...)


def check_points(
    x: Tensor, width: int | None, what: str = "training data", dtype: torch.dtype | None = None
) -> None:
    """Raise ``InputError`` (a ``ValueError``) unless ``x`` is ``(n, width)`` of floating
    numbers, every one finite (``dtype``: the model's, for the message about integers)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} must be a tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise InputError(f"{what} must be a 2-D tensor (points, width), got shape {tuple(x.shape)}")
    if width is not None and x.shape[1] != width:
        raise InputError(
            f"{what} has width {x.shape[1]}, but the model expects width {width}: "
            f"give it {width} columns, or build the model for width {x.shape[1]}"
        )
    if not x.is_floating_point():
        dtype = torch.get_default_dtype() if dtype is None else dtype
        raise InputError(
            f"{what} are {x.dtype} but the model's weights are {dtype}: convert the input "
            f"(x.to({dtype}))"
        )
    bad = int((~torch.isfinite(x)).any(dim=1).sum())
    if bad:
        raise InputError(
            f"{what} has {bad} row(s) with NaN or infinite values (of {len(x)}); "
            "remove or impute them before training"
        )


def split_item(item: Tensor | tuple | list) -> Batch:
    """A loader item as ``(x, context)``: ``(x, y)`` pairs drop ``y``; a tensor is ``x``."""
    if isinstance(item, Tensor):
        return item, ()
    if isinstance(item, (tuple, list)) and item and isinstance(item[0], Tensor):
        return item[0], ()
    raise TypeError(
        "a data loader must yield tensors of points or (points, labels) pairs, got "
        f"{type(item).__name__}"
    )


def in_memory_points(loader: Iterable) -> Tensor | None:
    """The points tensor behind a ``DataLoader`` over a ``TensorDataset``, else ``None``."""
    dataset = getattr(loader, "dataset", None)
    tensors = getattr(dataset, "tensors", None)
    if isinstance(tensors, tuple) and tensors and isinstance(tensors[0], Tensor):
        return tensors[0]
    return None


def fast_loader_order(loader: Iterable) -> str | None:
    """``"sequential"`` or ``"shuffled"`` if a loader can be replaced by tensor slicing.

    That holds for a plain ``DataLoader`` over a ``TensorDataset`` with the default
    collation and a sequential or random sampler: slicing gives the same batches (in
    the sequential case, the very same ones) without per-item fetches.
    """
    from torch.utils.data import DataLoader, RandomSampler, SequentialSampler
    from torch.utils.data._utils.collate import default_collate

    if not isinstance(loader, DataLoader) or in_memory_points(loader) is None:
        return None
    if loader.collate_fn is not default_collate or loader.batch_size is None:
        return None
    if type(loader.sampler) is SequentialSampler:
        return "sequential"
    if type(loader.sampler) is RandomSampler and not loader.sampler.replacement:
        return "shuffled"
    return None


def tensor_batches(
    x: Tensor,
    batch_size: int,
    *,
    context: tuple[Tensor, ...] = (),
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[Batch]:
    """Batches of rows of ``x`` (and matching rows of each context tensor) by slicing.

    With ``shuffle`` the rows are visited in the order of ``torch.randperm`` drawn from
    ``generator`` (on the CPU, so a seed gives the same order on every device).
    """
    n = len(x)
    if shuffle:
        order = torch.randperm(n, generator=generator).to(x.device)
        x = x[order]
        context = tuple(c[order] for c in context)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        end = min(start + batch_size, n)
        yield x[start:end], tuple(c[start:end] for c in context)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that orders epoch ``epoch``'s batches: a function of seed and epoch only."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of the model's first parameter (the CPU for a model without any)."""
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def model_dtype(model: torch.nn.Module) -> torch.dtype | None:
    """The dtype of the model's first floating parameter (``None`` for a model without)."""
    return next((p.dtype for p in model.parameters() if p.is_floating_point()), None)


def _check_rows(x: Tensor, what: str) -> None:
    if len(x) == 0:
        raise InputError(
            f"the {what} has no rows (shape {tuple(x.shape)}): give it at least one point"
            + (" or pass validation=None" if what == "validation data" else "")
        )


@dataclass(frozen=True)
class TrainingData:
    """The training and validation rows with their context tensors, checked and on the
    model's device (``TrainingData.on(model, ...)``); ``validation`` may be ``None``."""

    points: Tensor
    context: tuple[Tensor, ...]
    validation: Tensor | None
    validation_context: tuple[Tensor, ...]
    device: torch.device

    @classmethod
    def on(
        cls,
        model: torch.nn.Module,
        points: Tensor,
        context: Tensor | Sequence[Tensor] | None = None,
        validation: Tensor | None = None,
        validation_context: Tensor | Sequence[Tensor] | None = None,
    ) -> TrainingData:
        """Check the rows (``check_points``, and at least one of each) and move everything
        to the model's device."""
        width, dtype = getattr(model, "width", None), model_dtype(model)
        check_points(points, width, dtype=dtype)
        _check_rows(points, "training data")
        device = model_device(model)
        held, held_context = None, ()
        if validation is not None:
            check_points(validation, width, "validation data", dtype)
            _check_rows(validation, "validation data")
            held = validation.to(device)
            held_context = tuple(c.to(device) for c in as_context(validation_context))
        moved = tuple(c.to(device) for c in as_context(context))
        return cls(points.to(device), moved, held, held_context, device)

    def epoch(
        self, epoch: int, batch_size: int, seed: int, shuffle: bool = True
    ) -> Iterator[Batch]:
        """Epoch ``epoch``'s batches: in an order drawn from ``(seed, epoch)``, or stored."""
        return tensor_batches(
            self.points,
            batch_size,
            context=self.context,
            shuffle=shuffle,
            generator=epoch_generator(seed, epoch),
        )
