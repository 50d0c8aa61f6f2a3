"""Data sets, with the standardization that maps them to model units, and true densities."""

from flowforge.data.moons import PointData, two_moons, two_moons_splits
from flowforge.data.moons_density import MoonsDensity
from flowforge.data.standardize import Standardization

__all__ = ["MoonsDensity", "PointData", "Standardization", "two_moons", "two_moons_splits"]
