"""Data sets, with the standardization that maps them to model units, and true densities.

``DATASETS`` names every set (the notebook's ``two_moons``, the toy suite, ``toys``, and
the images of scikit-learn's ``digits``);
``TrueDistribution`` is what a set's truth offers: ``log_prob``, ``sample``, ``entropy``.
"""

from flowforge.data.digits import DIGITS, DigitSplits, ImageFormat, digit_splits
from flowforge.data.distribution import NoDensityError, TrueDistribution
from flowforge.data.moons import two_moons, two_moons_splits
from flowforge.data.moons_density import MoonsDensity
from flowforge.data.points import PointData
from flowforge.data.registry import DATASETS, DataSet, dataset
from flowforge.data.standardize import Standardization
from flowforge.data.toys import TOYS, ToyDistribution, toy_data, toy_splits

__all__ = [
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
    "digit_splits",
    "toy_data",
    "toy_splits",
    "two_moons",
    "two_moons_splits",
]
