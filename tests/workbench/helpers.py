"""Helpers for the workbench tests: tiny runs made through the command line, and image checks."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path

import numpy as np

from flowforge.workbench.cli.main import main
from flowforge.workbench.data import two_moons_splits
from flowforge.workbench.runs.config import RunConfig

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


def run_main(argv: list[str]) -> str:
    """``flowforge ARGV`` in this process; its standard output (exit code 0 asserted)."""
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(argv) == 0
    return out.getvalue()


def tiny_config(**changes) -> RunConfig:
    train, _ = two_moons_splits(800, 200, seed=2)
    fields = dict(
        model="realnvp",
        model_options={"width": 2, "couplings": 2, "hidden": 8, "base": "normal"},
        data={"name": "two_moons", "n_samples": 800, "n_heldout": 200, "noise": 0.1},
        standardization=train.standardization,
        recipe={"epochs": 1, "batch_size": 200, "lr": 1e-2, "ema": 0.9, "shuffle": True},
        seed=2,
        device="cpu",
    )
    return RunConfig(**{**fields, **changes})


def copy_with_heldout_nll(run: Path, copy: Path, nll) -> Path:
    """A copy of the run folder ``run`` at ``copy`` whose metrics.json records the
    held-out NLL ``nll`` (``None`` for NaN, ``"inf"``, an absurd number)."""
    import json
    import shutil

    shutil.copytree(run, copy)
    metrics = json.loads((copy / "metrics.json").read_text())
    metrics["heldout"]["nll"] = nll
    (copy / "metrics.json").write_text(json.dumps(metrics))
    return copy
