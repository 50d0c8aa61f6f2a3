"""Checkpoints without pickle: a training state in one checksummed safetensors file.

A checkpoint (``save_checkpoint``) is one file in the format of ``runs.tensorfile``:
its tensors are the model's state, the optimizer's per-parameter state, the best
weights so far, the averaged run's iterates and the torch random-number state
(``uint8``); the epoch, step, history and the optimizer's parameter groups are its JSON
record. One SHA-256 covers the whole file, metadata included, so damage anywhere (one
flipped bit) is refused with a one-line ``CheckpointError``: a checkpoint loads exactly
the state that was saved, or not at all. It is written atomically
(``files.atomic_write_bytes``), so a crash at any moment leaves the previous file intact.

**The previous checkpoint.** Before it writes, ``save_checkpoint`` keeps the checkpoint it
replaces, when that one is intact, as ``NAME.previous.safetensors`` beside it
(``previous_path``; a hard link where the file system has them, else a copy, each put in
place atomically). A checkpoint found damaged on disk is therefore never the only one:
it is refused, it is never made the previous one, and the previous good one stays
(``runs.experiment`` names it in its error, with how to resume from it). Weights
(``save_weights``) are written once, at the end of training, and have no previous copy.

Reading never executes anything from the file, and checks its type and size first
(``runs.tensorfile``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from flowforge.errors import CheckpointError
from flowforge.training.state import History, TrainState
from flowforge.workbench.files import atomic_write_bytes, read_limited, temp_path
from flowforge.workbench.runs.tensorfile import (  # noqa: F401  (the format, re-exported)
    FORMAT_VERSION,
    MAX_CHECKPOINT_BYTES,
    MAX_WEIGHTS_BYTES,
    META_KEY,
    check_size,
    decode_tensors,
    digest,
    encode_tensors,
    load_tensors,
    save_tensors,
)

# --- random-number state --------------------------------------------------------------


def capture_rng() -> dict[str, Tensor]:
    """torch's CPU (and, where present, CUDA) random-number states, as ``uint8`` tensors."""
    states = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            states[f"cuda.{i}"] = state
    return states


