"""Running an experiment into a run folder: checkpoints every epoch, resumption, outputs.

``start_run`` creates the folder and its ``config.json``; ``train_run`` trains (or
continues) the run it describes, saving ``checkpoint.safetensors`` after every epoch,
then writes the weights, the metrics, the figures and the report. A run interrupted
at any moment, even by SIGKILL, continues from its last completed epoch and ends with
the same weights as an uninterrupted one: the batches of each epoch depend only on the
seed and the epoch, and the checkpoint holds the exact weights, optimizer state and
random-number state.

Under ``torchrun`` every process calls ``train_run`` on the same folder: they train one
model together (``fit`` with DistributedDataParallel) and only the first process writes
the checkpoints, weights, metrics, figures and report.
"""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flowforge.workbench.runs.checkpoint import load_checkpoint, restore_rng, save_checkpoint, save_weights
from flowforge.workbench.data import PointData
from flowforge.evaluate import NLLEstimate, log_likelihood, nll_estimate
from flowforge.workbench.files import atomic_write_text, write_json
from flowforge.flow import NormalizingFlow
from flowforge.initialize import initialize_from_data
from flowforge.workbench.runs.config import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    REPORT,
    WEIGHTS,
    RunConfig,
    RunError,
    build_model,
    context_classes,
    load_data,
    parameter_count,
    read_config,
    run_context,
    write_config,
)
from flowforge.training import History, TrainState, fit
from flowforge.training.distributed import DEFAULT_TIMEOUT, distributed


def start_run(folder: str | Path, config: RunConfig) -> Path:
    """Create the run folder ``folder`` and write its ``config.json``.

    Refuses a folder that already holds anything, so no earlier work is overwritten.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunError(f"{folder} is a file; choose another --output")
    if folder.is_dir() and any(folder.iterdir()):
        if (folder / CONFIG).exists():
            raise RunError(
                f"{folder} already holds a run; continue it with "
                f"`flowforge train --resume {folder}` or choose another --output"
            )
        raise RunError(f"{folder} exists and is not empty; choose another --output")
    folder.mkdir(parents=True, exist_ok=True)
    write_config(folder, config)
    return folder


@dataclass
class Outcome:
    """What ``train_run`` did: the model (now on the CPU), the held-out estimate, the folder.

    In a distributed run only the first process writes and fills ``metrics``; the
    others hold an empty dict there (and their model on its training device).
    """

    folder: Path
    model: NormalizingFlow
    history: History
    heldout: NLLEstimate
    metrics: dict[str, Any]
    resumed_from: int  # completed epochs found in the checkpoint (0 for a fresh start)


def _model_for(folder: Path, config: RunConfig, device: torch.device):
    """A model ready to train: fresh (seeded) or with its checkpoint's state and RNG."""
    checkpoint = load_checkpoint(folder / CHECKPOINT) if (folder / CHECKPOINT).exists() else None
    torch.manual_seed(config.seed)
    model = build_model(config).to(device)
    if checkpoint is None:
        return model, None
    restore_rng(checkpoint.rng)
    return model, checkpoint.state


def train_run(
    folder: str | Path,
    *,
    device: str | torch.device | None = None,
    progress: bool = True,
    callbacks: Sequence[Callable[[TrainState], None]] = (),
    timeout: float = DEFAULT_TIMEOUT,
) -> Outcome:
    """Train the run in ``folder`` (continuing from its checkpoint if there is one) and
    write ``model.safetensors``, ``metrics.json``, the figures and ``report.html``.

    ``device`` overrides the config's (``"auto"``, ``"cpu"``, ``"cuda"``, ...).
    ``callbacks`` are called after every epoch, after the checkpoint is written.
    Under ``torchrun`` the processes train together (each on its own GPU, when there
    are GPUs); only the first writes, and shows progress. ``timeout`` is how many
    seconds a process waits for the others before the run fails.
    """
    started = time.perf_counter()
    folder = Path(folder)
    config = read_config(folder)
    with distributed(device or config.device, timeout) as (world, device):
        return _train_run(folder, config, device, progress and world.is_main, callbacks, started)


def _train_run(
    folder: Path,
    config: RunConfig,
    device: torch.device,
    progress: bool,
    callbacks: Sequence[Callable[[TrainState], None]],
    started: float,
) -> Outcome:
    """``train_run`` once the device is chosen and the process group (if any) joined."""
    from flowforge.training.distributed import current_world

    world = current_world()
    train, heldout = load_data(config)
    model, resume = _model_for(folder, config, device)
    context = tuple(c.to(device) for c in run_context(config, train))
    heldout_context = tuple(c.to(device) for c in run_context(config, heldout))
    if resume is None:
        initialize_from_data(model, train.points.to(device), *context, seed=config.seed)

    def checkpoint(state: TrainState) -> None:
        save_checkpoint(folder / CHECKPOINT, state)

    history = fit(
        model,
        train.points,
        context=context,
        validation=heldout.points,
        validation_context=heldout_context,
        **config.recipe,
        seed=config.seed,
        restore_best=False,
        progress=progress,
        callbacks=[checkpoint, *callbacks],
        resume=resume,
    )
    log_q = log_likelihood(model, heldout.points, *heldout_context)
    estimate = nll_estimate(log_q)
    resumed_from = resume.epoch if resume is not None else 0
    if not world.is_main:
        return Outcome(folder, model, history, estimate, {}, resumed_from)
    save_weights(folder / WEIGHTS, model.state_dict())
    metrics = run_metrics(model, history, estimate, config, device, time.perf_counter() - started)
    metrics["heldout"].update(floor_metrics(config, heldout, log_q, model))
    metrics["heldout"].update(image_metrics(model, estimate))
    metrics["resumed_from_epoch"] = resumed_from
    metrics["processes"] = world.size
    write_json(folder / METRICS, metrics)
    model.cpu()  # figures are drawn on the CPU, as `flowforge plot` redraws them
    write_outputs(folder, model, train.points, config, metrics)
    return Outcome(folder, model, history, estimate, metrics, metrics["resumed_from_epoch"])


