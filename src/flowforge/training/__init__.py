"""Training: the notebook's ``train``, the resumable ``fit``, and ``fit`` under ``torchrun``."""

from flowforge.training.averaging import WeightAverage
from flowforge.training.distributed import (
    DistributedError,
    LaunchError,
    World,
    distributed,
    local_device,
)
from flowforge.training.fit import History, TrainState, fit
from flowforge.training.handwritten import HandwrittenNLL, handwritten_nll
from flowforge.training.optim import FlatAdam, FlatParameters, adam
from flowforge.training.recipe import DEFAULT_RECIPE, Recipe
from flowforge.training.train import train

__all__ = [
    "DEFAULT_RECIPE",
    "DistributedError",
    "FlatAdam",
    "FlatParameters",
    "HandwrittenNLL",
    "History",
    "LaunchError",
    "Recipe",
    "TrainState",
    "WeightAverage",
    "World",
    "distributed",
    "fit",
    "handwritten_nll",
    "local_device",
    "adam",
    "train",
]
