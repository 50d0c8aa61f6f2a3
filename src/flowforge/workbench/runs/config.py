"""A run folder, as ``flowforge train`` writes it, and ``load(RUN)`` to get a trained model back.

A run folder holds:

- ``config.json``: everything needed to rebuild the model (builder name and options),
  the data (data set, sizes, options such as the moons' noise, seed), its
  standardization, and the recipe;
- ``checkpoint.safetensors``: the training state after the last completed epoch
  (weights, optimizer, history, random-number state), for ``--resume``, checksummed as
  a whole; ``checkpoint.previous.safetensors``: the one before it (``runs.checkpoint``);
- ``model.safetensors``: the trained weights;
- ``metrics.json``, the figures (``*.png``) and ``report.html``;
- ``.flowforge.lock``: the writer's claim on the folder (``runs.claim``).

Nothing in a run folder is pickled; loading one never executes code from it, and every
file is checked (a regular file, of at most ``MAX_JSON_BYTES`` for the JSON files) before
it is read.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch

from flowforge.device import resolve_device
from flowforge.errors import RunError
from flowforge.flow import NormalizingFlow
from flowforge.workbench.data import DATASETS, PointData, Standardization
from flowforge.workbench.files import parse_json, read_limited, write_json
from flowforge.workbench.runs.checkpoint import CheckpointError, load_weights

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
CHECKPOINT = "checkpoint.safetensors"
METRICS = "metrics.json"
REPORT = "report.html"
FORMAT = "flowforge-run"
FORMAT_VERSION = 1
# The largest config.json or metrics.json flowforge reads: 64 MiB (a run's own are a few KiB).
MAX_JSON_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class RunConfig:
    """What a run is: model, data, standardization, training recipe, seed and device.

    ``model`` names a family in ``flowforge.families.FAMILIES``, whose builder is called
    with ``model_options`` (as the run's kind reads them: ``runs.kinds``); ``data`` is
    ``{"name": <flowforge.workbench.data.DATASETS key>, "n_samples": ..., "n_heldout": ...,
    **options}``; ``recipe`` holds ``fit``'s keyword arguments (epochs, batch size,
    learning rate, schedule, ...); ``extra`` the rest of ``config.json`` (a conditional
    run's ``context``).
    """

    model: str
    model_options: dict[str, Any]
    data: dict[str, Any]
    standardization: Standardization
    recipe: dict[str, Any]
    seed: int = 0
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from flowforge.version import __version__

        return {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "flowforge_version": __version__,
            "model": {"name": self.model, "options": self.model_options},
            "data": self.data,
            "standardization": self.standardization.to_dict(),
            "recipe": self.recipe,
            "seed": self.seed,
            "device": self.device,
            **self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = CONFIG) -> RunConfig:
        if not isinstance(d, dict) or d.get("format") != FORMAT:
            raise RunError(f"{source} is not a flowforge run configuration")
        if d.get("format_version") != FORMAT_VERSION:
            raise RunError(
                f"{source} has format version {d.get('format_version')}; "
                f"this flowforge reads version {FORMAT_VERSION}"
            )
        known = {"format", "format_version", "flowforge_version", "model", "data"}
        known |= {"standardization", "recipe", "seed", "device"}
        try:
            return cls(
                model=str(d["model"]["name"]),
                model_options=dict(d["model"]["options"]),
                data=dict(d["data"]),
                standardization=Standardization.from_dict(d["standardization"]),
                recipe={"ema": 0.0, **d["recipe"]},  # runs from before the average had none
                seed=int(d["seed"]),
                device=str(d.get("device", "auto")),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
            raise RunError(f"{source} is incomplete or damaged ({error!r})") from None


def run_folder(run: str | os.PathLike) -> Path:
    """``run`` as a ``Path`` to an existing folder, else ``RunError``."""
    path = Path(run)
    if not path.exists():
        raise RunError(f"{path}: no such run folder")
    if not path.is_dir():
        raise RunError(f"{path} is a file, not a run folder")
    return path


def read_json(path: Path) -> Any:
    """Parse the JSON file ``path``; ``RunError`` when it is missing or damaged, is not a
    regular file, is over ``MAX_JSON_BYTES`` or nests too deeply (``files.parse_json``)."""
    data = read_limited(path, MAX_JSON_BYTES, "JSON", RunError, missing=f"{path} is missing")
    try:
        return parse_json(data)
    except ValueError as error:
        raise RunError(f"{path} cannot be read as JSON ({error})") from None


def read_config(run: str | os.PathLike) -> RunConfig:
    """The ``RunConfig`` of a run folder."""
    folder = run_folder(run)
    if not ((folder / CONFIG).exists() or (folder / CONFIG).is_symlink()):
        raise RunError(f"{folder} is not a flowforge run folder (it has no {CONFIG})")
    return RunConfig.from_dict(read_json(folder / CONFIG), str(folder / CONFIG))


def write_config(run: str | os.PathLike, config: RunConfig) -> Path:
    return write_json(Path(run) / CONFIG, config.to_dict())


def read_metrics(run: str | os.PathLike) -> dict[str, Any]:
    """A finished run's ``metrics.json``."""
    folder = run_folder(run)
    if not ((folder / METRICS).exists() or (folder / METRICS).is_symlink()):
        raise RunError(
            f"{folder} has no {METRICS}: its training did not finish; "
            f"continue it with `flowforge train --resume {folder}`"
        )
    return read_json(folder / METRICS)


def load_data(config: RunConfig) -> tuple[PointData, PointData]:
    """The run's training and held-out data, regenerated from ``config`` (standardized).

    Raises ``RunError`` if the regenerated training data is not the one the run was
    trained on (its standardization differs), e.g. after a change of scikit-learn.
    """
    options = dict(config.data)
    name = options.pop("name", None)
    if name not in DATASETS:
        raise RunError(f"unknown data set {name!r}; known: {', '.join(DATASETS)}")
    try:
        train, heldout = DATASETS[name].splits(seed=config.seed, **options)
    except (TypeError, ValueError) as error:
        raise RunError(f"cannot regenerate the data in {CONFIG}: {error}") from None
    if train.standardization != config.standardization:
        raise RunError(
            "the data regenerated from the config differs from the run's "
            f"(standardization {train.standardization} vs {config.standardization}); "
            "was it made with another version of scikit-learn or numpy?"
        )
    return train, heldout


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Trained(NamedTuple):
    """A trained model and the standardization that maps original data to its units."""

    model: NormalizingFlow
    standardization: Standardization


def load_model(folder: Path, config: RunConfig) -> NormalizingFlow:
    """The run's model with its trained weights (on the CPU, in eval mode)."""
    from flowforge.workbench.runs.kinds import build_model

    model = build_model(config)
    try:
        weights = load_weights(folder / WEIGHTS)
    except CheckpointError as error:
        if (folder / WEIGHTS).exists():
            raise
        raise RunError(
            f"{error}: the run's training did not finish; continue it with "
            f"`flowforge train --resume {folder}`"
        ) from None
    try:
        model.load_state_dict(weights)
    except RuntimeError as error:
        first = str(error).splitlines()[0]
        raise RunError(f"{folder / WEIGHTS} does not fit the model in {CONFIG} ({first})") from None
    return model.eval()


def load(run: str | os.PathLike, device: str | torch.device | None = None) -> Trained:
    """Load a run folder written by ``flowforge train``: ``(model, standardization)``.

    The model is rebuilt from ``config.json`` and given the weights of
    ``model.safetensors`` (no pickle, no code from the folder runs); it is returned in
    eval mode on ``device`` (default: the CPU; ``"auto"`` picks CUDA, MPS, then CPU).
    ``model.log_prob`` works in standardized units: for points ``x`` in the data's
    original units use ``model.log_prob(standardization.transform(x)) +
    standardization.log_abs_det``.
    """
    folder = run_folder(run)
    config = read_config(folder)
    model = load_model(folder, config)
    if device is not None:
        model.to(resolve_device(device))
    return Trained(model, config.standardization)