def versions() -> dict[str, str]:
    """Versions of flowforge, Python and the libraries that shaped the numbers."""
    import sklearn

    from flowforge.version import __version__

    return {
        "flowforge": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "platform": platform.platform(),
    }


def run_metrics(
    model: NormalizingFlow,
    history: History,
    heldout: NLLEstimate,
    config: RunConfig,
    device: torch.device,
    wall_seconds: float,
) -> dict[str, Any]:
    """The contents of ``metrics.json``: per-epoch NLLs (nats per point), final held-out
    NLL with its standard error, times (seconds), parameter count and versions."""
    log_abs_det = config.standardization.log_abs_det
    return {
        "train_nll": history.train_nll,
        "heldout_nll": history.heldout_nll,
        "epoch_seconds": history.seconds,
        "epochs": history.epochs,
        "final_train_nll": history.train_nll[-1] if history.train_nll else math.nan,
        "heldout": {
            "nll": heldout.mean,
            "stderr": heldout.stderr,
            "n": heldout.n,
            "nll_original_units": heldout.mean - log_abs_det,
        },
        "train_seconds": float(sum(history.seconds)),
        "wall_seconds": wall_seconds,
        "parameters": parameter_count(model),
        "device": str(device),
        "versions": versions(),
    }


def image_metrics(model: NormalizingFlow, heldout: NLLEstimate) -> dict[str, Any]:
    """For a flow over discrete images, the held-out NLL in bits per dimension (the test
    set's, for the digits) with its standard error; nothing for other models."""
    from flowforge.dequantization import DequantizedFlow, bits_per_dim

    if not isinstance(model, DequantizedFlow):
        return {}
    return {
        "bits_per_dim": bits_per_dim(heldout.mean, model.dims),
        "bits_per_dim_stderr": bits_per_dim(heldout.stderr, model.dims),
        "dims": model.dims,
        "levels": model.levels,
    }


def floor_metrics(
    config: RunConfig, heldout: PointData, log_q: torch.Tensor, model: NormalizingFlow
) -> dict[str, Any]:
    """The held-out NLL's gap to the true entropy and the paired KL when the data's true
    density is known; sample distances when only its sampler is (pinwheel, ...); else
    nothing. For a conditional run the truth is ``p(x | label)``: each point's own moon."""
    from flowforge.workbench.scoring.truth import conditional_floor_of, true_distribution, truth_scores

    truth = true_distribution(config.data, config.standardization)
    if truth is None:
        return {}
    x, log_q = heldout.points.cpu(), log_q.cpu()
    if context_classes(config):
        return conditional_floor_of(truth, x, heldout.labels, log_q).to_dict()
    return truth_scores(truth, x, log_q, model, seed=config.seed).to_dict()


def write_outputs(
    folder: Path,
    model: NormalizingFlow,
    train_points: torch.Tensor,
    config: RunConfig,
    metrics: dict[str, Any],
) -> list[Path]:
    """Draw the run's figures and write them and ``report.html`` into ``folder``."""
    from flowforge.dequantization import DequantizedFlow
    from flowforge.workbench.figures.runs import (
        FIGURES,
        IMAGE_FIGURES,
        conditional_caption,
        conditional_figures,
        image_run_figures,
        run_figures,
        save_figure,
    )
    from flowforge.workbench.report import render_run

    written = []
    classes = context_classes(config)
    known = FIGURES
    if isinstance(model, DequantizedFlow):
        figures = image_run_figures(model, train_points, metrics, seed=config.seed)
        known = IMAGE_FIGURES
    elif classes:
        figures = conditional_figures(model, classes, metrics, seed=config.seed)
    else:
        figures = run_figures(model, train_points, metrics, seed=config.seed)
    for name, figure in figures.items():
        written.append(save_figure(figure, folder / name))
    captions = {name: caption for name, (caption, _) in known.items()}
    captions.update({name: conditional_caption(name) for name in figures if name not in captions})
    captions = {name: text for name, text in captions.items() if name in figures}
    html = render_run(folder, config.to_dict(), metrics, captions)
    written.append(atomic_write_text(folder / REPORT, html))
    return written
