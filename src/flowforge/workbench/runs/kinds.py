"""What a run models, chosen once: points, points given a label, or images.

A run's kind owns everything that differs between them: the model options it adds to
the family's own (``width``, ``context_width``; or ``image_shape`` and ``levels``), the
context tensors its model takes, the scores beside the NLL (the gap to the true entropy
and the paired KL, the conditional floor, bits per dimension), the figures and their
captions, the report's first rows and the text the command line prints.

``run_kind(config)`` is the kind of an existing run; ``new_kind(dataset, conditional)``
that of a run about to be made. Nothing outside this module asks which kind a run is.
The image kind, ``Images``, has its own module (``runs.image_kind``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from flowforge.errors import InputError, RunError
from flowforge.evaluate import NLLEstimate
from flowforge.families import FAMILIES, IMAGES, POINTS, Family
from flowforge.workbench.data import DATASETS, DataSet, PointData
from flowforge.workbench.runs.config import CONFIG, RunConfig

# Training and held-out points of a new run on a set of points, unless given.
SIZES = {"n_samples": 100_000, "n_heldout": 20_000}

# The notebook's goal: a held-out NLL below this (nats per point) on the standardized moons.
NOTEBOOK_TARGET = 1.9
TARGET_NAME = "notebook's target: held-out NLL < 1.9 nats (standardized two moons)"


@dataclass(frozen=True)
class Scored:
    """Points a model has scored: ``x`` (model units), the context it was given,
    the log-likelihoods ``log_q`` (``(n,)``, nats) and their NLL estimate."""

    x: Tensor
    context: tuple[Tensor, ...]
    log_q: Tensor
    estimate: NLLEstimate


def option_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


class Points:
    """A density over standardized points, scored against the data's truth where known."""

    data = POINTS  # the ``Family.data`` this kind trains
    default_model = "realnvp"
    heldout_name = "held-out set"

    def sizes(self, dataset: DataSet, given: Mapping[str, int | None]) -> dict[str, int]:
        """``n_samples`` and ``n_heldout``: those given, else ``SIZES``."""
        return {k: v if given.get(k) is None else given[k] for k, v in SIZES.items()}

    def check_family(self, family: Family, dataset: DataSet) -> None:
        """``InputError`` unless ``family`` models what this kind trains."""
        if family.data != self.data:
            images = ", ".join(n for n, d in DATASETS.items() if d.image)
            raise InputError(
                f"--model {family.name} models images of discrete pixels; train it on an "
                f"image data set ({images})"
            )

    def model_options(self, train: PointData) -> dict[str, Any]:
        """What this kind adds to the family's options: the data's width."""
        return {"width": train.points.shape[1]}

    def config_extra(self, train: PointData) -> dict[str, Any]:
        """What this kind adds to a run's ``config.json`` beyond the model and the data."""
        return {}

    def builder_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        """The builder's keyword arguments from a config's model options."""
        return dict(options)

    def context(self, data: PointData) -> tuple[Tensor, ...]:
        """The context tensors the model takes for ``data``: none."""
        return ()

    def sample_context(self, run: Path, label: int | None, n: int) -> tuple[Tensor, ...]:
        """The context rows for ``n`` samples (``flowforge sample --label``): none."""
        if label is not None:
            raise InputError(f"{run} is not conditional; train with --conditional to use --label")
        return ()

    def check_points_file(self, run: Path, path: Path) -> None:
        """``InputError`` if points from a file cannot be scored by this run (they can)."""

    def scores(
        self,
        config: RunConfig,
        model: torch.nn.Module,
        scored: Scored,
        entropy: NLLEstimate | None = None,
    ) -> dict[str, Any]:
        """The truth's scores of the model at ``scored.x`` (``Floor`` or ``SampleCheck``
        values), with ``entropy`` as the true entropy if given; empty without a truth."""
        from flowforge.workbench.scoring.truth import true_distribution, truth_scores

        truth = true_distribution(config.data, config.standardization)
        if truth is None:
            return {}
        x, log_q = scored.x.cpu(), scored.log_q.cpu()
        return truth_scores(truth, x, log_q, model, seed=config.seed, entropy=entropy).to_dict()

    def metrics(self, config: RunConfig, model: torch.nn.Module, scored: Scored) -> dict:
        """What ``metrics.json`` holds under ``heldout`` beyond the NLL: the scores."""
        return self.scores(config, model, scored)

    def figure_set(self) -> tuple[Callable[..., dict], Mapping[str, tuple[str, Any]]]:
        """The function that draws this kind's figures and its table of them (file name ->
        caption first): the point runs' ``run_figures`` and ``FIGURES``."""
        from flowforge.workbench.figures.runs import FIGURES, run_figures

        return run_figures, FIGURES

    def figures(
        self, model: torch.nn.Module, train_points: Tensor, metrics: Mapping, seed: int
    ) -> dict:
        """The run's figures, file name -> matplotlib ``Figure``."""
        draw, _ = self.figure_set()
        return draw(model, train_points, metrics, seed=seed)

    def caption(self, name: str) -> str:
        """The caption of the figure in file ``name``."""
        _, table = self.figure_set()
        return table[name][0]

    # The report's names of the held-out NLL, its count and the truth's entropy.
    nll_name = "held-out NLL (nats per point, standardized units)"
    count_name = "held-out points"
    entropy_name = "true entropy H of the data (nats, Monte Carlo)"

    def target(self, config: RunConfig) -> float | None:
        """The notebook's target for the held-out NLL (nats per point, standardized):
        below 1.9 for the two moons with its noise of 0.1; ``None`` for other data."""
        data = config.data
        return (
            NOTEBOOK_TARGET
            if data.get("name") == "two_moons" and data.get("noise") == 0.1
            else None
        )

    def report_rows(self, config: RunConfig, metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
        """The report's rows of the result: the held-out NLL with its standard error (in
        both units), the notebook's target where it applies, the truth's scores."""
        from flowforge.workbench.report import plus_minus, target_row, truth_rows

        heldout = metrics.get("heldout", {})
        target = self.target(config)
        original = {**heldout, "nll": heldout.get("nll_original_units")}
        return [
            (self.nll_name, plus_minus(heldout, "nll", "stderr")),
            *([target_row(heldout.get("nll"), target, TARGET_NAME)] if target else []),
            (self.count_name, heldout.get("n")),
            (
                "held-out NLL in the data's original units (nats per point)",
                plus_minus(original, "nll", "stderr"),
            ),
            *truth_rows(heldout, self.entropy_name),
            ("final training NLL (mean over the last epoch)", metrics.get("final_train_nll")),
        ]

    def summary(self, estimate: NLLEstimate, epochs: int, heldout: Mapping) -> list[str]:
        """What ``flowforge train`` prints of the result."""
        from flowforge.workbench.scoring.truth import describe_truth

        truth = describe_truth(heldout)
        return [
            f"held-out NLL after {epochs} epochs: {estimate.mean:.4f} ± {estimate.stderr:.4f} "
            f"nats per point (n={estimate.n}, standardized units)",
            *([f"  {truth}"] if truth else []),
        ]

    def eval_text(
        self, source: str, standardized: NLLEstimate, original: NLLEstimate, scores: Mapping
    ) -> str:
        """What ``flowforge eval`` prints: the NLL in both units, then the truth's scores."""
        from flowforge.workbench.scoring.truth import describe_truth

        indent = " " * len(source)
        lines = [
            f"{source}: NLL {standardized.mean:.4f} ± {standardized.stderr:.4f} nats per point "
            f"(n={standardized.n}, standardized units as trained)",
            f"{indent}  {original.mean:.4f} ± {original.stderr:.4f} nats per point "
            "in the data's original units",
        ]
        truth = describe_truth(scores)
        return "\n".join([*lines, *([f"{indent}  {truth}"] if truth else [])])


class ConditionalPoints(Points):
    """A density over points given a one-hot label, ``p(x | label)`` (the moons' moon)."""

    def __init__(self, classes: int | None = None) -> None:
        self.classes = classes  # None for a new run: counted from its training labels

    def _classes(self, train: PointData) -> int:
        return self.classes or int(train.labels.max()) + 1

    def model_options(self, train: PointData) -> dict[str, Any]:
        """The data's width, and as ``context_width`` the number of labels."""
        return {**super().model_options(train), "context_width": self._classes(train)}

    def config_extra(self, train: PointData) -> dict[str, Any]:
        return {"context": {"kind": "label", "classes": self._classes(train)}}

    def context(self, data: PointData) -> tuple[Tensor, ...]:
        """The one-hot labels of ``data``."""
        from flowforge.conditional import label_context

        return (label_context(data.labels, self.classes),)

    def sample_context(self, run: Path, label: int | None, n: int) -> tuple[Tensor, ...]:
        """``label``'s one-hot row ``n`` times, or the labels in turn (``0, 1, 0, ...``)."""
        from flowforge.conditional import label_context

        if label is not None and label >= self.classes:
            raise InputError(f"--label {label}: this run knows labels 0 to {self.classes - 1}")
        labels = torch.full((n,), label) if label is not None else torch.arange(n) % self.classes
        return (label_context(labels, self.classes),)

    def check_points_file(self, run: Path, path: Path) -> None:
        raise InputError(
            f"{run} is a conditional run (p(x | label)) and {path} has no labels; "
            "leave out --data to score the held-out set with its labels"
        )

    def scores(
        self,
        config: RunConfig,
        model: torch.nn.Module,
        scored: Scored,
        entropy: NLLEstimate | None = None,
    ) -> dict[str, Any]:
        """The floor of ``p(x | label)``: each point scored against its own label's truth."""
        from flowforge.workbench.scoring.truth import conditional_floor_of, true_distribution

        truth = true_distribution(config.data, config.standardization)
        if truth is None:
            return {}
        labels = scored.context[0].argmax(dim=1).cpu()
        return conditional_floor_of(truth, scored.x.cpu(), labels, scored.log_q.cpu()).to_dict()

    def figures(
        self, model: torch.nn.Module, train_points: Tensor, metrics: Mapping, seed: int
    ) -> dict:
        """The density and samples given each label, and the learning curves."""
        from flowforge.workbench.figures.runs import conditional_figures

        return conditional_figures(model, self.classes, metrics, seed=seed)

    nll_name = "held-out NLL of p(x | label) (nats per point, standardized units)"
    entropy_name = "true conditional entropy H(X | label) (nats, Monte Carlo)"

    def target(self, config: RunConfig) -> None:
        """None: the notebook's target is for p(x), and p(x | label) scores lower."""
        return None

    def caption(self, name: str) -> str:
        from flowforge.workbench.figures.runs import FIGURES, conditional_caption

        return FIGURES[name][0] if name in FIGURES else conditional_caption(name)


def new_kind(dataset: DataSet, conditional: bool) -> Points:
    """The kind of a new run on ``dataset`` (``conditional``: given the labels)."""
    from flowforge.workbench.runs.image_kind import Images

    if dataset.image is not None:
        return Images(dataset.image.shape, dataset.image.levels)
    return ConditionalPoints() if conditional else Points()


def family_of(config: RunConfig) -> Family:
    """The family a run's model belongs to (``RunError`` for a name flowforge lacks)."""
    try:
        return FAMILIES[config.model]
    except KeyError:
        raise RunError(f"unknown model {config.model!r}; known: {sorted(FAMILIES)}") from None


def run_kind(config: RunConfig) -> Points:
    """The kind of the run ``config`` describes: its family's data, and its context."""
    from flowforge.workbench.runs.image_kind import Images

    if "target" in config.extra:  # flowforge train --target: a sampler of a density
        from flowforge.workbench.runs.target_kind import TargetPoints

        return TargetPoints(config)
    options = config.model_options
    if family_of(config).data == IMAGES:
        try:
            return Images(options["image_shape"], options["levels"])
        except (KeyError, TypeError, ValueError) as error:
            raise RunError(f"{CONFIG} lacks the images' shape or levels ({error!r})") from None
    context = config.extra.get("context")
    if context is None:
        return Points()
    if not (isinstance(context, dict) and context.get("kind") == "label"):
        raise RunError(f"unknown context {context!r} in {CONFIG}; known: label")
    return ConditionalPoints(int(context["classes"]))


def build_model(config: RunConfig) -> torch.nn.Module:
    """A freshly initialized model as ``config`` describes it (uses torch's global RNG)."""
    if "target" in config.extra:
        from flowforge.workbench.runs.target_kind import build_sampler

        return build_sampler(config)
    family = family_of(config)
    options = run_kind(config).builder_options(config.model_options)
    try:
        return family.build(**options)
    except (TypeError, ValueError) as error:
        raise RunError(f"cannot build model {config.model!r}: {error}") from None
