"""``fit``: maximum-likelihood training on in-memory data, resumable and with early stopping."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from flowforge.errors import DivergedError
from flowforge.evaluate import log_likelihood, mean_nll
from flowforge.threads import cpu_threads, training_threads
from flowforge.training.averaging import WeightAverage
from flowforge.training.data import check_points, tensor_batches
from flowforge.training.distributed import (
    LaunchError,
    World,
    all_sum,
    check_same_data,
    collective_failure,
    distributed,
    is_collective_failure,
    share,
    takes_keyword,
)
from flowforge.training.handwritten import HandwrittenNLL, handwritten_nll, unsupported_part
from flowforge.training.optim import adam
from flowforge.training.progress import ProgressReporter
from flowforge.training.recipe import DEFAULT_RECIPE, Recipe


@dataclass
class History:
    """What happened in training, one entry per completed epoch.

    ``train_nll`` is the mean NLL over the epoch's batches (nats per point, measured
    while the weights changed); ``heldout_nll`` the NLL on the validation data after
    the epoch (``nan`` when there is none); ``seconds`` the wall time of each epoch,
    ``train_seconds`` the part of it spent on training steps (without validation).
    ``compile_seconds`` is the time ``torch.compile`` took before the first epoch
    (``fit(compile=True)``; 0 otherwise).
    """

    train_nll: list[float] = field(default_factory=list)
    heldout_nll: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    train_seconds: list[float] = field(default_factory=list)
    compile_seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train_nll)

    @property
    def best_heldout_nll(self) -> float:
        return math.nan if self.best_epoch is None else self.heldout_nll[self.best_epoch - 1]

    def to_dict(self) -> dict:
        return {
            "train_nll": self.train_nll,
            "heldout_nll": self.heldout_nll,
            "seconds": self.seconds,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "train_seconds": self.train_seconds,
            "compile_seconds": self.compile_seconds,
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        return cls(
            list(d["train_nll"]),
            list(d["heldout_nll"]),
            list(d["seconds"]),
            d.get("best_epoch"),
            bool(d.get("stopped_early", False)),
            list(d.get("train_seconds", [])),
            float(d.get("compile_seconds", 0.0)),
        )


@dataclass
class TrainState:
    """Everything needed to continue training exactly where it stopped.

    ``epoch`` counts completed epochs and ``step`` optimizer steps; ``best_model_state``
    holds the weights of the best validation epoch (when there is validation data).
    With a weight average (``fit(ema=...)``) ``model_state`` is the average (the model
    that was evaluated) and ``training_state`` the iterate training continues from.
    Handed to callbacks after every epoch, and accepted by ``fit(resume=...)``.
    """

    epoch: int
    step: int
    history: History
    model_state: dict[str, Tensor]
    optimizer_state: dict
    best_model_state: dict[str, Tensor] | None = None
    training_state: dict[str, Tensor] | None = None


def learning_rate(
    base_lr: float, schedule: str, step: int, total_steps: int, warmup: int = 0
) -> float:
    """The learning rate at ``step`` (from 0): ``"constant"``, or ``"cosine"`` decay to
    zero at ``total_steps``; during the first ``warmup`` steps it rises linearly."""
    if schedule == "constant":
        rate = base_lr
    elif schedule == "cosine":
        rate = 0.5 * base_lr * (1 + math.cos(math.pi * min(step, total_steps) / total_steps))
    else:
        raise ValueError(f"unknown schedule {schedule!r}; use 'cosine' or 'constant'")
    return rate * min(1.0, (step + 1) / warmup) if warmup > 0 else rate


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that orders epoch ``epoch``'s batches: a function of seed and epoch only."""
    state = np.random.SeedSequence([seed, epoch]).generate_state(2, dtype=np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def train_epoch(
    model: torch.nn.Module,
    batches: Iterable[tuple[Tensor, tuple[Tensor, ...]]],
    optimizer: torch.optim.Optimizer,
    set_lr: Callable[[], None] | None = None,
    epoch: int = 0,
    world: World | None = None,
    handwritten: HandwrittenNLL | None = None,
    average: WeightAverage | None = None,
) -> float:
    """One pass of NLL steps over ``batches``; returns the mean NLL per point.

    With ``handwritten`` (``handwritten_nll(model)``) each step's loss and gradients come
    from it instead of autograd: the same numbers, with less overhead per step.
    ``average`` (a ``WeightAverage``) is updated after every step.

    With several processes (``world``, under DistributedDataParallel) every batch is a
    global batch of ``B`` rows, the same on every process: each trains on its
    ``share`` with the loss ``-sum(log p) * N / B``, so DDP's average of the ``N``
    gradients is the gradient of the global batch's mean NLL, however unevenly the rows
    split. The mean returned is over every process's rows: sums and counts, all-reduced.

    The losses stay on the device until the epoch ends (one host sync per epoch).
    Raises ``DivergedError`` (a ``FloatingPointError``) if the loss became NaN or infinite.
    """
    world = World() if world is None else world
    losses, weights, own_rows = [], [], 0
    for x, context in batches:
        if set_lr is not None:
            set_lr()
        rows = len(x)
        optimizer.zero_grad(set_to_none=True)
        if handwritten is not None:
            loss = handwritten(x, *context)
        else:
            if world.distributed:
                start, stop = share(rows, world)
                x, context = x[start:stop], tuple(c[start:stop] for c in context)
                loss = -model(x, *context).sum() * (world.size / rows)
            else:
                loss = -model(x, *context).mean()  # the same loss for N = 1, in one operation
            loss.backward()
        optimizer.step()
        if average is not None:
            average.update()
        losses.append(loss.detach())
        weights.append(rows / world.size)  # loss * weight: this process's sum of -log p
        own_rows += len(x)
    if not losses:
        return math.nan
    weights = torch.tensor(weights, dtype=losses[0].dtype, device=losses[0].device)
    local = torch.stack(losses) @ weights
    sums = torch.stack([local.double(), local.new_tensor(own_rows, dtype=torch.float64)])
    total, count = all_sum(sums, world)
    mean = float(total) / float(count)
    if not math.isfinite(mean):
        raise DivergedError(
            f"training diverged in epoch {epoch + 1} (mean NLL {mean}); "
            "lower the learning rate or use a bounded log-scale"
        )
    return mean


def _updated_tensors(optimizer: torch.optim.Optimizer) -> list[Tensor]:
    """The tensors ``optimizer`` updates in place (``FlatAdam``: its one flat buffer)."""
    return [p for group in optimizer.param_groups for p in group["params"]]


def _iterate_state(model: torch.nn.Module, average: WeightAverage) -> dict[str, Tensor]:
    """A copy of the model's ``state_dict`` with the iterates in place of the average."""
    average.swap()
    state = {name: value.detach().clone() for name, value in model.state_dict().items()}
    average.swap()
    return state


def _model_device(model: torch.nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def _as_tuple(context: Tensor | Sequence[Tensor] | None) -> tuple[Tensor, ...]:
    if context is None:
        return ()
    return (context,) if isinstance(context, Tensor) else tuple(context)


def _compile_for_training(
    model: torch.nn.Module,
    data: Tensor,
    batch_size: int,
    context: tuple[Tensor, ...] = (),
    world: World | None = None,
) -> tuple[torch.nn.Module, float]:
    """``torch.compile(model)``, compiled now; returns it and the seconds compiling took.

    Compilation happens on the first forward and backward of each batch shape, so both
    run here (without an optimizer step; the gradients are discarded) for a full batch
    and for the epoch's last, shorter batch, if any (this process's share of them under
    several processes). Training then never pauses to compile, and its time excludes
    compilation.
    """
    world = World() if world is None else world
    compiled = torch.compile(model)
    batches = {min(batch_size, len(data)), len(data) % batch_size} - {0}
    sizes = {stop - start for start, stop in (share(rows, world) for rows in batches)} - {0}
    started = time.perf_counter()
    for size in sorted(sizes, reverse=True):
        (-compiled(data[:size], *(c[:size] for c in context)).mean()).backward()
    return compiled, time.perf_counter() - started


def fit(
    model: torch.nn.Module,
    data: Tensor,
    *,
    context: Tensor | Sequence[Tensor] | None = None,
    validation: Tensor | None = None,
    validation_context: Tensor | Sequence[Tensor] | None = None,
    epochs: int = DEFAULT_RECIPE.epochs,
    batch_size: int = DEFAULT_RECIPE.batch_size,
    lr: float = DEFAULT_RECIPE.lr,
    weight_decay: float = DEFAULT_RECIPE.weight_decay,
    schedule: str = DEFAULT_RECIPE.schedule,
    warmup: int = DEFAULT_RECIPE.warmup,
    ema: float = DEFAULT_RECIPE.ema,
    shuffle: bool = True,
    patience: int | None = None,
    restore_best: bool = True,
    seed: int = 0,
    progress: bool = True,
    callbacks: Sequence[Callable[[TrainState], None]] = (),
    resume: TrainState | None = None,
    threads: int | str | None = "auto",
    compile: bool = False,
    gradients: str = "auto",
    world: World | None = None,
) -> History:
    """Train ``model`` by maximum likelihood on the rows of ``data`` (``(n, width)``).

    Batches are slices of a shuffled copy of ``data`` on the model's device (no
    per-item collation); the order of epoch ``e`` depends only on ``seed`` and ``e``,
    so a resumed run repeats an uninterrupted one exactly; ``shuffle=False`` visits the
    rows in their stored order every epoch (the notebook's loader). The optimizer is Adam
    (AdamW with ``weight_decay``) over one flat buffer (``FlatAdam``), the learning rate
    follows ``schedule`` per step after ``warmup`` steps of linear rise. With ``ema``
    in ``(0, 1)`` (0: off) an exponential moving average of the weights is kept
    (``WeightAverage``, decay ``min(ema, (1 + t) / (10 + t))`` after step ``t``): it is
    what each epoch evaluates, what callbacks and checkpoints see as the model, and what
    the model holds when ``fit`` returns; training continues from the iterates. The
    defaults are ``DEFAULT_RECIPE``.

    With ``validation`` data, the held-out NLL is measured after every epoch;
    ``patience`` stops training after that many epochs without improvement, and
    ``restore_best`` leaves the model with the weights of the best epoch.
    ``callbacks`` are called with the ``TrainState`` after every epoch (for
    checkpoints); ``resume`` continues from such a state. Returns the ``History``.

    ``threads`` is the CPU thread count while training (``"auto"``: one thread for
    small models, see ``flowforge.threads``; restored afterwards). ``compile=True``
    trains through ``torch.compile(model)``; the compilation time is reported
    separately as ``History.compile_seconds``.

    ``gradients`` says how each step's gradient is computed: ``"auto"`` (the default)
    uses hand-written gradients (``flowforge.training.handwritten``: the same numbers
    as autograd, in about half the time per step) when every layer of the model has
    them and training runs eagerly in one process, else autograd; ``"autograd"``
    always uses autograd; ``"handwritten"`` requires them and says why it cannot.

    Under ``torchrun`` (or in a process group made with ``distributed()``) the same call
    trains one model in every process with DistributedDataParallel: give every process
    the same data, seed and initialized model. Each global batch of ``batch_size`` rows
    is split between the processes, so the run follows a single-process run with the
    same arguments up to rounding (not step for step where layers draw random numbers in
    training, such as dropout); the NLLs are over all processes' rows; only the
    first process shows progress and calls ``callbacks``. ``world`` is the caller's
    process world (from ``distributed()``); without one, ``fit`` uses the process group
    that exists, or joins the one ``torchrun`` describes for the duration of training.
    """
    width = getattr(model, "width", None)
    check_points(data, width)
    device = _model_device(model)
    data = data.to(device)
    context = tuple(c.to(device) for c in _as_tuple(context))
    if validation is not None:
        check_points(validation, width, "validation data")
        validation = validation.to(device)
        validation_context = tuple(c.to(device) for c in _as_tuple(validation_context))
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise ValueError(
            f"need epochs >= 0, batch_size >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}"
        )
    if not 0.0 <= ema < 1.0:
        raise ValueError(f"ema is the weight average's decay, in [0, 1) (0: no average), got {ema}")
    if gradients not in GRADIENTS:
        raise ValueError(f"gradients must be one of {GRADIENTS}, got {gradients!r}")
    threads = training_threads(model, batch_size, threads)
    with _joined(world, device) as world, cpu_threads(threads):
        if world.distributed:
            check_distributed(model, device, data, validation, batch_size, world)
        handwritten = _handwritten(model, gradients, compile, world)
        return _fit(
            model,
            data,
            context,
            validation,
            validation_context,
            Recipe(epochs, batch_size, lr, schedule, weight_decay, warmup, ema),
            patience=patience,
            restore_best=restore_best,
            seed=seed,
            progress=progress,
            callbacks=callbacks,
            resume=resume,
            shuffle=shuffle,
            compile=compile,
            world=world,
            handwritten=handwritten,
        )


GRADIENTS = ("auto", "autograd", "handwritten")


@contextmanager
def _joined(world: World | None, device: torch.device) -> Iterator[World]:
    """The caller's ``world``; without one, the process group that exists or that
    ``torchrun`` describes (joined for the block), or a single process."""
    if world is not None:
        yield world
        return
    with distributed(device) as (joined, _):
        yield joined


def _handwritten(
    model: torch.nn.Module,
    gradients: str,
    compile: bool,
    world: World,
) -> HandwrittenNLL | None:
    """The hand-written gradients ``fit`` uses, or ``None`` for autograd (see ``fit``)."""
    if gradients == "autograd":
        return None
    nll = handwritten_nll(model)
    reason = unsupported_part(model) if nll is None else None
    if reason is None and compile:
        reason = "compile=True traces the model's autograd graph"
    if reason is None and world.distributed:
        reason = "DistributedDataParallel averages gradients through autograd hooks"
    if reason is not None:
        if gradients == "handwritten":
            raise ValueError(
                f"fit(gradients='handwritten') cannot train this model: {reason}; "
                "use gradients='auto' (autograd where needed)"
            )
        return None
    return nll


def check_distributed(
    model: torch.nn.Module,
    device: torch.device,
    data: Tensor,
    validation: Tensor | None,
    batch_size: int,
    world: World,
) -> None:
    """Raise ``LaunchError`` (on every process) for what data-parallel training cannot do."""
    from flowforge.layers.normalization import BatchNormFlow

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


def _unused_parameters(model: torch.nn.Module, data: Tensor, context: tuple[Tensor, ...]) -> bool:
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


def _data_parallel(
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


def _heldout_nll(
    model: torch.nn.Module, x: Tensor, context: tuple[Tensor, ...], world: World
) -> float:
    """The mean NLL of ``x`` (nats per point); each process scores its share of the rows."""
    if not world.distributed:
        return mean_nll(model, x, *context).mean
    start, stop = share(len(x), world)
    log_q = log_likelihood(model, x[start:stop], *(c[start:stop] for c in context))
    sums = torch.stack([-log_q.double().sum(), log_q.new_tensor(len(log_q), dtype=torch.float64)])
    total, count = all_sum(sums, world)
    return float(total) / float(count)


def _fit(
    model: torch.nn.Module,
    data: Tensor,
    context: tuple[Tensor, ...],
    validation: Tensor | None,
    validation_context: tuple[Tensor, ...],
    recipe: Recipe,
    *,
    patience: int | None,
    restore_best: bool,
    seed: int,
    progress: bool,
    callbacks: Sequence[Callable[[TrainState], None]],
    resume: TrainState | None,
    shuffle: bool,
    compile: bool,
    world: World,
    handwritten: HandwrittenNLL | None = None,
) -> History:
    """``fit`` after its arguments are checked and the data is on the model's device."""
    epochs, batch_size = recipe.epochs, recipe.batch_size
    model.train()
    find_unused = world.distributed and _unused_parameters(model, data, context)
    optimizer_scope = adam(model.parameters(), recipe.lr, recipe.weight_decay)
    optimizer = optimizer_scope.__enter__()
    history, step, start_epoch, best_state = History(), 0, 0, None
    if resume is not None:
        model.load_state_dict(resume.model_state)
        optimizer.load_state_dict(resume.optimizer_state)
        history = copy.deepcopy(resume.history)
        step, start_epoch, best_state = resume.step, resume.epoch, resume.best_model_state
        if history.stopped_early:
            start_epoch = epochs
    average = None
    if recipe.ema > 0:  # starts from the model as it is (resumed: the saved average)
        average = WeightAverage(_updated_tensors(optimizer), recipe.ema, step)
        if resume is not None and resume.training_state is not None:
            model.load_state_dict(resume.training_state)  # the iterate training goes on from

    total_steps = max(1, epochs * math.ceil(len(data) / batch_size))
    counter = {"step": step}

    def set_lr() -> None:
        rate = learning_rate(
            recipe.lr, recipe.schedule, counter["step"], total_steps, recipe.warmup
        )
        for group in optimizer.param_groups:
            group["lr"] = rate
        counter["step"] += 1

    step_model, epoch = model, start_epoch
    reporter = ProgressReporter(epochs, enabled=progress and world.is_main, initial=start_epoch)
    try:
        if compile and start_epoch < epochs:
            step_model, history.compile_seconds = _compile_for_training(
                model, data, batch_size, context, world
            )
        if world.distributed and start_epoch < epochs:
            step_model = _data_parallel(step_model, _model_device(model), find_unused)
        for epoch in range(start_epoch, epochs):
            started = time.perf_counter()
            if average is not None and average.swapped:
                average.swap()  # back to the iterates
            model.train()
            batches = tensor_batches(
                data,
                batch_size,
                context=context,
                shuffle=shuffle,
                generator=epoch_generator(seed, epoch),
            )
            train_nll = train_epoch(
                step_model, batches, optimizer, set_lr, epoch, world, handwritten, average
            )
            if average is not None:
                average.swap()  # evaluate, keep and return the average
            trained = time.perf_counter()
            heldout = math.nan
            if validation is not None:
                heldout = _heldout_nll(model, validation, validation_context, world)
            history.train_nll.append(train_nll)
            history.heldout_nll.append(heldout)
            history.seconds.append(time.perf_counter() - started)
            history.train_seconds.append(trained - started)
            if validation is not None and (
                history.best_epoch is None or heldout < history.best_heldout_nll
            ):
                history.best_epoch = epoch + 1
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            reporter.update(train_nll, heldout)
            stop = (
                patience is not None
                and history.best_epoch is not None
                and epoch + 1 - history.best_epoch >= patience
            )
            history.stopped_early = stop and epoch + 1 < epochs
            state = TrainState(
                epoch + 1,
                counter["step"],
                history,
                model.state_dict(),
                optimizer.state_dict(),
                best_state,
                None if average is None else _iterate_state(model, average),
            )
            for callback in callbacks if world.is_main else ():
                callback(state)
            if stop:
                break
        if average is not None and not average.swapped:
            average.swap()  # no epoch ran: the model returns with the average all the same
    except RuntimeError as error:
        if world.distributed and is_collective_failure(error):
            raise collective_failure(error, world, epoch) from error
        raise
    finally:
        del step_model  # DDP's gradient hooks go with it
        reporter.close()
        optimizer_scope.__exit__(None, None, None)
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
