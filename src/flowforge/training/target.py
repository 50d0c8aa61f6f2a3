"""``fit_target``: train a flow as a sampler of a density known up to a constant.

Where ``fit`` has samples and maximizes their likelihood, ``fit_target`` has only
``log_p(x) = log p(x) + const`` and minimizes the reverse KL divergence

    KL(q || p) = E_q[log q(x) - log p(x)] + log Z

with reparameterized samples ``x = f(z)``, ``z`` from the base (Rezende & Mohamed,
"Variational inference with normalizing flows", ICML 2015). Reverse KL is mode-seeking:
started from one Gaussian it keeps the modes it finds first and drops the others, and
its own samples cannot tell (the flow never visits what it dropped). The methods:

- ``"modes"`` (the default, chosen by measurement: docs/tutorials/sampling.md): find the
  modes first by multi-start gradient ascent over the target's box, start a mixture
  base on them (``flowforge.training.modes.find_modes``), then train the flow by reverse
  KL while the mixture's weights follow the masses the target gives its components
  (importance-weighted EM updates every round, not gradients: sampling a component is
  not differentiable in its weight);
- ``"reverse-kl"``: reverse KL alone, from whatever base the flow has;
- ``"annealed"``: reverse KL to the tempered target ``p^beta``, ``beta`` rising
  geometrically from ``beta0`` to 1 over the first half of the steps;
- ``"forward-kl"``: importance-weighted forward KL ``-sum_i w_i log q(x_i)`` (as FAB's
  bootstrap, without AIS), the points drawn half from the flow and half uniformly over the
  target's box (a defensive mixture), weights self-normalized.

Training runs in rounds of ``round_steps`` steps (the ``History``'s "epochs": the mean
loss per round is ``train_nll``); callbacks get a ``TrainState`` after every round and
``resume`` continues from one exactly: every step draws its samples from a generator
seeded by ``(seed, step)``. The optimizer, schedule, weight average and progress display
are the sample-based trainer's (``flowforge.training``).
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from flowforge.distributions.mixture import GaussianMixture
from flowforge.errors import DivergedError, InputError
from flowforge.threads import cpu_threads
from flowforge.training.averaging import WeightAverage
from flowforge.training.divergence import FIX, DivergenceGuard, copy_state
from flowforge.training.modes import reweight, start_on_modes
from flowforge.training.optim import adam
from flowforge.training.progress import ProgressReporter
from flowforge.training.schedule import make_schedule
from flowforge.training.state import History, TrainState

__all__ = ["METHODS", "fit_target", "target_box"]

METHODS = ("modes", "reverse-kl", "annealed", "forward-kl")
Callback = Callable[[TrainState], None]
LogDensity = Callable[[Tensor], Tensor]


def target_box(target: Any, flow: torch.nn.Module | None = None) -> tuple[Tensor, Tensor] | None:
    """The target's ``bounds`` as float64 ``(low, high)``, or ``None`` when it has none."""
    bounds = getattr(target, "bounds", None)
    if bounds is None:
        return None
    low, high = (torch.as_tensor(b, dtype=torch.float64) for b in bounds)
    return low, high


def _log_density(target: Any) -> LogDensity:
    """``target.log_prob`` for a target object, the callable itself otherwise."""
    log_prob = getattr(target, "log_prob", None)
    if callable(log_prob):
        return log_prob
    if callable(target):
        return target
    raise InputError(
        f"fit_target needs a target with log_prob(x) or a callable log_p(x), got "
        f"{type(target).__name__}; pass flowforge.targets.get(name) or a function"
    )


