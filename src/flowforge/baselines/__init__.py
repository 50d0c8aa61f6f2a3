"""Models to compare against the true density: flows, a GAN, mixtures, kernels, a Gaussian.

All share the small ``Baseline`` interface (``fit``, ``sample``, ``log_prob`` where a
density exists, ``surface`` for figures, ``summary``), so a comparison loop treats
them alike.
"""

from flowforge.baselines.base import Baseline, NoLikelihoodError
from flowforge.baselines.flows import BuilderFlowBaseline, FlowBaseline, UniformFlowBaseline
from flowforge.baselines.gan import GANBaseline
from flowforge.baselines.gaussian import GaussianBaseline
from flowforge.baselines.kde import KernelDensityBaseline
from flowforge.baselines.mixture import MixtureBaseline

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
