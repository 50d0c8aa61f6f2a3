"""The default training recipe, in one place: ``fit`` and the command line both read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Recipe:
    """How to train: epochs, batch size, peak learning rate, schedule, weight decay, and
    the number of warm-up steps over which the learning rate rises linearly to its peak."""

    epochs: int = 10
    batch_size: int = 256
    lr: float = 5e-3
    schedule: str = "cosine"
    weight_decay: float = 0.0
    warmup: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_RECIPE = Recipe()
