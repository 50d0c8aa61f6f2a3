"""Data sets, with the standardization that maps them to model units."""

from flowforge.data.moons import PointData, two_moons, two_moons_splits
from flowforge.data.standardize import Standardization

__all__ = ["PointData", "Standardization", "two_moons", "two_moons_splits"]
