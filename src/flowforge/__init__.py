"""flowforge: normalizing flows for PyTorch, from the course notebook's RealNVP onwards.

The public names are the notebook's: build a flow from layers, wrap a base
distribution, train it, and check any layer against autograd::

    from flowforge import *
    model = NormalizingFlow(
        Multivariate(2),
        Split(), AffineCoupling(block(1, 1, 16)), Swap(), AffineCoupling(block(1, 1, 16)), Merge(),
    )
"""

from flowforge.families.builders import BUILDERS, iaf, maf, multiscale, nice, nsf, realnvp
from flowforge.check import FlowCheckError, check_flow, isclose, log_det_jacobian, test_flow_layer
from flowforge.conditional import Conditioned, label_context
from flowforge.workbench.data import (
    DATASETS,
    MoonsDensity,
    PointData,
    Standardization,
    ToyDistribution,
    toy_data,
    toy_splits,
    two_moons,
    two_moons_splits,
)
from flowforge.dequantization import DequantizedFlow, bits_per_dim, dequantize
from flowforge.device import detect_device
from flowforge.distributions import Multivariate
from flowforge.evaluate import NLLEstimate, log_likelihood, mean_nll, sample_points
from flowforge.flow import NormalizingFlow
from flowforge.layers import (
    ActNorm,
    AdditiveCoupling,
    AffineCoupling,
    BatchNormFlow,
    FactorOut,
    Flatten,
    FlowLayer,
    ImageActNorm,
    Inverse,
    InvertibleConv1x1,
    Logit,
    LULinear,
    MaskedAffineCoupling,
    MaskedAutoregressive,
    MaskedSplineCoupling,
    Merge,
    OnLast,
    Permute,
    Reverse,
    Scale,
    SequentialFlow,
    SplineCoupling,
    Split,
    Squeeze,
    Swap,
    Translate,
    Unflatten,
    initialize_actnorm,
)
from flowforge.nets.made import MADE
from flowforge.distributions.mixture import GaussianMixture, fit_gaussian_mixture, initialize_mixture
from flowforge.transformers.base import AffineTransformer, SplineTransformer
from flowforge.nets import MLP, ConvNet, block, conv_block
from flowforge.threads import cpu_threads
from flowforge.training import (
    DEFAULT_RECIPE,
    DistributedError,
    FlatAdam,
    HandwrittenNLL,
    History,
    LaunchError,
    Recipe,
    TrainState,
    WeightAverage,
    World,
    distributed,
    fit,
    handwritten_nll,
    local_device,
    train,
)
from flowforge.values import num_samples

__version__ = "0.1.0"

# The workbench's names, imported on first use so that ``import flowforge`` needs
# neither matplotlib nor safetensors: name -> module that defines it.
_LAZY = {
    "load": "flowforge.workbench.runs.config",
    "Trained": "flowforge.workbench.runs.config",
    "plot_log_prob": "flowforge.workbench.figures.plots",
    "plot_samples": "flowforge.workbench.figures.plots",
    "plot_log_prob_and_samples": "flowforge.workbench.figures.plots",
    "plot_samples_on_data": "flowforge.workbench.figures.plots",
    "plot_inverse_samples": "flowforge.workbench.figures.plots",
    "part_model": "flowforge.workbench.figures.plots",
    "plot_model_steps": "flowforge.workbench.figures.plots",
    "plot_compare_model_steps": "flowforge.workbench.figures.plots",
    "plot_learning_curves": "flowforge.workbench.figures.plots",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'flowforge' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BUILDERS",
    "DATASETS",
    "DEFAULT_RECIPE",
    "MLP",
    "Recipe",
    "DequantizedFlow",
    "bits_per_dim",
    "dequantize",
    "multiscale",
    "iaf",
    "maf",
    "nice",
    "nsf",
    "realnvp",
    "ActNorm",
    "AdditiveCoupling",
    "AffineCoupling",
    "FlatAdam",
    "HandwrittenNLL",
    "AffineTransformer",
    "BatchNormFlow",
    "Conditioned",
    "FlowCheckError",
    "FlowLayer",
    "GaussianMixture",
    "History",
    "LaunchError",
    "Inverse",
    "LULinear",
    "MADE",
    "MaskedAutoregressive",
    "Merge",
    "MoonsDensity",
    "Multivariate",
    "NLLEstimate",
    "NormalizingFlow",
    "Permute",
    "Reverse",
    "PointData",
    "Scale",
    "SequentialFlow",
    "SplineCoupling",
    "SplineTransformer",
    "Split",
    "Standardization",
    "Swap",
    "ToyDistribution",
    "TrainState",
    "Translate",
    "WeightAverage",
    "World",
    "FactorOut",
    "Flatten",
    "ImageActNorm",
    "InvertibleConv1x1",
    "Logit",
    "MaskedAffineCoupling",
    "MaskedSplineCoupling",
    "OnLast",
    "Squeeze",
    "Unflatten",
    "ConvNet",
    "conv_block",
    "block",
    "check_flow",
    "cpu_threads",
    "detect_device",
    "distributed",
    "DistributedError",
    "fit",
    "handwritten_nll",
    "fit_gaussian_mixture",
    "initialize_actnorm",
    "initialize_mixture",
    "isclose",
    "label_context",
    "local_device",
    "log_det_jacobian",
    "log_likelihood",
    "mean_nll",
    "num_samples",
    "sample_points",
    "test_flow_layer",
    "toy_data",
    "toy_splits",
    "train",
    "load",
    "two_moons",
    "two_moons_splits",
]
