"""Hand-written gradients: the conventions every piece's hand-written backward follows.

A training step of a small flow is a few hundred tiny tensor operations, and autograd's
bookkeeping (a graph node per operation, an accumulation node per parameter) costs
more than the arithmetic. So each piece that can (a plumbing layer, a coupling, an MLP,
a transformer, the normal base) also offers its inverse (data to latent, the direction
``log_prob`` uses) with the chain rule written out, through a method ``handwritten()``
that returns the piece's hand-written form, or ``None`` when it has none (a layer
without one, a custom callable, a module with hooks). ``flowforge.training.handwritten``
composes them into the mean NLL of a batch and its gradient: the numbers autograd gives,
in about half the time.

Conventions shared by every hand-written form:

- Values are carried feature-major: a batch of ``n`` points of width ``d`` is a
  ``(d, n)`` tensor, so each feature is a contiguous row, a network layer is
  ``W @ h + b[:, None]`` and a coupling's halves are row blocks. Tuples hold one such
  tensor per part.
- ``inverse(z, batch) -> (z', log_det, saved)``: ``log_det`` is the inverse's
  log-determinant summed over the whole batch, a 0-d tensor (``None`` for a
  volume-preserving piece); ``saved`` is what ``backward`` needs.
- ``backward(saved, g, batch) -> g_in``: the gradient with respect to the input, given
  the output's; parameter gradients are added to ``.grad`` (``add_matmul``,
  ``add_row_sums``), skipping frozen parameters.
- ``refresh()`` rebuilds any cached views of parameter data after the parameters'
  storage changed (the composer checks that once per call).
- A hand-written form is offered only by the class that defines the computation it
  replaces (``owns_handwritten``): a subclass that redefines ``inverse`` trains through
  autograd unless it writes its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor
from torch.nn.modules import module as nn_module

Value = Tensor | tuple[Tensor, ...]  # feature-major here: (d, n) tensors, or tuples of them


def has_hooks(module: torch.nn.Module) -> bool:
    """Whether calling ``module`` would run hooks (its own or global ones): a module that
    has them is called as a module, never through a shortcut that would skip them."""
    return bool(
        module._forward_hooks
        or module._forward_pre_hooks
        or module._backward_hooks
        or module._backward_pre_hooks
        or nn_module._global_forward_hooks
        or nn_module._global_forward_pre_hooks
        or nn_module._global_backward_hooks
        or nn_module._global_backward_pre_hooks
    )


def owns_handwritten(obj: object, *methods: str) -> bool:
    """Whether the class that defines each of ``methods`` (``"inverse"``, ...) also defines
    ``handwritten``: a subclass that redefines a computation without a hand-written form
    of its own gets none, rather than its parent's, which computes something else."""
    return all(
        "handwritten" in vars(next(c for c in type(obj).__mro__ if name in vars(c)))
        for name in methods
    )


@dataclass
class Batch:
    """Per-step constants shared by every piece's backward pass."""

    ones: Tensor  # (n,): a row sum is ``g @ ones``, one operation (bias gradients)
    log_det_grad: Tensor  # 0-d: d(mean NLL)/d(a sample's inverse log-det) = -1/n
    context: Tensor | None  # (c, n): the context columns, feature-major, or None


class HandwrittenLayer(Protocol):
    """A layer's inverse with its hand-written backward (see the module docstring)."""

    def inverse(self, z: Value, batch: Batch) -> tuple[Value, Tensor | None, Any]: ...

    def backward(self, saved: Any, g: Value, batch: Batch) -> Value: ...

    def refresh(self) -> None: ...


class Plumbing:
    """Base of the hand-written forms of layers that only move numbers: no log-det, no
    parameters, nothing cached."""

    def refresh(self) -> None:
        """Nothing to rebuild."""


def add_matmul(p: torch.nn.Parameter, a: Tensor, b: Tensor, alpha: float) -> None:
    """``p.grad += alpha * a @ b`` (made if ``p.grad`` is ``None``); skipped for frozen ``p``."""
    if not p.requires_grad:
        return
    if p.grad is None:
        p.grad = torch.mm(a, b).mul_(alpha)
    else:
        p.grad.addmm_(a, b, alpha=alpha)


def add_row_sums(p: torch.nn.Parameter | None, g: Tensor, ones: Tensor, alpha: float) -> None:
    """``p.grad += alpha * g.sum(1)`` for a bias ``p`` (``None``: no bias)."""
    if p is None or not p.requires_grad:
        return
    if p.grad is None:
        p.grad = torch.mv(g, ones).mul_(alpha)
    else:
        p.grad.addmv_(g, ones, alpha=alpha)
