"""The time rule: the notebook's flow trains at least as long as the slowest other model.

The other models train first, for their planned lengths. The flow then gets enough
epochs that its measured training time is at least the slowest of theirs: a short probe
(``PROBE_EPOCHS``) measures its seconds per epoch, the epochs follow from that with a
margin (never fewer than the plan's ``epochs("flow")``), and should the fit still come
out shorter than the target it is redone with proportionally more epochs and a margin
that grows with each refit (an epoch's time varies by a quarter on a busy machine), at
most ``ATTEMPTS`` fits in all. The fit that is kept is the one whose time the table shows;
``TimeRule.to_dict()`` records how its epochs were chosen. A plan with fixed
``flow_epochs`` trains once for those, and the record says whether the rule was met.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from flowforge.workbench.baselines import Baseline

MARGIN = 1.15  # epochs for 15 % more than the target, so noise rarely forces a refit
PROBE_EPOCHS = 3
ATTEMPTS = 4


@dataclass
class TimeRule:
    """The target (the slowest other model and its training seconds) and what was done."""

    slowest: str | None
    target_seconds: float
    fixed_epochs: bool = False
    probe_epoch_seconds: float | None = None
    attempts: list[dict] = field(default_factory=list)

    @property
    def met(self) -> bool:
        """Whether the kept fit trained at least ``target_seconds``."""
        return bool(self.attempts) and self.attempts[-1]["seconds"] >= self.target_seconds

    def to_dict(self) -> dict:
        return {
            "rule": "the flow trains at least as long as the slowest other model",
            "slowest_other_model": self.slowest,
            "target_seconds": self.target_seconds,
            "fixed_epochs": self.fixed_epochs,
            "probe_epoch_seconds": self.probe_epoch_seconds,
            "fits": self.attempts,
            "met": self.met,
        }


def slowest(times: Sequence[tuple[str, float]]) -> tuple[str | None, float]:
    """The name and seconds of the longest of ``(name, train_seconds)``; ``(None, 0)``."""
    return max(times, key=lambda item: item[1], default=(None, 0.0))


def epochs_for(target_seconds: float, epoch_seconds: float, floor: int, refit: int = 0) -> int:
    """Epochs of ``epoch_seconds`` each that last ``MARGIN ** (refit + 1)`` times
    ``target_seconds`` (``refit`` counts the fits that already came out short), and at
    least ``floor``."""
    if target_seconds <= 0 or epoch_seconds <= 0:
        return floor
    return max(floor, math.ceil(MARGIN ** (refit + 1) * target_seconds / epoch_seconds))


def fit_at_least(
    build: Callable[[int], Baseline],
    fit_timed: Callable[[Baseline], float],
    floor: int,
    rule: TimeRule,
) -> tuple[Baseline, float]:
    """Fit ``build(epochs)`` (``fit_timed`` fits and returns seconds) for at least ``floor``
    epochs and at least ``rule.target_seconds``; returns the kept model and its seconds.

    With ``rule.fixed_epochs`` it fits ``build(floor)`` once.
    """
    epochs = floor
    if not rule.fixed_epochs and rule.target_seconds > 0:
        probe = fit_timed(build(PROBE_EPOCHS)) / PROBE_EPOCHS
        rule.probe_epoch_seconds = probe
        epochs = epochs_for(rule.target_seconds, probe, floor)
    fits = 1 if rule.fixed_epochs else ATTEMPTS
    for refit in range(1, fits + 1):  # refit: the fits made so far, this one included
        model = build(epochs)
        seconds = fit_timed(model)
        rule.attempts.append({"epochs": epochs, "seconds": seconds})
        if seconds >= rule.target_seconds:
            break
        epochs = epochs_for(rule.target_seconds, seconds / epochs, epochs + 1, refit)
    return model, seconds
