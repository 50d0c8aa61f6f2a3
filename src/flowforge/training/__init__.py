"""Training: the notebook's ``train``, the resumable ``fit``, and ``fit`` under ``torchrun``.

``fit(model, data, recipe, **options)`` is a short function over small parts, one per
module: ``recipe`` (``Recipe``, how to train), ``schedule`` (the learning rate per
step), ``averaging`` (``WeightAverage``), ``stopping`` (``EarlyStopping``), ``steps``
(how a batch's loss and gradient are computed: autograd, compiled, hand-written, under
DDP), ``epoch`` (the loop over batches), ``validation`` (the held-out NLL), ``state``
(``History``, ``TrainState``), ``optim`` (Adam over flat parameters), ``data`` (the
batches), ``parallel`` and ``distributed`` (several processes).
"""

from flowforge.training.averaging import WeightAverage
from flowforge.training.distributed import (
    DistributedError,
    LaunchError,
    World,
    distributed,
    local_device,
)
from flowforge.training.fit import fit
from flowforge.training.handwritten import HandwrittenNLL, handwritten_nll
from flowforge.training.optim import FlatAdam, FlatParameters, adam
from flowforge.training.recipe import DEFAULT_RECIPE, Recipe
from flowforge.training.schedule import Constant, Cosine, Schedule
from flowforge.training.state import EpochLosses, History, TrainState
from flowforge.training.steps import AutogradStep, CompiledStep, HandwrittenStep, Step
from flowforge.training.stopping import EarlyStopping
from flowforge.training.train import train

__all__ = [
    "AutogradStep",
    "CompiledStep",
    "Constant",
    "Cosine",
    "DEFAULT_RECIPE",
    "DistributedError",
    "EarlyStopping",
    "EpochLosses",
    "FlatAdam",
    "FlatParameters",
    "HandwrittenNLL",
    "HandwrittenStep",
    "History",
    "LaunchError",
    "Recipe",
    "Schedule",
    "Step",
    "TrainState",
    "WeightAverage",
    "World",
    "adam",
    "distributed",
    "fit",
    "handwritten_nll",
    "local_device",
    "train",
]
