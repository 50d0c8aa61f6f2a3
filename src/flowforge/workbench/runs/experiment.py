"""Running an experiment into a run folder: checkpoints every epoch, resumption, outputs.

``start_run`` creates the folder and its ``config.json``; ``train_run`` trains (or
continues) the run it describes, saving ``checkpoint.safetensors`` after every epoch,
then writes the weights, the metrics, the figures and the report. A run interrupted
at any moment, even by SIGKILL, continues from its last completed epoch and ends with
the same weights as an uninterrupted one: the batches of each epoch depend only on the
seed and the epoch, and the checkpoint holds the exact weights, optimizer state and
random-number state.

Under ``torchrun`` every process calls ``train_run`` on the same folder: they train one
model together (``fit`` with DistributedDataParallel, in the ``World`` the caller joined
or ``train_run`` joins) and only the first process writes the checkpoints, weights,
metrics, figures and report. What differs between runs of points, of points given a
label and of images is the run's kind (``runs.kinds``), chosen once from its config.
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

from flowforge.errors import DistributedError
from flowforge.evaluate import NLLEstimate, log_likelihood, nll_estimate
from flowforge.flow import NormalizingFlow
from flowforge.initialize import initialize_from_data
from flowforge.training import History, TrainState, fit
from flowforge.training.distributed import DEFAULT_TIMEOUT, World, distributed, local_device
from flowforge.workbench.data import PointData
from flowforge.workbench.files import atomic_write_text, file_error, write_json
from flowforge.workbench.runs.checkpoint import (
    CheckpointError,
    load_checkpoint,
    previous_path,
    restore_rng,
    save_checkpoint,
    save_weights,
)
from flowforge.workbench.runs.claim import claim_for_new_run, keep, take, undo_start
from flowforge.workbench.runs.config import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    REPORT,
    WEIGHTS,
    RunConfig,
    RunError,
    load_data,
    parameter_count,
    read_config,
    write_config,
)
from flowforge.workbench.runs.kinds import Scored, build_model, run_kind


def start_run(folder: str | Path, config: RunConfig) -> Path:
    """Create the run folder ``folder`` and write its ``config.json``, under this process's
    claim (``runs.claim``), which ``train_run`` takes over here and releases.

    Refuses (one-line ``RunError``) a folder that already holds anything but temp files
    of killed writes, so no earlier work is overwritten, and one that another writer
    holds, so two processes can never train one folder. If ``train_run`` then fails
    before the first checkpoint (other than by diverging or losing a peer, which keeps
    the run to inspect or resume), the start is undone: the folder is as it was before.
    """
    folder = Path(folder)
    held = claim_for_new_run(folder, CONFIG)
    try:
        write_config(folder, config)
    except OSError as error:
        undo_start(held, [CONFIG])
        raise RunError(_cannot_write(error, folder)) from None
    except BaseException:
        undo_start(held, [CONFIG])
        raise
    held.fresh = True
    keep(held)
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


def read_checkpoint(folder: Path):
    """The run's checkpoint (``None`` if it has none yet). A damaged one is refused with a
    ``CheckpointError`` that says whether the previous good checkpoint is kept
    (``checkpoint.previous_path``) and how to continue from it."""
    path = folder / CHECKPOINT
    if not (path.exists() or path.is_symlink()):
        return None
    try:
        return load_checkpoint(path)
    except CheckpointError as error:
        raise CheckpointError(f"{error}; {_previous_hint(folder)}") from None


def _previous_hint(folder: Path) -> str:
    previous = previous_path(folder / CHECKPOINT)
    try:
        epoch = load_checkpoint(previous).state.epoch
    except CheckpointError:
        return (
            f"no earlier checkpoint is kept: delete it to train the run again from the start "
            f"with `flowforge train --resume {folder}`"
        )
    return (
        f"the previous good checkpoint (epoch {epoch}) is kept in {previous}: to continue "
        f"from it, move it over {CHECKPOINT} (`mv {previous} {folder / CHECKPOINT}`) and run "
        f"`flowforge train --resume {folder}`"
    )


def _model_for(folder: Path, config: RunConfig, device: torch.device):
    """A model ready to train: fresh (seeded) or with its checkpoint's state and RNG."""
    checkpoint = read_checkpoint(folder)
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
    world: World | None = None,
    config: RunConfig | None = None,
    data: tuple[PointData, PointData] | None = None,
) -> Outcome:
    """Train the run in ``folder`` (continuing from its checkpoint if there is one) and
    write ``model.safetensors``, ``metrics.json``, the figures and ``report.html``.

    ``device`` overrides the config's (``"auto"``, ``"cpu"``, ``"cuda"``, ...).
    ``callbacks`` are called after every epoch, after the checkpoint is written.
    Under ``torchrun`` the processes train together (each on its own GPU, when there
    are GPUs); only the first writes, and shows progress. ``timeout`` is how many
    seconds a process waits for the others before the run fails.

    A caller that has joined the process group already (``flowforge train`` enters
    ``distributed()`` once for the whole command) passes the ``world`` and the
    ``device`` it got there; it may pass the run's ``config`` and its ``data`` (the
    training and held-out split) when it has them, so that neither is read or drawn again.
    """
    started = time.perf_counter()
    folder = Path(folder)
    config = read_config(folder) if config is None else config
    session = _Session(folder, config, progress, tuple(callbacks), started)
    if world is not None:
        return _train(session, data, local_device(device or config.device), world)
    with distributed(device or config.device, timeout) as (world, device):
        return _train(session, data, device, world)


