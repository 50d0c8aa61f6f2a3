"""Figures: the notebook's plot helpers, a run's figures and image grids."""