def restore_rng(states: dict[str, Tensor]) -> None:
    """Set torch's random-number states from ``capture_rng``'s result."""
    if "cpu" in states:
        torch.set_rng_state(states["cpu"])
    cuda = [states[k] for k in sorted(states) if k.startswith("cuda.")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --- training state -------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A saved ``TrainState`` and the random-number state at the moment it was saved."""

    state: TrainState
    rng: dict[str, Tensor] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


def _prefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    return {f"{prefix}.{name}": t for name, t in tensors.items()}


def _unprefixed(prefix: str, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    start = len(prefix) + 1
    return {name[start:]: t for name, t in tensors.items() if name.startswith(prefix + ".")}


def _flatten_optimizer(state_dict: dict) -> tuple[dict[str, Tensor], dict]:
    """An optimizer ``state_dict`` as tensors ``"<param>.<key>"`` and JSON for the rest."""
    tensors, scalars = {}, {}
    for index, entry in state_dict["state"].items():
        for key, value in entry.items():
            if isinstance(value, Tensor):
                tensors[f"{index}.{key}"] = value
            else:
                scalars.setdefault(str(index), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, Tensor], record: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        index, key = name.split(".", 1)
        state.setdefault(int(index), {})[key] = value
    for index, entry in record["scalars"].items():
        state.setdefault(int(index), {}).update(entry)
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in record["param_groups"]
    ]
    return {"state": state, "param_groups": groups}


def _history_from_record(record: dict) -> History:
    def floats(values: list) -> list[float]:
        return [math.nan if v is None else float(v) for v in values]

    history = History.from_dict(record)
    history.train_nll = floats(history.train_nll)
    history.heldout_nll = floats(history.heldout_nll)
    history.seconds = floats(history.seconds)
    return history


def previous_path(path: str | os.PathLike) -> Path:
    """Where ``save_checkpoint`` keeps the checkpoint it replaced: ``NAME.previous.SUFFIX``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.previous{path.suffix}")


def keep_previous(path: str | os.PathLike) -> Path | None:
    """Keep the checkpoint at ``path``, if there is one and it is intact, as
    ``previous_path(path)`` (a hard link, else a copy; atomically); the path kept, or ``None``
    (nothing there, or damaged: then the previous checkpoint already kept stays)."""
    path = Path(path)
    try:
        data = read_limited(path, MAX_CHECKPOINT_BYTES, "a checkpoint", CheckpointError)
        decode_tensors(path, data, kind="train_state")
    except CheckpointError:
        return None
    previous = previous_path(path)
    tmp = temp_path(previous)
    try:
        os.link(path, tmp)
        os.replace(tmp, previous)
    except OSError:
        tmp.unlink(missing_ok=True)
        atomic_write_bytes(previous, data)
    return previous


def save_checkpoint(
    path: str | os.PathLike,
    state: TrainState,
    rng: dict[str, Tensor] | None = None,
    *,
    previous: bool = True,
) -> Path:
    """Write ``state`` and the random-number state (default: the current one) atomically.

    With ``previous`` (the default) the checkpoint it replaces, if intact, is kept as
    ``previous_path(path)`` first (``keep_previous``). ``CheckpointError`` (nothing
    written) if the file would exceed ``MAX_CHECKPOINT_BYTES``.
    """
    opt_tensors, opt_record = _flatten_optimizer(state.optimizer_state)
    tensors = {
        **_prefixed("model", state.model_state),
        **_prefixed("optimizer", opt_tensors),
        **_prefixed("rng", capture_rng() if rng is None else rng),
    }
    if state.best_model_state is not None:
        tensors.update(_prefixed("best", state.best_model_state))
    if state.training_state is not None:
        tensors.update(_prefixed("training", state.training_state))
    meta = {
        "kind": "train_state",
        "format_version": FORMAT_VERSION,
        "epoch": state.epoch,
        "step": state.step,
        "history": state.history.to_dict(),
        "optimizer": opt_record,
        "has_best": state.best_model_state is not None,
        "has_training": state.training_state is not None,
    }
    data = encode_tensors(tensors, meta)
    check_size(path, len(data), MAX_CHECKPOINT_BYTES)
    if previous:
        keep_previous(path)
    return atomic_write_bytes(path, data)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by ``save_checkpoint`` (tensors on the CPU)."""
    tensors, meta = load_tensors(path, kind="train_state")
    try:
        state = TrainState(
            epoch=int(meta["epoch"]),
            step=int(meta["step"]),
            history=_history_from_record(meta["history"]),
            model_state=_unprefixed("model", tensors),
            optimizer_state=_unflatten_optimizer(
                _unprefixed("optimizer", tensors), meta["optimizer"]
            ),
            best_model_state=_unprefixed("best", tensors) if meta["has_best"] else None,
            training_state=(_unprefixed("training", tensors) if meta.get("has_training") else None),
        )
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError, IndexError) as error:
        raise CheckpointError(f"{path} has an incomplete training record ({error!r})") from None
    return Checkpoint(state, _unprefixed("rng", tensors), meta)


# --- trained weights ------------------------------------------------------------------


def save_weights(path: str | os.PathLike, state_dict: dict[str, Tensor]) -> Path:
    """Write a model's ``state_dict`` as a plain safetensors file, atomically."""
    meta = {"kind": "weights", "format_version": FORMAT_VERSION}
    return save_tensors(path, state_dict, meta, limit=MAX_WEIGHTS_BYTES)


def load_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read weights written by ``save_weights`` (on the CPU); ``CheckpointError`` if damaged
    (anywhere), not a regular file, or over ``MAX_WEIGHTS_BYTES``."""
    return load_tensors(path, kind="weights", limit=MAX_WEIGHTS_BYTES)[0]
