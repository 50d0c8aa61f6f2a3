"""The learning-rate schedule: a small object that sets the rate before every step.

A schedule knows its peak rate, the run's total number of steps and its warm-up, and
counts the steps it has set (``step``, restored on resume). ``apply(optimizer)`` sets
the rate of step ``step`` in every parameter group and moves on. During the first
``warmup`` steps the rate rises linearly, ``(t + 1) / warmup`` of the schedule's own
value at step ``t``; after them it follows the schedule::

    constant:  lr(t) = peak
    cosine:    lr(t) = peak / 2 * (1 + cos(pi * min(t, total) / total))

(the cosine decays to zero at ``total``; Loshchilov & Hutter, "SGDR", ICLR 2017).
"""

from __future__ import annotations

import abc
import math

import torch

from flowforge.errors import InputError


class Schedule(abc.ABC):
    """A learning-rate schedule over ``total_steps`` steps, with ``warmup`` steps of linear rise.

    Subclasses give ``shape(t)``, the rate at step ``t`` (from 0) before the warm-up's
    factor. ``step`` is the number of steps already taken (for a resumed run).
    """

    name = ""

    def __init__(self, peak: float, total_steps: int, warmup: int = 0, step: int = 0) -> None:
        self.peak = float(peak)
        self.total_steps = max(1, int(total_steps))
        self.warmup = int(warmup)
        self.step = int(step)

    @abc.abstractmethod
    def shape(self, step: int) -> float:
        """The rate at ``step`` without the warm-up."""

    def rate(self, step: int) -> float:
        """The learning rate at ``step`` (from 0), the warm-up included."""
        rate = self.shape(step)
        return rate * min(1.0, (step + 1) / self.warmup) if self.warmup > 0 else rate

    def apply(self, optimizer: torch.optim.Optimizer) -> float:
        """Set the rate of the next step in every group of ``optimizer``; return it."""
        rate = self.rate(self.step)
        for group in optimizer.param_groups:
            group["lr"] = rate
        self.step += 1
        return rate

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(peak={self.peak:g}, total_steps={self.total_steps}, "
            f"warmup={self.warmup}, step={self.step})"
        )


class Constant(Schedule):
    """The peak rate at every step (after the warm-up)."""

    name = "constant"

    def shape(self, step: int) -> float:
        return self.peak


class Cosine(Schedule):
    """Half a cosine from the peak down to zero at ``total_steps`` (and zero after)."""

    name = "cosine"

    def shape(self, step: int) -> float:
        # written as before the redesign, operation for operation: the same rounding
        angle = math.pi * min(step, self.total_steps) / self.total_steps
        return 0.5 * self.peak * (1 + math.cos(angle))


SCHEDULES: dict[str, type[Schedule]] = {"constant": Constant, "cosine": Cosine}


def check_schedule(name: str) -> None:
    """Raise ``InputError`` (a ``ValueError``) unless ``name`` is a schedule in ``SCHEDULES``."""
    if name not in SCHEDULES:
        raise InputError(f"unknown schedule {name!r}; use 'cosine' or 'constant'")


def make_schedule(
    name: str, peak: float, total_steps: int, warmup: int = 0, step: int = 0
) -> Schedule:
    """The schedule called ``name`` (``"constant"`` or ``"cosine"``) from ``step`` on."""
    check_schedule(name)
    return SCHEDULES[name](peak, total_steps, warmup, step)
