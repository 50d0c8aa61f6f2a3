"""What training has done: ``History`` (per-epoch numbers), ``EpochLosses`` (the notebook's
``train``'s), and ``TrainState`` (a checkpoint).

``fit`` returns a ``History``, hands a ``TrainState`` to its callbacks after every epoch,
and continues from one with ``fit(resume=...)``; the workbench writes both into its
checkpoints (``flowforge.workbench.runs.checkpoint``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from torch import Tensor


def _trend(values: Sequence[float]) -> str:
    """``first → last`` of a sequence of NLLs, or its one value, as a short text."""
    if not values:
        return "none"
    if len(values) == 1:
        return f"{values[0]:.4f}"
    return f"{values[0]:.4f} → {values[-1]:.4f}"


class EpochLosses(list):
    """The mean training NLL of every epoch (nats per point): a ``list`` of floats whose
    ``repr`` is one line, so that ``train(...)`` as a notebook cell's last line shows a
    summary instead of a hundred numbers. Index it, iterate it or ``list(losses)`` it for
    the numbers.

    Example:
        >>> EpochLosses([2.5, 2.0, 1.87])
        EpochLosses(3 epochs, training NLL 2.5000 → 1.8700 nats per point)
        >>> EpochLosses([2.5, 2.0])[-1]
        2.0
    """

    def __repr__(self) -> str:
        epochs = f"{len(self)} epoch{'' if len(self) == 1 else 's'}"
        return f"EpochLosses({epochs}, training NLL {_trend(self)} nats per point)"


@dataclass(repr=False)
class History:
    """What happened in training, one entry per completed epoch.

    ``train_nll`` is the mean NLL over the epoch's batches (nats per point, measured
    while the weights changed); ``heldout_nll`` the NLL on the validation data after
    the epoch (``nan`` when there is none); ``seconds`` the wall time of each epoch,
    ``train_seconds`` the part of it spent on training steps (without validation).
    ``compile_seconds`` is the time ``torch.compile`` took before the first epoch
    (``fit(compile=True)``; 0 otherwise). ``start_heldout_nll`` is the held-out NLL
    before the first epoch (``nan`` without validation data): the reference of the
    divergence check (``flowforge.training.divergence``), kept so that a resumed run
    checks against the same bound.
    """

    train_nll: list[float] = field(default_factory=list)
    heldout_nll: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None
    stopped_early: bool = False
    train_seconds: list[float] = field(default_factory=list)
    compile_seconds: float = 0.0
    start_heldout_nll: float = math.nan

    @property
    def epochs(self) -> int:
        return len(self.train_nll)

    @property
    def best_heldout_nll(self) -> float:
        return math.nan if self.best_epoch is None else self.heldout_nll[self.best_epoch - 1]

    def record(
        self, train_nll: float, heldout_nll: float, seconds: float, train_seconds: float
    ) -> None:
        """Add one completed epoch's numbers."""
        self.train_nll.append(train_nll)
        self.heldout_nll.append(heldout_nll)
        self.seconds.append(seconds)
        self.train_seconds.append(train_seconds)

    def to_dict(self) -> dict:
        return {
            "train_nll": self.train_nll,
            "heldout_nll": self.heldout_nll,
            "seconds": self.seconds,
            "best_epoch": self.best_epoch,
            "stopped_early": self.stopped_early,
            "train_seconds": self.train_seconds,
            "compile_seconds": self.compile_seconds,
            "start_heldout_nll": self.start_heldout_nll,
        }

    def __repr__(self) -> str:
        """One line: the epochs, the training NLL's trend, the best held-out NLL."""
        text = f"History({self.epochs} epochs, training NLL {_trend(self.train_nll)}"
        if self.best_epoch is not None:
            text += f", best held-out NLL {self.best_heldout_nll:.4f} at epoch {self.best_epoch}"
        if self.stopped_early:
            text += ", stopped early"
        return text + ")"

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
            _number(d.get("start_heldout_nll")),
        )


def _number(value: object) -> float:
    """A float from a record (``None``, as strict JSON writes NaN, or missing: ``nan``)."""
    return math.nan if value is None else float(value)


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
