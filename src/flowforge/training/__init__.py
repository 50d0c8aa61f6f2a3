"""Training: the notebook's ``train`` and the resumable ``fit``."""

from flowforge.training.fit import History, TrainState, fit, make_optimizer
from flowforge.training.optim import FlatAdam
from flowforge.training.recipe import DEFAULT_RECIPE, Recipe
from flowforge.training.train import train

__all__ = [
    "DEFAULT_RECIPE",
    "FlatAdam",
    "History",
    "Recipe",
    "TrainState",
    "fit",
    "make_optimizer",
    "train",
]
