"""Conditioning on labels: one-hot context, and a conditional flow with its context fixed."""

from __future__ import annotations

import torch
from torch import Tensor


def label_context(labels: Tensor, classes: int) -> Tensor:
    """One-hot float context for integer labels, for a conditional flow.

    Args:
        labels: Integer labels ``(n,)`` in ``0 .. classes - 1``.
        classes: The number of classes.

    Returns:
        A float tensor ``(n, classes)`` in the default dtype.

    Raises:
        ValueError: If a label lies outside ``0 .. classes - 1``.

    Example:
        >>> import torch
        >>> from flowforge.conditional import label_context
        >>> label_context(torch.tensor([0, 2]), classes=3)
        tensor([[1., 0., 0.],
                [0., 0., 1.]])
    """
    labels = torch.as_tensor(labels, dtype=torch.long)
    if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < classes:
        raise ValueError(
            f"labels must lie in 0..{classes - 1}, got values from {int(labels.min())} "
            f"to {int(labels.max())}"
        )
    return torch.nn.functional.one_hot(labels, classes).to(torch.get_default_dtype())


class Conditioned(torch.nn.Module):
    """A conditional flow with one context row fixed: the distribution ``p(x | context)``.

    ``log_prob(x)`` ``(batch, width) -> (batch,)`` and ``sample(n) -> (n, width)``, so it
    can stand wherever an unconditional model does (plots, metrics).

    Args:
        model: A conditional flow (a ``NormalizingFlow`` built with ``context_width``).
        context: One context row, shape ``(c,)``; it is kept as a buffer and follows
            the model's dtype and device.

    Raises:
        ValueError: If ``context`` is not one row.

    Example:
        >>> import torch
        >>> from flowforge import realnvp
        >>> from flowforge.conditional import Conditioned, label_context
        >>> _ = torch.manual_seed(0)
        >>> model = realnvp(2, couplings=2, hidden=8, context_width=3)
        >>> c = label_context(torch.tensor([0, 2]), classes=3)
        >>> model.log_prob(torch.randn(2, 2), c).shape  # one context row per point
        torch.Size([2])
        >>> model.sample(4, c).shape  # 4 samples for each of the 2 rows
        torch.Size([2, 4, 2])
        >>> given_2 = Conditioned(model, c[1])
        >>> given_2.sample(5).shape, given_2.log_prob(torch.randn(5, 2)).shape
        (torch.Size([5, 2]), torch.Size([5]))
    """

    def __init__(self, model: torch.nn.Module, context: Tensor) -> None:
        super().__init__()
        if context.dim() != 1:
            raise ValueError(f"give one context row of shape (c,), got {tuple(context.shape)}")
        self.model = model
        self.register_buffer("context", context.detach().clone())

    def _rows(self, n: int, like: Tensor) -> Tensor:
        return self.context.to(like.dtype).expand(n, -1)

    def log_prob(self, x: Tensor) -> Tensor:
        return self.model.log_prob(x, self._rows(len(x), x))

    def forward(self, x: Tensor) -> Tensor:
        return self.log_prob(x)

    def sample(self, n: int = 1) -> Tensor:
        return self.model.sample(n, self.context)
