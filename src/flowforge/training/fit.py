"""``fit``: maximum-likelihood training on in-memory data, resumable and with early stopping.

``fit`` checks its inputs, chooses its parts and runs the epochs. Each part is a small
object in a module of its own: the ``Recipe`` (how to train), the optimizer
(``optim.adam``), the learning-rate ``Schedule``, the ``WeightAverage``,
``EarlyStopping``, the ``Step`` that computes a batch's loss and gradient, the epoch loop
(``epoch.train_epoch``), the held-out NLL (``validation``), and ``History`` and
``TrainState`` (``state``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor

from flowforge.errors import DivergedError, InputError
from flowforge.threads import cpu_threads, training_threads
from flowforge.training.averaging import WeightAverage
from flowforge.training.batches import TrainingData
from flowforge.training.distributed import (
    World,
    collective_failure,
    distributed,
    is_collective_failure,
)
from flowforge.training.divergence import PROBE_ROWS, DivergenceGuard, copy_state
from flowforge.training.epoch import train_epoch
from flowforge.training.optim import adam
from flowforge.training.parallel import check_distributed
from flowforge.training.progress import ProgressReporter
from flowforge.training.recipe import Recipe, as_recipe
from flowforge.training.schedule import make_schedule
from flowforge.training.state import History, TrainState
from flowforge.training.steps import (
    HandwrittenStep,
    Step,
    handwritten_step,
    obstacle_to_handwritten,
    training_step,
)
from flowforge.training.stopping import EarlyStopping
from flowforge.training.validation import heldout_nll

__all__ = ["History", "TrainState", "fit"]

Callback = Callable[[TrainState], None]


def fit(
    model: torch.nn.Module,
    data: Tensor,
    recipe: Recipe | None = None,
    *,
    context: Tensor | Sequence[Tensor] | None = None,
    validation: Tensor | None = None,
    validation_context: Tensor | Sequence[Tensor] | None = None,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    resume: TrainState | None = None,
    progress: bool = True,
    world: World | None = None,
    **options: Any,
) -> History:
    """Train ``model`` by maximum likelihood on the rows of ``data`` (``(n, width)``).

    ``recipe`` says how (``None``: ``DEFAULT_RECIPE``); ``options`` are ``Recipe`` fields
    that override it, so ``fit(model, x, epochs=10, lr=1e-3)`` is
    ``fit(model, x, DEFAULT_RECIPE.replace(epochs=10, lr=1e-3))``. An unknown option is a
    ``TypeError`` that lists the fields. ``context`` holds the context tensors of a
    conditional flow, one row per row of ``data``.

    Batches are slices of a shuffled copy of ``data`` on the model's device (no
    per-item collation); the order of epoch ``e`` depends only on ``seed`` and ``e``,
    so a resumed run repeats an uninterrupted one exactly (``shuffle=False``: the rows in
    their stored order, the notebook's loader). The optimizer is Adam (AdamW with
    ``weight_decay``), over one flat buffer (``FlatAdam``) with ``flat``; the learning
    rate follows ``schedule`` per step after ``warmup`` steps of linear rise. With
    ``ema`` in ``(0, 1)`` (0: off) an exponential moving average of the weights is kept
    (``WeightAverage``, decay ``min(ema, (1 + t) / (10 + t))`` after step ``t``): it is
    what each epoch evaluates, what callbacks and checkpoints see as the model, and what
    the model holds when ``fit`` returns; training continues from the iterates
    (``TrainState.training_state``).

    With ``validation`` data (and its ``validation_context``) the held-out NLL is
    measured after every epoch; ``patience`` stops training after that many epochs
    without improvement, and ``restore_best`` leaves the model with the weights of the
    best epoch. ``callbacks`` are called with the ``TrainState`` after every epoch (for
    checkpoints); ``resume`` continues from such a state. ``progress`` shows a bar (or a
    line per epoch). Returns the ``History``.

    Divergence is caught after every epoch, before it is recorded or called back
    (``flowforge.training.divergence``): a non-finite mean loss, NaN or infinite weights
    after the epoch's last step, or a held-out NLL (without validation data: the NLL of
    the first 256 training rows) that is not finite or absurdly far above the one before
    training raise a one-line ``DivergedError`` (a
    ``FloatingPointError``) naming the epoch and what to change, and leave the model with
    the weights of the last good epoch (as the callbacks last saw them; those it started
    with when no epoch was good). ``data`` and ``validation`` need at least one row.

    ``threads``, ``compile`` and ``gradients`` change only the speed (see ``Recipe``):
    hand-written gradients are used where every layer has them and training runs
    eagerly in one process; ``compile=True``'s compilation time is reported apart, as
    ``History.compile_seconds``.

    Under ``torchrun`` (or in a process group made with ``distributed()``) the same call
    trains one model in every process with DistributedDataParallel: give every process
    the same data, seed and initialized model. Each global batch of ``batch_size`` rows
    is split between the processes, so the run follows a single-process run with the
    same arguments up to rounding (not step for step where layers draw random numbers in
    training, such as dropout); the NLLs are over all processes' rows; only the
    first process shows progress and calls ``callbacks``. ``world`` is the caller's
    process world (from ``distributed()``); without one, ``fit`` uses the process group
    that exists, or joins the one ``torchrun`` describes for the duration of training.

    Args:
        model: The flow (a ``NormalizingFlow``), trained in place.
        data: The training points, ``(n, width)``.
        recipe: How to train (``None``: ``DEFAULT_RECIPE``).
        context: A conditional flow's context tensors, one row per row of ``data``.
        validation: Held-out points, scored after every epoch.
        validation_context: The context of the held-out points.
        seed: Sets the order of the batches of every epoch.
        callbacks: Called with the ``TrainState`` after every epoch.
        resume: A ``TrainState`` to continue from.
        progress: Show a progress bar (or a line per epoch).
        world: The caller's process world (from ``distributed()``).
        **options: ``Recipe`` fields that override ``recipe``'s.

    Returns:
        The ``History`` of the run: per-epoch training and held-out NLLs, times, the
        best epoch.

    Raises:
        TypeError: For an unknown option (the message lists the fields).
        InputError: For bad data, or ``patience`` without validation data.
        DivergedError: When training diverges (see above).

    Example:
        >>> import torch
        >>> from flowforge import fit, realnvp
        >>> _ = torch.manual_seed(0)
        >>> model = realnvp(2, couplings=2, hidden=8)
        >>> train_points = torch.randn(512, 2) * 0.5 + 1.0
        >>> heldout_points = torch.randn(256, 2) * 0.5 + 1.0
        >>> history = fit(model, train_points, validation=heldout_points, epochs=5,
        ...               batch_size=128, warmup=0, progress=False)
        >>> history.epochs, len(history.heldout_nll)
        (5, 5)
        >>> history.best_heldout_nll < history.start_heldout_nll  # nats per point
        True
    """
    recipe = as_recipe(recipe, options)
    inputs = TrainingData.on(model, data, context, validation, validation_context)
    if recipe.patience is not None and inputs.validation is None:
        raise InputError(
            f"patience={recipe.patience} stops on the held-out NLL, but there is no "
            "validation data: pass validation=..., or patience=None"
        )
    threads = training_threads(model, recipe.batch_size, recipe.threads)
    with _joined(world, inputs.device) as world, cpu_threads(threads):
        if world.distributed:
            check_distributed(
                model, inputs.device, inputs.points, inputs.validation, recipe.batch_size, world
            )
        obstacle = obstacle_to_handwritten(recipe, world)
        handwritten = handwritten_step(model, recipe.gradients, obstacle)
        model.train()
        with adam(model.parameters(), recipe.lr, recipe.weight_decay, flat=recipe.flat) as opt:
            run = _Run(model, inputs, recipe, opt, resume, seed, world)
            run.epochs(handwritten, callbacks, progress)
            run.finish()
    if recipe.restore_best:
        run.stopping.restore(model)
    model.eval()
    return run.history


@contextmanager
def _joined(world: World | None, device: torch.device) -> Iterator[World]:
    """The caller's ``world``; without one, the process group that exists or that
    ``torchrun`` describes (joined for the block), or a single process."""
    if world is not None:
        yield world
        return
    with distributed(device) as (joined, _):
        yield joined


class _Run:
    """One call of ``fit`` after its inputs are checked: its parts, and its epochs.

    Made inside the optimizer's block: it restores ``resume`` (the model, the optimizer,
    the history, the step count, the best weights; with a weight average, the average as
    the model and then the iterates training goes on from).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        inputs: TrainingData,
        recipe: Recipe,
        optimizer: torch.optim.Optimizer,
        resume: TrainState | None,
        seed: int,
        world: World,
    ) -> None:
        self.model, self.inputs, self.recipe = model, inputs, recipe
        self.optimizer, self.seed, self.world = optimizer, seed, world
        self.history, step, self.first_epoch, best_state = History(), 0, 0, None
        if resume is not None:
            model.load_state_dict(resume.model_state)
            optimizer.load_state_dict(resume.optimizer_state)
            self.history = copy.deepcopy(resume.history)
            step, self.first_epoch, best_state = resume.step, resume.epoch, resume.best_model_state
            if self.history.stopped_early:
                self.first_epoch = recipe.epochs
        self.last_good = copy_state(model.state_dict())  # what a divergence falls back to
        self.guard = self._guard()
        self.average = None
        if recipe.ema > 0:  # starts from the model as it is (resumed: the saved average)
            self.average = WeightAverage(_updated_tensors(optimizer), recipe.ema, step)
            if resume is not None and resume.training_state is not None:
                model.load_state_dict(resume.training_state)  # the iterate training goes on from
        total = recipe.epochs * math.ceil(len(inputs.points) / recipe.batch_size)
        self.schedule = make_schedule(recipe.schedule, recipe.lr, total, recipe.warmup, step)
        best = self.history.best_epoch, self.history.best_heldout_nll
        self.stopping = EarlyStopping(recipe.patience, *best, best_state)

    def epochs(
        self, handwritten: HandwrittenStep | None, callbacks: Sequence[Callback], progress: bool
    ) -> None:
        """Train the remaining epochs; a failed collective is one ``DistributedError`` line."""
        recipe, world, epoch = self.recipe, self.world, self.first_epoch
        callbacks = callbacks if world.is_main else ()
        reporter = ProgressReporter(
            recipe.epochs, enabled=progress and world.is_main, initial=epoch
        )
        try:
            if epoch >= recipe.epochs:
                return
            with training_step(self.model, handwritten, recipe, self.inputs, world) as step:
                if recipe.compile:
                    self.history.compile_seconds = step.compile_seconds
                for epoch in range(self.first_epoch, recipe.epochs):
                    if self.epoch(step, epoch, callbacks, reporter):
                        break
        except DivergedError:
            self.model.load_state_dict(self.last_good)
            raise
        except RuntimeError as error:
            if world.distributed and is_collective_failure(error):
                raise collective_failure(error, world, epoch) from error
            raise
        finally:
            reporter.close()

    def epoch(
        self, step: Step, epoch: int, callbacks: Sequence[Callback], reporter: ProgressReporter
    ) -> bool:
        """Train epoch ``epoch`` (from 0), check it, then evaluate, record and call back
        with the average in the model (if any); whether to stop early."""
        started = time.perf_counter()
        self.model.train()
        batches = self.inputs.epoch(epoch, self.recipe.batch_size, self.seed, self.recipe.shuffle)
        train_nll = train_epoch(
            step, batches, self.optimizer, self.schedule, epoch, self.world, self.average
        )
        trained = time.perf_counter()
        self.guard.weights(self.model, epoch)
        iterates = None if self.average is None else copy_state(self.model.state_dict())
        with nullcontext() if self.average is None else self.average.applied():
            if self.average is not None:
                self.guard.weights(self.model, epoch, "averaged weights")
            heldout = self._heldout()
            self._check(heldout, epoch)
            self.history.record(
                train_nll, heldout, time.perf_counter() - started, trained - started
            )
            validated = self.inputs.validation is not None
            stop = validated and self.stopping.observe(epoch + 1, heldout, self.model)
            self.history.best_epoch = self.stopping.best_epoch
            self.history.stopped_early = stop and epoch + 1 < self.recipe.epochs
            reporter.update(train_nll, heldout)
            self.last_good = copy_state(self.model.state_dict())
            state = TrainState(
                epoch + 1,
                self.schedule.step,
                self.history,
                self.last_good,
                self.optimizer.state_dict(),
                self.stopping.best_state,
                iterates,
            )
            for callback in callbacks:
                callback(state)
        return stop

    def _guard(self) -> DivergenceGuard:
        """The divergence checks, against the held-out NLL before the first epoch (measured
        now for a fresh run, kept in the history of a resumed one); without validation
        data, against the probe's NLL now."""
        history = self.history
        if self.first_epoch >= self.recipe.epochs:
            return DivergenceGuard(math.nan, self.world)
        if self.inputs.validation is None:
            return DivergenceGuard(self._probe(), self.world)
        if math.isnan(history.start_heldout_nll):
            first = history.heldout_nll[0] if history.heldout_nll else math.nan
            # resumed from a state that did not keep it: the NLL after its first epoch
            history.start_heldout_nll = first if math.isfinite(first) else self._heldout()
        return DivergenceGuard(history.start_heldout_nll, self.world)

    def _check(self, heldout: float, epoch: int) -> None:
        """``DivergedError`` unless the held-out NLL (without validation data: the
        probe's) is finite and not absurd."""
        if self.inputs.validation is not None:
            self.guard.heldout(heldout, epoch)
        else:
            rows = min(PROBE_ROWS, len(self.inputs.points))
            self.guard.heldout(self._probe(), epoch, f"NLL of the first {rows} training rows")

    def _probe(self) -> float:
        """The NLL of the first ``PROBE_ROWS`` training rows (scored on every process)."""
        context = tuple(c[:PROBE_ROWS] for c in self.inputs.context)
        return heldout_nll(self.model, self.inputs.points[:PROBE_ROWS], context)

    def _heldout(self) -> float:
        """The held-out NLL of the model as it is (``nan`` without validation data)."""
        if self.inputs.validation is None:
            return math.nan
        return heldout_nll(
            self.model, self.inputs.validation, self.inputs.validation_context, self.world
        )

    def finish(self) -> None:
        """Leave the average in the model for good (when there is one)."""
        if self.average is not None:
            self.average.copy_to_tensors()


def _updated_tensors(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """The tensors ``optimizer`` updates in place (``FlatAdam``: its one flat buffer)."""
    return [p for group in optimizer.param_groups for p in group["params"]]
