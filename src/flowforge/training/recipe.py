"""``Recipe``: how to train, in one place. Its own defaults are the measured ones.

``fit(model, data, recipe, **options)`` reads it (each option overrides one field), and
the command line starts from ``DEFAULT_RECIPE``, which is ``Recipe()``.
"""

from __future__ import annotations

import dataclasses
import difflib
import numbers
from dataclasses import dataclass
from typing import Any

from flowforge.errors import InputError
from flowforge.training.schedule import check_schedule

GRADIENTS = ("auto", "autograd", "handwritten")

# The fields that set the course of the optimization: ``to_dict`` always writes them.
TRAJECTORY = ("epochs", "batch_size", "lr", "schedule", "weight_decay", "warmup", "ema", "shuffle")


@dataclass(frozen=True)
class Recipe:
    """How to train a flow by maximum likelihood; ``Recipe()`` is ``DEFAULT_RECIPE``.

    What changes the numbers:

    - ``epochs``: passes over the training data (``>= 0``).
    - ``batch_size``: rows per optimizer step (``>= 1``; under several processes the
      global batch, split between them).
    - ``lr``: Adam's peak learning rate (``> 0``).
    - ``schedule``: ``"cosine"`` (decay to zero at the last step) or ``"constant"``,
      applied per step (``flowforge.training.schedule``).
    - ``weight_decay``: decoupled weight decay (AdamW; 0: plain Adam).
    - ``warmup``: steps over which the rate rises linearly to its peak (0: none).
    - ``ema``: the decay of the weight average that is evaluated, kept and returned
      (``WeightAverage``; in ``[0, 1)``, 0: none, train and return the iterates).
    - ``shuffle``: visit the rows in a new order every epoch, a function of the seed and
      the epoch (``False``: in their stored order, as the notebook's loader).
    - ``patience``: stop after this many epochs without a better held-out NLL (needs
      validation data; ``None``: never stop early).
    - ``restore_best``: end with the weights of the best held-out epoch (when there is
      validation data) rather than those of the last.

    What only changes the speed (the same numbers, up to floating-point rounding):

    - ``threads``: CPU threads while training: a count, ``None`` (torch's setting) or
      ``"auto"`` (one for small models; ``flowforge.threads``).
    - ``compile``: train through ``torch.compile(model)``, compiled before the first
      epoch (its time is ``History.compile_seconds``).
    - ``gradients``: ``"auto"`` (hand-written gradients where every layer has them and
      training runs eagerly in one process, else autograd), ``"autograd"``, or
      ``"handwritten"`` (refused, with the reason, for a model that cannot use them).
    - ``flat``: flatten the parameters into one buffer for the optimizer (``FlatAdam``,
      one update per step) where they share a device and dtype; else torch's Adam.

    Values are checked when a recipe is made. ``replace(**changes)`` makes a changed
    copy; ``to_dict``/``from_dict`` write and read one as plain values.

    Args:
        epochs: Passes over the training data.
        batch_size: Rows per optimizer step.
        lr: Adam's peak learning rate.
        schedule: ``"cosine"`` or ``"constant"``.
        weight_decay: Decoupled weight decay (AdamW).
        warmup: Steps of linear rise to the peak rate.
        ema: The weight average's decay (0: none).
        shuffle: A new order of the rows every epoch.
        patience: Epochs without a better held-out NLL before stopping (``None``:
            never).
        restore_best: End with the best held-out epoch's weights.
        threads: CPU threads while training.
        compile: Train through ``torch.compile``.
        gradients: ``"auto"``, ``"autograd"`` or ``"handwritten"``.
        flat: Flatten the parameters into one buffer for the optimizer.

    Raises:
        InputError: For a value out of range or a choice not understood.

    Example:
        >>> from flowforge import Recipe
        >>> recipe = Recipe(epochs=20, lr=3e-3)
        >>> recipe.replace(batch_size=256).batch_size
        256
        >>> recipe.to_dict()["epochs"], Recipe.from_dict(recipe.to_dict()) == recipe
        (20, True)
        >>> Recipe(epochs=-1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        flowforge.errors.InputError: need epochs >= 0, batch_size >= 1 and lr > 0; got -1, ...
    """

    epochs: int = 200
    batch_size: int = 1024
    lr: float = 1e-2
    schedule: str = "cosine"
    weight_decay: float = 0.0
    warmup: int = 100
    ema: float = 0.98
    shuffle: bool = True
    patience: int | None = None
    restore_best: bool = True
    threads: int | str | None = "auto"
    compile: bool = False
    gradients: str = "auto"
    flat: bool = True

    def __post_init__(self) -> None:
        _check_numbers(self)
        _check_choices(self)

    def replace(self, **changes: Any) -> Recipe:
        """A copy with ``changes`` (field names); raises ``TypeError`` for unknown names."""
        unknown = [name for name in changes if name not in _FIELDS]
        if unknown:
            raise TypeError(_unknown_fields(unknown))
        return dataclasses.replace(self, **changes) if changes else self

    def to_dict(self) -> dict[str, Any]:
        """The recipe as plain values: the fields that set the optimization's course
        (``TRAJECTORY``) always, the others where they differ from their defaults."""
        values = dataclasses.asdict(self)
        return {
            name: value
            for name, value in values.items()
            if name in TRAJECTORY or value != _DEFAULTS[name]
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> Recipe:
        """The recipe ``to_dict`` wrote; missing fields (older records) take the defaults."""
        return cls().replace(**values)


_FIELDS = tuple(field.name for field in dataclasses.fields(Recipe))
_DEFAULTS = {field.name: field.default for field in dataclasses.fields(Recipe)}


def _unknown_fields(names: list[str]) -> str:
    """One line naming the unknown ``names`` (with a close field, if any) and the fields."""
    guesses = [difflib.get_close_matches(name, _FIELDS, n=1) for name in names]
    hints = "".join(f" (did you mean {g[0]!r}?)" for g in guesses if g)
    quoted = ", ".join(repr(name) for name in names)
    return f"unknown recipe field(s) {quoted}{hints}; a Recipe has: {', '.join(_FIELDS)}"


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_numbers(recipe: Recipe) -> None:
    """Raise ``InputError`` for counts and rates out of range (today's messages)."""
    epochs, batch_size, lr = recipe.epochs, recipe.batch_size, recipe.lr
    if not (_is_int(epochs) and _is_int(batch_size) and _is_real(lr)):
        raise InputError(
            f"epochs and batch_size must be ints and lr a number; got {epochs!r}, "
            f"{batch_size!r}, {lr!r}"
        )
    if epochs < 0 or batch_size < 1 or not lr > 0:
        raise InputError(
            f"need epochs >= 0, batch_size >= 1 and lr > 0; got {epochs}, {batch_size}, {lr}"
        )
    if not (_is_real(recipe.ema) and 0.0 <= recipe.ema < 1.0):
        raise InputError(
            f"ema is the weight average's decay, in [0, 1) (0: no average), got {recipe.ema}"
        )
    if not (_is_real(recipe.weight_decay) and recipe.weight_decay >= 0):
        raise InputError(f"weight_decay must be >= 0 (0: none), got {recipe.weight_decay!r}")
    if not (_is_int(recipe.warmup) and recipe.warmup >= 0):
        raise InputError(
            f"warmup is a number of steps, an int >= 0 (0: none), got {recipe.warmup!r}"
        )
    if recipe.patience is not None and not (_is_int(recipe.patience) and recipe.patience >= 1):
        raise InputError(
            "patience is a number of epochs without improvement, an int >= 1, or None "
            f"(no early stopping); got {recipe.patience!r}"
        )


def _check_choices(recipe: Recipe) -> None:
    """Raise ``InputError`` for a schedule, gradients, threads or switch not understood."""
    check_schedule(recipe.schedule)
    if recipe.gradients not in GRADIENTS:
        raise InputError(f"gradients must be one of {GRADIENTS}, got {recipe.gradients!r}")
    threads = recipe.threads
    if not (threads is None or threads == "auto" or (_is_int(threads) and threads >= 1)):
        raise InputError(f"threads must be 'auto', a positive int or None, got {threads!r}")
    for name in ("shuffle", "restore_best", "compile", "flat"):
        if not isinstance(getattr(recipe, name), bool):
            raise InputError(f"{name} must be True or False, got {getattr(recipe, name)!r}")


def as_recipe(recipe: Recipe | None, options: dict[str, Any]) -> Recipe:
    """``recipe`` (``None``: ``DEFAULT_RECIPE``) with the ``options`` that override fields."""
    if recipe is None:
        recipe = DEFAULT_RECIPE
    elif not isinstance(recipe, Recipe):
        raise TypeError(
            f"recipe must be a flowforge.Recipe or None, got {type(recipe).__name__}; pass "
            "single settings as keyword options instead (fit(model, data, epochs=10))"
        )
    return recipe.replace(**options)


# Chosen by measurement (benchmarks/speed.py; docs/guide/speed.md): on the notebook's
# model and data, batches of 1,024 at a peak rate of 1e-2 (after 100 warm-up steps) with
# a cosine decay over 200 epochs (19,600 steps, about 9 s with hand-written gradients)
# ended at held-out NLLs of 1.8586, 1.8577, 1.8581, 1.8623 and 1.8622 (model seeds 0-4;
# seeds 5-9: 1.8589, 1.8589, 1.8893, 1.868, 1.8653), and the default `flowforge train`
# at 1.8586. At that rate the held-out NLL of the iterates jitters by about 0.02 from
# epoch to epoch; the average of the weights (ema=0.98, about the last 50 steps)
# smooths that, and reaches 1.9 after a median of 10 epochs instead of 16 (seeds 0-9:
# 1,029 steps instead of 1,617). A peak of 1.5e-2 with the average reached 1.9 sooner
# (735 steps), but the default `flowforge train` then ended at 1.8671 (1.25e-2: 1.8649).
# Those are ``Recipe``'s own defaults.
DEFAULT_RECIPE = Recipe()