@dataclass(frozen=True)
class _Session:
    """What ``train_run`` was asked to do, and when it started (``time.perf_counter``)."""

    folder: Path
    config: RunConfig
    progress: bool
    callbacks: tuple[Callable[[TrainState], None], ...]
    started: float


def _train(
    session: _Session,
    data: tuple[PointData, PointData] | None,
    device: torch.device,
    world: World,
) -> Outcome:
    """``train_run`` once the device is chosen and the process group (if any) joined: the
    first process holds the folder's claim throughout (``runs.claim``), and undoes a
    start (``start_run`` here) that fails before the first checkpoint, unless it failed
    training (a divergence, a lost peer: the run is kept to inspect or resume)."""
    if not world.is_main:
        return _train_claimed(session, data, device, world)
    held = take(session.folder)
    try:
        return _train_claimed(session, data, device, world)
    except Exception as error:
        unstarted = not (session.folder / CHECKPOINT).exists()
        trained = isinstance(error, DistributedError | FloatingPointError)  # can be inspected
        if held.fresh and unstarted and not trained:
            undo_start(held, [CONFIG])
        if isinstance(error, OSError):
            raise RunError(_cannot_write(error, session.folder)) from None
        raise
    finally:
        held.release()


def _cannot_write(error: OSError, folder: Path) -> str:
    """The one-line message for a write that failed (a full disk, a read-only folder):
    ``files.file_error`` (a failed flush that names no file names the run folder), and
    how to continue when the run was kept."""
    if error.filename is None:
        error = OSError(error.errno, error.strerror or str(error), str(folder))
    then = (
        f"; then continue with `flowforge train --resume {folder}`"
        if (folder / CONFIG).exists()
        else ""
    )
    return file_error(error) + then


def _train_claimed(
    session: _Session,
    data: tuple[PointData, PointData] | None,
    device: torch.device,
    world: World,
) -> Outcome:
    """``_train`` under the claim."""
    config, folder = session.config, session.folder
    kind = run_kind(config)
    train, heldout = load_data(config) if data is None else data
    model, resume = _model_for(folder, config, device)
    context = tuple(c.to(device) for c in kind.context(train))
    heldout_context = tuple(c.to(device) for c in kind.context(heldout))
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
        progress=session.progress and world.is_main,
        callbacks=[checkpoint, *session.callbacks],
        resume=resume,
        world=world,
    )
    log_q = log_likelihood(model, heldout.points, *heldout_context)
    scored = Scored(heldout.points, heldout_context, log_q, nll_estimate(log_q))
    resumed_from = resume.epoch if resume is not None else 0
    if not world.is_main:
        return Outcome(folder, model, history, scored.estimate, {}, resumed_from)
    save_weights(folder / WEIGHTS, model.state_dict())
    seconds = time.perf_counter() - session.started
    metrics = run_metrics(model, history, scored.estimate, config, device, seconds)
    metrics["heldout"].update(kind.metrics(config, model, scored))
    metrics["resumed_from_epoch"] = resumed_from
    metrics["processes"] = world.size
    write_json(folder / METRICS, metrics)
    model.cpu()  # figures are drawn on the CPU, as `flowforge plot` redraws them
    write_outputs(folder, model, train.points, config, metrics)
    return Outcome(folder, model, history, scored.estimate, metrics, resumed_from)


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


def write_outputs(
    folder: Path,
    model: NormalizingFlow,
    train_points: torch.Tensor,
    config: RunConfig,
    metrics: dict[str, Any],
) -> list[Path]:
    """Draw the run's figures and write them and ``report.html`` into ``folder``."""
    from flowforge.workbench.figures.runs import save_figure
    from flowforge.workbench.report import render_run

    kind = run_kind(config)
    figures = kind.figures(model, train_points, metrics, config.seed)
    written = [save_figure(figure, folder / name) for name, figure in figures.items()]
    captions = {name: kind.caption(name) for name in figures}
    first = kind.report_rows(config, metrics)
    html = render_run(folder, config.to_dict(), metrics, captions, first_rows=first)
    written.append(atomic_write_text(folder / REPORT, html))
    return written
