"""Plumbing layers that change how a value is packed: ``Split``, ``Merge``, ``Swap``.

They move numbers around without changing them, so their log-determinant is zero.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from flowforge.gradients import Batch, Plumbing, has_hooks, owns_handwritten
from flowforge.gradients import Value as FeatureMajor
from flowforge.layers.base import FlowLayer
from flowforge.values import Value, concatenate, describe, zero_log_det


def _split(z: Tensor, sizes: Sequence[int] | None, dim: int) -> tuple[Tensor, ...]:
    if not isinstance(z, Tensor):
        raise TypeError(f"Split expects a tensor, got {describe(z)}; is a Merge missing?")
    width = z.shape[dim]
    if sizes is None:
        if width < 2:
            raise ValueError(
                f"cannot split width {width} into two parts along dim {dim}; "
                "a coupling flow needs at least 2 dimensions"
            )
        return torch.chunk(z, 2, dim=dim)
    if sum(sizes) != width:
        raise ValueError(
            f"Split sizes {list(sizes)} add up to {sum(sizes)}, but the input has width "
            f"{width} along dim {dim}"
        )
    return torch.split(z, list(sizes), dim=dim)


def _merge(z: Value, sizes: Sequence[int] | None, dim: int) -> Tensor:
    """Concatenate, after checking that splitting the result again gives these parts."""
    if not isinstance(z, tuple):
        raise TypeError(f"Merge expects a tuple of tensors, got {describe(z)}; is a Split missing?")
    seen = [t.shape[dim] for t in z]
    total = sum(seen)
    expected = list(sizes) if sizes is not None else [total - total // 2, total // 2]
    if seen != expected:
        raise ValueError(
            f"merging parts of widths {seen}, which splitting back would cut as {expected}: "
            f"give the sizes explicitly, Merge({seen}) (or Split({seen}))"
        )
    return concatenate(z, dim)


def _normalize_sizes(sizes: int | Sequence[int] | None) -> tuple[int, ...] | None:
    if sizes is None:
        return None
    if isinstance(sizes, int):
        raise TypeError(
            "give Split the size of every part, e.g. Split([3, 6]) for a width of 9; "
            "Split() halves the input as torch.chunk does"
        )
    sizes = tuple(int(s) for s in sizes)
    if len(sizes) < 2 or min(sizes) < 1:
        raise ValueError(f"Split sizes must be at least two positive numbers, got {list(sizes)}")
    return sizes


class Split(FlowLayer):
    """Split a tensor into a tuple of tensors along ``dim`` (the feature dimension).

    The inverse concatenates the parts. Volume preserving.

    Args:
        sizes: The width of every part, e.g. ``Split([3, 6])``; ``None`` halves the
            tensor as ``torch.chunk(z, 2)`` halves it (a width of 9 splits as 5 + 4).
        dim: The dimension to split.

    Raises:
        TypeError: If ``sizes`` is a single number.
        ValueError: If the sizes are not positive or do not add up to the width.

    Example:
        >>> import torch
        >>> from flowforge import Split
        >>> (a, b), log_det = Split()(torch.zeros(2, 9))
        >>> a.shape, b.shape, log_det
        (torch.Size([2, 5]), torch.Size([2, 4]), tensor([0., 0.]))
        >>> [t.shape[1] for t in Split([3, 6])(torch.zeros(2, 9))[0]]
        [3, 6]
    """

    volume_preserving = True

    def __init__(self, sizes: Sequence[int] | None = None, dim: int = 1) -> None:
        super().__init__()
        self.sizes = _normalize_sizes(sizes)
        self.dim = dim

    def forward(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        return _split(z, self.sizes, self.dim), zero_log_det(z)

    def inverse(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        return _merge(z, self.sizes, self.dim), zero_log_det(z)

    def extra_repr(self) -> str:
        return f"sizes={list(self.sizes) if self.sizes else 'halves'}, dim={self.dim}"

    def handwritten(self) -> PartsGradients | None:
        """The hand-written form (feature-major rows), for splits of the feature dimension."""
        supported = self.dim == 1 and not has_hooks(self) and owns_handwritten(self, "inverse")
        return PartsGradients(self.sizes, joins=True) if supported else None


class Merge(FlowLayer):
    """Concatenate a tuple of tensors into one tensor: the inverse of ``Split``.

    Its inverse splits as ``Split(sizes)`` does, so ``Merge()`` expects two halves as
    ``torch.chunk`` makes them (5 + 4 for a width of 9). Volume preserving.

    Args:
        sizes: The widths of the parts, when they differ from ``torch.chunk``'s halves
            (explicit sizes, or an odd width after an odd number of swaps):
            ``Merge([4, 5])``.
        dim: The dimension to concatenate along.

    Raises:
        ValueError: When merging parts whose widths differ from ``sizes``, rather than
            silently splitting the data differently on the way back.

    Example:
        >>> import torch
        >>> from flowforge import Merge
        >>> x, log_det = Merge()((torch.zeros(2, 5), torch.ones(2, 4)))
        >>> x.shape
        torch.Size([2, 9])
        >>> Merge([4, 5])((torch.zeros(2, 4), torch.ones(2, 5)))[0].shape
        torch.Size([2, 9])
    """

    volume_preserving = True

    def __init__(self, sizes: Sequence[int] | None = None, dim: int = 1) -> None:
        super().__init__()
        self.sizes = _normalize_sizes(sizes)
        self.dim = dim

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        return _merge(z, self.sizes, self.dim), zero_log_det(z)

    def inverse(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, ...], Tensor]:
        return _split(z, self.sizes, self.dim), zero_log_det(z)

    def extra_repr(self) -> str:
        return f"sizes={list(self.sizes) if self.sizes else 'halves'}, dim={self.dim}"

    def handwritten(self) -> PartsGradients | None:
        """The hand-written form (feature-major rows), for merges along the feature dimension."""
        supported = self.dim == 1 and not has_hooks(self) and owns_handwritten(self, "inverse")
        return PartsGradients(self.sizes, joins=False) if supported else None


class Swap(FlowLayer):
    """Exchange the two tensors of a pair: ``(a, b) -> (b, a)``. Its own inverse.

    Between two couplings it lets the second transform what the first left unchanged.

    Example:
        >>> import torch
        >>> from flowforge import Swap
        >>> (a, b), log_det = Swap()((torch.zeros(1, 2), torch.ones(1, 3)))
        >>> a.shape, b.shape, log_det
        (torch.Size([1, 3]), torch.Size([1, 2]), tensor([0.]))
    """

    volume_preserving = True

    def forward(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        if not (isinstance(z, tuple) and len(z) == 2):
            raise TypeError(f"Swap expects a pair of tensors, got {describe(z)}")
        a, b = z
        return (b, a), zero_log_det(z)

    def inverse(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        return self.forward(z)

    def handwritten(self) -> SwapGradients | None:
        """The hand-written form: the pair exchanged, and the gradient likewise."""
        supported = not has_hooks(self) and owns_handwritten(self, "forward", "inverse")
        return SwapGradients() if supported else None


class PartsGradients(Plumbing):
    """The hand-written inverse of ``Split`` (which joins the parts) or ``Merge`` (which
    splits them) on feature-major rows, and its backward (the other one)."""

    def __init__(self, sizes: tuple[int, ...] | None, joins: bool) -> None:
        self.sizes = list(sizes) if sizes is not None else None
        self.joins = joins

    def _split(self, z: Tensor) -> tuple[Tensor, ...]:
        return z.chunk(2) if self.sizes is None else z.split_with_sizes(self.sizes)

    def inverse(self, z: FeatureMajor, batch: Batch) -> tuple[FeatureMajor, None, None]:
        return (torch.cat(z) if self.joins else self._split(z)), None, None

    def backward(self, saved: None, g: FeatureMajor, batch: Batch) -> FeatureMajor:
        return self._split(g) if self.joins else torch.cat(g)


class SwapGradients(Plumbing):
    """The hand-written inverse of ``Swap`` and its backward."""

    def inverse(self, z: FeatureMajor, batch: Batch) -> tuple[FeatureMajor, None, None]:
        return (z[1], z[0]), None, None

    def backward(self, saved: None, g: FeatureMajor, batch: Batch) -> FeatureMajor:
        return (g[1], g[0])
