"""The image kind of a run: a discrete density over images, scored in bits per dimension.

One of the run kinds of ``flowforge.workbench.runs.kinds`` (which chooses it for a data
set of images); it differs from ``Points`` in its model options (``image_shape``,
``levels``), its fixed split, its units and its figures.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import torch

from flowforge.errors import InputError, RunError
from flowforge.evaluate import NLLEstimate
from flowforge.families import FAMILIES, IMAGES, Family
from flowforge.workbench.data import DataSet, PointData
from flowforge.workbench.runs.config import CONFIG, RunConfig
from flowforge.workbench.runs.kinds import SIZES, Points, Scored, option_flag


class Images(Points):
    """A discrete density over images (a ``DequantizedFlow``), in bits per dimension."""

    data = IMAGES
    default_model = "multiscale"
    heldout_name = "test set"

    def __init__(self, image_shape: tuple[int, ...], levels: int) -> None:
        self.image_shape, self.levels = tuple(int(n) for n in image_shape), int(levels)

    @property
    def dims(self) -> int:
        return math.prod(self.image_shape)

    def sizes(self, dataset: DataSet, given: Mapping[str, int | None]) -> dict[str, int]:
        """None: an image set has a fixed split (``InputError`` if sizes are given)."""
        flags = [option_flag(k) for k in SIZES if given.get(k) is not None]
        if flags:
            raise InputError(
                f"--dataset {dataset.name} has a fixed training/validation/test split; "
                f"drop {', '.join(flags)}"
            )
        return {}

    def check_family(self, family: Family, dataset: DataSet) -> None:
        if family.data != self.data:
            models = [name for name, f in FAMILIES.items() if f.data == IMAGES]
            raise InputError(
                f"--dataset {dataset.name} holds images of discrete pixels, which need an "
                f"image model that dequantizes them: --model {' or '.join(models)}"
            )

    def model_options(self, train: PointData) -> dict[str, Any]:
        """The images' shape and pixel levels."""
        return {"image_shape": list(self.image_shape), "levels": self.levels}

    def builder_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The options, without the ``width`` that runs made before run kinds recorded
        (``RunError`` if it is not the images' pixel count)."""
        options = dict(options)
        width = options.pop("width", self.dims)
        if width != self.dims:
            raise RunError(
                f"{CONFIG} gives the model width {width}, but images of shape "
                f"{self.image_shape} have {self.dims} pixels; the run folder is damaged"
            )
        return options

    def scores(
        self,
        config: RunConfig,
        model: torch.nn.Module,
        scored: Scored,
        entropy: NLLEstimate | None = None,
    ) -> dict[str, Any]:
        """The NLL in bits per dimension, with its standard error."""
        from flowforge.dequantization import bits_per_dim

        return {
            "bits_per_dim": bits_per_dim(scored.estimate.mean, self.dims),
            "bits_per_dim_stderr": bits_per_dim(scored.estimate.stderr, self.dims),
        }

    def metrics(self, config: RunConfig, model: torch.nn.Module, scored: Scored) -> dict:
        """Bits per dimension, the pixels per image and their levels."""
        return {**self.scores(config, model, scored), "dims": self.dims, "levels": self.levels}

    def figure_set(self) -> tuple[Callable[..., dict], Mapping[str, tuple[str, Any]]]:
        """Samples beside training images, the latents per scale, the learning curves:
        ``image_run_figures`` and ``IMAGE_FIGURES``."""
        from flowforge.workbench.figures.runs import IMAGE_FIGURES, image_run_figures

        return image_run_figures, IMAGE_FIGURES

    def report_rows(self, config: RunConfig, metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """The test set's bits per dimension and NLL per image, each with its standard
        error, the images, their pixels and levels."""
        from flowforge.workbench.report import plus_minus

        heldout = metrics.get("heldout", {})
        return [
            (
                "held-out bits per dimension (test set)",
                plus_minus(heldout, "bits_per_dim", "bits_per_dim_stderr"),
            ),
            ("held-out NLL (test set, nats per image)", plus_minus(heldout, "nll", "stderr")),
            ("test images", heldout.get("n")),
            ("pixels per image", heldout.get("dims")),
            ("pixel levels", heldout.get("levels")),
            (
                "final training NLL (nats per image, mean over the last epoch)",
                metrics.get("final_train_nll"),
            ),
        ]

    def summary(self, estimate: NLLEstimate, epochs: int, heldout: Mapping) -> list[str]:
        return [
            f"test NLL after {epochs} epochs: {estimate.mean:.4f} ± {estimate.stderr:.4f} "
            f"nats per image (n={estimate.n}, pixel units)",
            f"  test bits/dim: {heldout['bits_per_dim']:.4f} ± "
            f"{heldout['bits_per_dim_stderr']:.4f} ({heldout['dims']} pixels, "
            f"{heldout['levels']} levels, uniform dequantization)",
        ]

    def eval_text(
        self, source: str, standardized: NLLEstimate, original: NLLEstimate, scores: Mapping
    ) -> str:
        """Bits per dimension first; pixel units are the model's units."""
        return (
            f"{source}: {scores['bits_per_dim']:.4f} ± {scores['bits_per_dim_stderr']:.4f} "
            f"bits/dim (NLL {standardized.mean:.4f} ± {standardized.stderr:.4f} nats per "
            f"image, n={standardized.n})"
        )
