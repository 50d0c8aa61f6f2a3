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


# Chosen by measurement (benchmarks/speed.py and README "Speed"): on the notebook's
# model and data, batches of 1,024 at a peak rate of 1e-2 (after 100 warm-up steps) with
# a cosine decay over 100 epochs ended at a held-out NLL of 1.858 (seed 0), in about
# 10,000 steps; batches of 2,048 at 2e-2 reach 1.9 sooner but became unstable later.
DEFAULT_RECIPE = Recipe(
    epochs=100, batch_size=1024, lr=1e-2, schedule="cosine", weight_decay=0.0, warmup=100
)