class _Objective:
    """The loss of one step, given the flow, the log-density and the step's generator."""

    def __init__(
        self, method: str, log_p: LogDensity, box: tuple[Tensor, Tensor] | None, steps: int
    ) -> None:
        self.method, self.log_p, self.box, self.steps = method, log_p, box, steps
        self.beta0 = 0.05

    def beta(self, step: int) -> float:
        """The inverse temperature of step ``step`` (1 except for ``"annealed"``)."""
        if self.method != "annealed":
            return 1.0
        half = max(1, self.steps // 2)
        return min(1.0, self.beta0 ** (1.0 - step / half))

    def __call__(self, flow: torch.nn.Module, n: int, step: int) -> Tensor:
        if self.method == "forward-kl":
            return self._forward_kl(flow, n)
        x, log_q = flow.sample_and_log_prob(n)
        log_p = self.log_p(x).to(log_q.dtype)
        return (log_q - self.beta(step) * log_p).mean()

    def _forward_kl(self, flow: torch.nn.Module, n: int) -> Tensor:
        with torch.no_grad():
            own = flow.sample(n - n // 2)
            low, high = (b.to(own.dtype) for b in self.box)
            broad = low + (high - low) * torch.rand(n // 2, len(low), dtype=own.dtype)
            x = torch.cat([own, broad])
        log_q = flow.log_prob(x)
        with torch.no_grad():
            log_uniform = -torch.log(high - low).sum()
            log_mix = torch.logaddexp(log_q + math.log(0.5), log_uniform + math.log(0.5))
            log_w = self.log_p(x).to(log_q.dtype) - log_mix
            w = torch.softmax(torch.where(torch.isfinite(log_w), log_w, -math.inf), dim=0)
        return -(w * log_q).sum()


def fit_target(
    flow: torch.nn.Module,
    target: Any,
    *,
    method: str = "modes",
    steps: int = 2000,
    time_budget: float | None = None,
    batch_size: int = 512,
    lr: float = 1e-3,
    schedule: str = "cosine",
    warmup: int = 100,
    ema: float = 0.98,
    round_steps: int = 100,
    seed: int = 0,
    callbacks: Sequence[Callback] = (),
    resume: TrainState | None = None,
    progress: bool = True,
    threads: int | None = 1,
) -> History:
    """Train ``flow`` to sample ``target``, a density known up to its normalizer.

    Args:
        flow: A ``NormalizingFlow`` (``sampler(target)`` builds the one the defaults were
            measured with), trained in place; ``method="modes"`` needs a
            ``GaussianMixture`` base.
        target: A target (``flowforge.targets.get(name)``: ``log_prob``, ``bounds``) or a
            callable ``log_p(x)`` of ``(n, d)`` points giving ``(n,)`` log-densities.
        method: ``"modes"``, ``"reverse-kl"``, ``"annealed"`` or ``"forward-kl"`` (see
            the module's docstring).
        steps: Optimizer steps (with ``time_budget``: at most this many).
        time_budget: CPU seconds of this process to train for (``time.process_time``);
            the cosine schedule is stretched over the steps that fit, estimated after the
            first round (``None``: exactly ``steps`` steps, resumable step for step).
        batch_size: Samples per step.
        lr: Adam's peak learning rate.
        schedule: ``"cosine"`` or ``"constant"``.
        warmup: Steps of linear rise of the rate.
        ema: The weight average's decay (0: none); the average is what rounds report,
            checkpoints keep and ``fit_target`` returns.
        round_steps: Steps per round (a ``History`` entry, a callback, a checkpoint).
        seed: Seeds every step's samples and the mode search.
        callbacks: Called with a ``TrainState`` after every round.
        resume: A ``TrainState`` to continue from.
        progress: Show a bar (or a line per round).
        threads: CPU threads while training (``None``: torch's setting).

    Returns:
        The ``History``: ``train_nll`` holds each round's mean loss (for reverse KL,
        ``E_q[log q - log p]``, which is ``KL(q || p) - log Z`` in nats).

    Raises:
        InputError: For an unknown method, or a method the flow or target cannot serve.
        DivergedError: When a round's loss or the weights stop being finite.

    Example:
        >>> import torch
        >>> from flowforge.training.target import fit_target
        >>> from flowforge.training.sampler import sampler
        >>> def log_p(x):  # N((1, -1), 0.5^2 I), unnormalized
        ...     return -2.0 * ((x - torch.tensor([1.0, -1.0])) ** 2).sum(1)
        >>> box = (torch.full((2,), -4.0), torch.full((2,), 4.0))
        >>> flow = sampler(2, box, layers=2, hidden=16)
        >>> history = fit_target(flow, log_p, method="reverse-kl", steps=300, progress=False)
        >>> history.epochs
        3
        >>> x = flow.sample(4000)
        >>> x.mean(0).round().tolist(), x.std(0).round(decimals=1).tolist()
        ([1.0, -1.0], [0.5, 0.5])
    """
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")
    started = time.process_time()  # the mode search counts against the time budget
    log_p, box = _log_density(target), target_box(target)
    _check_method(flow, method, box)
    with cpu_threads(threads):
        if method == "modes" and resume is None and not bool(flow.base_distribution.initialized):
            start_on_modes(flow, log_p, box, seed)
        if method == "modes":
            flow.base_distribution.logits.requires_grad_(False)
        run = _TargetRun(flow, _Objective(method, log_p, box, steps), resume, seed, time_budget)
        run.started = started
        flow.train()
        params = [p for p in flow.parameters() if p.requires_grad]
        with adam(params, lr) as optimizer:
            loop = _Loop(steps, batch_size, lr, schedule, warmup, ema, round_steps)
            run.train(optimizer, loop, callbacks, progress)
    flow.eval()
    return run.history


def _check_method(flow: torch.nn.Module, method: str, box: tuple[Tensor, Tensor] | None) -> None:
    """``InputError`` when ``method`` needs what the flow or the target lacks."""
    if method == "modes" and not isinstance(
        getattr(flow, "base_distribution", None), GaussianMixture
    ):
        raise InputError(
            "method='modes' starts a GaussianMixture base on the target's modes, but the flow "
            "has none; build it with sampler(target) or use method='reverse-kl'"
        )
    if method == "forward-kl" and box is None:
        raise InputError(
            "method='forward-kl' draws half its points uniformly over the target's box, but "
            "it has no bounds; give the target bounds=(low, high) or use method='modes'"
        )


@dataclass(frozen=True)
class _Loop:
    """``fit_target``'s settings of the optimizer loop."""

    steps: int
    batch_size: int
    lr: float
    schedule: str
    warmup: int
    ema: float
    round_steps: int


class _TargetRun:
    """One call of ``fit_target``: the state restored from ``resume``, and the rounds."""

    def __init__(
        self,
        flow,
        objective: _Objective,
        resume: TrainState | None,
        seed: int,
        budget: float | None,
    ) -> None:
        self.flow, self.objective, self.resume, self.seed, self.budget = (
            flow,
            objective,
            resume,
            seed,
            budget,
        )
        self.history, self.step = History(), 0
        if resume is not None:
            flow.load_state_dict(resume.model_state)
            self.history, self.step = copy.deepcopy(resume.history), resume.step

    def train(self, optimizer, loop: _Loop, callbacks, progress: bool) -> None:
        flow, resume = self.flow, self.resume
        steps, batch_size, ema = loop.steps, loop.batch_size, loop.ema
        round_steps = loop.round_steps
        if resume is not None:
            optimizer.load_state_dict(resume.optimizer_state)
        average = None
        if ema > 0:
            average = WeightAverage(
                [p for g in optimizer.param_groups for p in g["params"]], ema, self.step
            )
            if resume is not None and resume.training_state is not None:
                flow.load_state_dict(resume.training_state)
        rate = make_schedule(loop.schedule, loop.lr, steps, loop.warmup, self.step)
        rounds = math.ceil(steps / round_steps)
        reporter = ProgressReporter(rounds, enabled=progress, initial=self.history.epochs)
        guard, started = DivergenceGuard(math.nan), self.started
        try:
            while self.step < steps:
                if self.budget is not None and time.process_time() - started >= self.budget:
                    break
                first = time.process_time()
                todo = min(round_steps, steps - self.step)
                loss = self._round(optimizer, rate, average, todo, batch_size)
                if self.budget is not None and self.history.epochs == 0 and resume is None:
                    spent = time.process_time() - first
                    fit = int(todo * (self.budget - (first - started)) / max(spent, 1e-9))
                    rate.total_steps = max(1, min(steps, fit))
                    steps = rate.total_steps
                    reporter.epochs = math.ceil(steps / round_steps)
                guard.weights(flow, self.history.epochs)
                self._record(loss, time.process_time() - first, average, optimizer, callbacks)
                reporter.update(loss)
        finally:
            reporter.close()
        if average is not None:
            average.copy_to_tensors()

    def _spent(self) -> bool:
        """Whether the CPU-time budget (if any) is used up."""
        return self.budget is not None and time.process_time() - self.started >= self.budget

    def _round(self, optimizer, rate, average, todo: int, batch_size: int) -> float:
        losses = []
        for _ in range(todo):
            if losses and self._spent():  # the budget ends mid-round: a shorter round
                break
            rate.apply(optimizer)
            optimizer.zero_grad(set_to_none=True)
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed * 1_000_003 + self.step)
                loss = self.objective(self.flow, batch_size, self.step)
                if not bool(torch.isfinite(loss.detach())):
                    raise DivergedError(
                        f"training diverged at step {self.step + 1} (loss {float(loss)}); {FIX}"
                    )
                loss.backward()
            optimizer.step()
            if average is not None:
                average.update()
            self.step += 1
            losses.append(float(loss.detach()))
        if self.objective.method == "modes":
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed * 1_000_003 + self.step + 7)
                # the logits are not trained by the optimizer: the iterates and the
                # average share them, re-estimated here at the averaged weights
                with nullcontext() if average is None else average.applied():
                    reweight(self.flow, self.objective.log_p, 4096)
        return sum(losses) / len(losses)

    def _record(self, loss, seconds, average, optimizer, callbacks) -> None:
        iterates = None if average is None else copy_state(self.flow.state_dict())
        with nullcontext() if average is None else average.applied():
            self.history.record(loss, math.nan, seconds, seconds)
            state = TrainState(
                self.history.epochs,
                self.step,
                self.history,
                copy_state(self.flow.state_dict()),
                optimizer.state_dict(),
                None,
                iterates,
            )
            for callback in callbacks:
                callback(state)
