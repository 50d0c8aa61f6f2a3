"""Helpers for the workbench tests: tiny runs made through the command line, and image checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from flowforge.workbench.cli.main import main

# A run small enough to train in well under a second: 2 epochs over 1,500 points.
TINY = ["--n-samples", "1500", "--n-heldout", "500", "--epochs", "2", "--batch-size", "128"]


def train_tiny(folder: Path, *extra: str) -> Path:
    """Train a tiny run into ``folder`` with ``flowforge train`` (in-process); returns it."""
    assert main(["train", *TINY, "--quiet", "--output", str(folder), *extra]) == 0
    return folder


def small_flags(family: str) -> list[str]:
    """The command-line flags of a family's declared test size (``Family.test_size``)."""
    from flowforge.families import FAMILIES

    declared = FAMILIES[family]
    flags = []
    for name, value in declared.test_size.items():
        option = declared.option(name)
        flags += [option.flag] if option.switch else [option.flag, str(value)]
    return flags


def pixel_spread(path: Path) -> float:
    """The standard deviation of an image's pixel values (0 for a blank image)."""
    from matplotlib.image import imread

    return float(np.std(imread(path)[..., :3]))
