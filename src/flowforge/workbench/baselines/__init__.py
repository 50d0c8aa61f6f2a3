"""Models to compare against the true density: flows, a GAN, mixtures, kernels, a Gaussian.

All share the small ``Baseline`` interface (``fit``, ``sample``, ``log_prob`` where a
density exists, ``surface`` for figures, ``summary``), so a comparison loop treats
them alike.
"""

from flowforge.workbench.baselines.base import Baseline, NoLikelihoodError
from flowforge.workbench.baselines.flows import (
    BuilderFlowBaseline,
    FlowBaseline,
    UniformFlowBaseline,
)
from flowforge.workbench.baselines.gan import GANBaseline
from flowforge.workbench.baselines.gaussian import GaussianBaseline
from flowforge.workbench.baselines.gmm import MixtureBaseline
from flowforge.workbench.baselines.kde import KernelDensityBaseline

__all__ = [
    "Baseline",
    "BuilderFlowBaseline",
    "FlowBaseline",
    "GANBaseline",
    "GaussianBaseline",
    "KernelDensityBaseline",
    "MixtureBaseline",
    "NoLikelihoodError",
    "UniformFlowBaseline",
]
