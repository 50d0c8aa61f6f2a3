"""Getting training batches: validation of the data, and batches without per-item collation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

Batch = tuple[Tensor, tuple[Tensor, ...]]  # points (B, D) and context tensors (B, ...)


def check_points(x: Tensor, width: int | None, what: str = "training data") -> None:
    """Raise ``ValueError`` unless ``x`` is ``(n, width)`` and every value is finite."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{what} must be a tensor, got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{what} must be a 2-D tensor (points, width), got shape {tuple(x.shape)}")
    if width is not None and x.shape[1] != width:
        raise ValueError(
            f"{what} has width {x.shape[1]}, but the model expects width {width}: "
            f"give it {width} columns, or build the model for width {x.shape[1]}"
        )
    if x.is_floating_point():
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        if bad:
            raise ValueError(
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
