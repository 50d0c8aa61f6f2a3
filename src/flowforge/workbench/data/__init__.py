"""Data sets, with the standardization that maps them to model units, and true densities.

``DATASETS`` names every set (the notebook's ``two_moons``, the toy suite, ``toys``, and
the images of scikit-learn's ``digits``);
``TrueDistribution`` is what a set's truth offers: ``log_prob``, ``sample``, ``entropy``.
"""

from flowforge.workbench.data.digits import DIGITS, DigitSplits, ImageFormat, digit_splits
from flowforge.workbench.data.moons import two_moons, two_moons_splits
from flowforge.workbench.data.moons_density import MoonsDensity
from flowforge.workbench.data.points import PointData
from flowforge.workbench.data.registry import ALIASES, DATASETS, DataSet, dataset, names_help
from flowforge.workbench.data.standardize import Standardization
from flowforge.workbench.data.toys import TOYS, ToyDistribution, toy_data, toy_splits
from flowforge.workbench.data.true_distribution import NoDensityError, TrueDistribution

__all__ = [
    "ALIASES",
    "DATASETS",
    "DIGITS",
    "DataSet",
    "DigitSplits",
    "ImageFormat",
    "MoonsDensity",
    "NoDensityError",
    "PointData",
    "Standardization",
    "TOYS",
    "ToyDistribution",
    "TrueDistribution",
    "dataset",
    "names_help",
    "digit_splits",
    "toy_data",
    "toy_splits",
    "two_moons",
    "two_moons_splits",
]
