"""Step strategies: how one batch's loss and its gradient are computed.

A step is called with a batch ``(x, context)`` after the optimizer zeroed the
gradients; it adds the gradient of the batch's loss to every trainable parameter's
``.grad`` and returns the loss (a 0-d tensor, left on the device). The optimizer step,
the schedule and the weight average are the epoch loop's (``flowforge.training.epoch``).

- ``AutogradStep``: ``-module(x).mean()`` and ``backward()``, eagerly.
- ``CompiledStep``: the same through ``torch.compile(model)``, compiled when it is made
  for the epoch's batch shapes, so the timed epochs never pause to compile.
- ``HandwrittenStep``: the model's hand-written gradients (``flowforge.training.handwritten``):
  the same numbers as autograd, with less overhead per step.
- ``DataParallelStep``: this process's share of every global batch, under
  DistributedDataParallel (``flowforge.training.parallel`` wraps the module).

``handwritten_step`` says whether a model can take the hand-written path;
``training_step`` chooses the step ``fit`` trains with.
"""

from __future__ import annotations

import abc
import time
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from flowforge.errors import InputError
from flowforge.training.distributed import World, share
from flowforge.training.handwritten import HandwrittenNLL, handwritten_nll, unsupported_part
from flowforge.training.parallel import data_parallel, unused_parameters

if TYPE_CHECKING:
    from flowforge.training.batches import TrainingData
    from flowforge.training.recipe import Recipe


class Step(abc.ABC):
    """The loss of one batch, with its gradient added to the parameters' ``.grad``.

    ``compile_seconds`` is the time making the step spent compiling (0 when it does
    not). A step is a context manager: ``close()`` (at the block's end) lets go of
    what it holds, such as DistributedDataParallel's gradient hooks.
    """

    compile_seconds: float = 0.0

    @abc.abstractmethod
    def __call__(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        """The loss of the batch ``x`` (``(B, width)``) with its ``context``; adds its
        gradient to every trainable parameter's ``.grad``."""

    def close(self) -> None:  # noqa: B027 (most steps hold nothing to let go of)
        """Let go of what the step holds (nothing, unless a subclass says otherwise)."""

    def __enter__(self) -> Step:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AutogradStep(Step):
    """``loss = -module(x, *context).mean(); loss.backward()``."""

    def __init__(self, module: torch.nn.Module) -> None:
        self.module = module

    def __call__(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        loss = -self.module(x, *context).mean()
        loss.backward()
        return loss


class CompiledStep(AutogradStep):
    """``AutogradStep`` through ``torch.compile(model)``, compiled when it is made.

    Compilation happens on the first forward and backward of each batch shape, so both
    run here (without an optimizer step; the next step zeroes the gradients) for a full
    batch of ``batch_size`` rows of ``data`` and for the epoch's last, shorter batch, if
    any (this process's share of them under several processes). ``compile_seconds``
    holds the time it took.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        data: Tensor,
        batch_size: int,
        context: tuple[Tensor, ...] = (),
        world: World | None = None,
    ) -> None:
        super().__init__(torch.compile(model))
        world = World() if world is None else world
        batches = {min(batch_size, len(data)), len(data) % batch_size} - {0}
        sizes = {stop - start for start, stop in (share(rows, world) for rows in batches)} - {0}
        started = time.perf_counter()
        for size in sorted(sizes, reverse=True):
            (-self.module(data[:size], *(c[:size] for c in context)).mean()).backward()
        self.compile_seconds = time.perf_counter() - started


class DataParallelStep(Step):
    """An autograd step on this process's share of every global batch, under DDP.

    Every batch is a global batch of ``B`` rows, the same on every process: each trains
    on its ``share`` with the loss ``-sum(log p) * N / B``, so DistributedDataParallel's
    average of the ``N`` gradients is the gradient of the global batch's mean NLL,
    however unevenly the rows split. ``inner`` gives the module (eager or compiled);
    ``model`` and ``data`` tell DDP whether some parameter never gets a gradient.
    """

    def __init__(
        self, inner: AutogradStep, model: torch.nn.Module, data: TrainingData, world: World
    ) -> None:
        find_unused = unused_parameters(model, data.points, data.context)
        self.module: torch.nn.Module | None = data_parallel(inner.module, data.device, find_unused)
        self.world = world
        self.compile_seconds = inner.compile_seconds

    def __call__(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        rows = len(x)
        start, stop = share(rows, self.world)
        x, context = x[start:stop], tuple(c[start:stop] for c in context)
        loss = -self.module(x, *context).sum() * (self.world.size / rows)
        loss.backward()
        return loss

    def close(self) -> None:
        """Drop the DistributedDataParallel module, and its gradient hooks with it."""
        self.module = None


class HandwrittenStep(Step):
    """The loss and gradient from ``HandwrittenNLL`` (``handwritten_step`` makes one)."""

    def __init__(self, nll: HandwrittenNLL) -> None:
        self.nll = nll

    def __call__(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        return self.nll(x, *context)


def handwritten_step(
    model: torch.nn.Module, gradients: str = "auto", obstacle: str | None = None
) -> HandwrittenStep | None:
    """The hand-written step for ``model``, or ``None`` where autograd is to be used.

    ``gradients`` is ``Recipe.gradients``: ``"autograd"`` gives ``None``; ``"auto"``
    the hand-written step when every part of the model has one and nothing else stands
    in the way (``obstacle``: why training cannot take that path, such as
    ``torch.compile``), else ``None``; ``"handwritten"`` the step or an ``InputError``
    (a ``ValueError``) that says why not.
    """
    if gradients == "autograd":
        return None
    nll = handwritten_nll(model)
    reason = unsupported_part(model) if nll is None else obstacle
    if reason is None:
        return HandwrittenStep(nll)
    if gradients == "handwritten":
        raise InputError(
            f"fit(gradients='handwritten') cannot train this model: {reason}; "
            "use gradients='auto' (autograd where needed)"
        )
    return None


def obstacle_to_handwritten(recipe: Recipe, world: World) -> str | None:
    """Why training under ``recipe`` and ``world`` must go through autograd, or ``None``."""
    if recipe.compile:
        return "compile=True traces the model's autograd graph"
    if world.distributed:
        return "DistributedDataParallel averages gradients through autograd hooks"
    return None


def training_step(
    model: torch.nn.Module,
    handwritten: HandwrittenStep | None,
    recipe: Recipe,
    data: TrainingData,
    world: World,
) -> Step:
    """The step ``fit`` trains with: ``handwritten`` if given, else autograd, eagerly or
    compiled (``recipe.compile``), in DistributedDataParallel under several processes."""
    if handwritten is not None:
        return handwritten
    if recipe.compile:
        step = CompiledStep(model, data.points, recipe.batch_size, data.context, world)
    else:
        step = AutogradStep(model)
    return DataParallelStep(step, model, data, world) if world.distributed else step
