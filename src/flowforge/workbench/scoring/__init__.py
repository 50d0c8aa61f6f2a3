"""Scoring models against data and truth: sample distances, entropy floors and KL."""
