"""Values that flow through layers: a tensor or a flat tuple of tensors.

Every tensor in a value is batch-first and all share one batch size. These helpers
treat both forms alike, so layers and the checker need not branch on the type.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

Value = Tensor | tuple[Tensor, ...]


def as_context(context: Tensor | Sequence[Tensor] | None) -> tuple[Tensor, ...]:
    """Context tensors as a tuple: ``None`` is none, a tensor is one."""
    if context is None:
        return ()
    return (context,) if isinstance(context, Tensor) else tuple(context)


def num_samples(a: Value) -> int:
    """Return the number of samples (the batch size) of a tensor or a tuple of tensors."""
    if isinstance(a, tuple):
        return num_samples(a[0])
    return len(a)


def first_tensor(a: Value) -> Tensor:
    """The first tensor of a value: the one whose dtype and device a log-det follows."""
    return a[0] if isinstance(a, tuple) else a


def zero_log_det(a: Value) -> Tensor:
    """A zero log-determinant of shape ``(batch,)`` with the value's dtype and device."""
    t = first_tensor(a)
    return t.new_zeros(t.shape[0])


def per_sample(t: Tensor) -> Tensor:
    """Each sample's elements as one row: ``(batch, ...) -> (batch, features)``.

    ``t.reshape(batch, -1)``, but also for a batch of zero rows (where ``-1`` is
    ambiguous to torch); a ``(batch,)`` tensor gives ``(batch, 1)``.
    """
    return t.reshape(t.shape[0], math.prod(t.shape[1:]))


def sum_per_sample(t: Tensor) -> Tensor:
    """Sum every element of each sample: ``(batch, ...) -> (batch,)``."""
    return t.sum(dim=1) if t.dim() == 2 else per_sample(t).sum(dim=1)


# From this many rows on, ``concatenate`` joins 2-D parts side by side through their
# transposes (one block copy per part) instead of copying row by row.
TRANSPOSED_CONCAT_ROWS = 2048


def concatenate(parts: tuple[Tensor, ...], dim: int = 1) -> Tensor:
    """``torch.cat(parts, dim)``; for many rows of 2-D parts along ``dim=1`` the result
    is built as the transpose of the parts' transposes stacked (same values, faster,
    not contiguous)."""
    if (
        dim in (1, -1)
        and all(p.dim() == 2 for p in parts)
        and parts[0].shape[0] >= TRANSPOSED_CONCAT_ROWS
    ):
        return torch.cat([p.t() for p in parts]).t()
    return torch.cat(parts, dim=dim)


def flatten_value(a: Value) -> Tensor:
    """Concatenate every tensor of a value into one ``(batch, features)`` matrix."""
    if isinstance(a, tuple):
        return torch.cat([per_sample(t) for t in a], dim=1)
    return per_sample(a)


def describe(a: Value) -> str:
    """A short human-readable description of a value's shapes, for error messages."""
    if isinstance(a, tuple):
        return "(" + ", ".join(describe(t) for t in a) + ")"
    if isinstance(a, Tensor):
        return f"tensor{tuple(a.shape)}"
    return type(a).__name__


def scalar_to_vector(x: Tensor | float, n: int) -> Tensor:
    """A log-determinant as a ``(n,)`` tensor: a number or a 0-d tensor repeated ``n``
    times, anything else unchanged (the notebook's helper of its layer checker)."""
    if not isinstance(x, Tensor):
        return torch.tensor(x, dtype=torch.get_default_dtype()).repeat(n)
    if x.dim() == 0:
        return x.repeat(n)
    return x
