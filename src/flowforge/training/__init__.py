"""Training: the notebook's ``train`` and the resumable ``fit``."""

from flowforge.training.fit import History, TrainState, fit, make_optimizer
from flowforge.training.train import train

__all__ = ["History", "TrainState", "fit", "make_optimizer", "train"]
