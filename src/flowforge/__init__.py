"""flowforge: normalizing flows for PyTorch, from the course notebook's RealNVP onwards.

The public names are the notebook's: build a flow from layers, wrap a base
distribution, train it, and check any layer against autograd::

    from flowforge import *
    model = NormalizingFlow(
        Multivariate(2),
        Split(), AffineCoupling(block(1, 1, 16)), Swap(), AffineCoupling(block(1, 1, 16)), Merge(),
    )
"""

from flowforge.builders import BUILDERS, realnvp
from flowforge.check import FlowCheckError, check_flow, isclose, log_det_jacobian, test_flow_layer
from flowforge.data import PointData, Standardization, two_moons, two_moons_splits
from flowforge.device import detect_device
from flowforge.distributions import Multivariate
from flowforge.evaluate import NLLEstimate, log_likelihood, mean_nll
from flowforge.flow import NormalizingFlow
from flowforge.layers import (
    AffineCoupling,
    FlowLayer,
    Merge,
    Scale,
    SequentialFlow,
    Split,
    Swap,
    Translate,
)
from flowforge.nets import MLP, block
from flowforge.training import DEFAULT_RECIPE, History, Recipe, TrainState, fit, train
from flowforge.values import num_samples

__version__ = "0.1.0"

__all__ = [
    "BUILDERS",
    "DEFAULT_RECIPE",
    "MLP",
    "Recipe",
    "realnvp",
    "AffineCoupling",
    "FlowCheckError",
    "FlowLayer",
    "History",
    "Merge",
    "Multivariate",
    "NLLEstimate",
    "NormalizingFlow",
    "PointData",
    "Scale",
    "SequentialFlow",
    "Split",
    "Standardization",
    "Swap",
    "TrainState",
    "Translate",
    "block",
    "check_flow",
    "detect_device",
    "fit",
    "isclose",
    "log_det_jacobian",
    "log_likelihood",
    "mean_nll",
    "num_samples",
    "test_flow_layer",
    "train",
    "two_moons",
    "two_moons_splits",
]
