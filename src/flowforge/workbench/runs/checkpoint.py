"""Checkpoints without pickle: tensors in safetensors, everything else as JSON in its header.

A checkpoint is one ``.safetensors`` file, written atomically (``files.atomic_write_bytes``),
so a crash at any moment leaves the previous checkpoint intact. Its tensors are the
model's state, the optimizer's per-parameter state, the best weights so far and the
torch random-number state (``uint8``); the epoch, step, history and the optimizer's
parameter groups are JSON, stored in the safetensors header's metadata under the key
``"flowforge"``, with a SHA-256 checksum of the tensors so damage anywhere is caught.

Reading never executes anything from the file: the header is parsed as JSON, the
tensors by ``safetensors`` (a flat byte buffer and its dtypes and shapes). A missing,
truncated or corrupt file raises ``CheckpointError`` naming the file.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from flowforge.errors import CheckpointError
from flowforge.training.state import History, TrainState
from flowforge.workbench.files import atomic_write_bytes, json_safe

META_KEY = "flowforge"
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


# --- tensors + JSON in one safetensors file ------------------------------------------


def save_tensors(path: str | os.PathLike, tensors: dict[str, Tensor], meta: dict) -> Path:
    """Write ``tensors`` (on any device) and the JSON-able ``meta`` to ``path`` atomically."""
    from safetensors.torch import save

    cpu = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in tensors.items()}
    meta = {**meta, "sha256": digest(cpu)}
    text = json.dumps(json_safe(meta), allow_nan=False)
    return atomic_write_bytes(path, save(cpu, metadata={META_KEY: text}))


def load_tensors(
    path: str | os.PathLike, kind: str | None = None
) -> tuple[dict[str, Tensor], dict]:
    """Read a file written by ``save_tensors``: ``(tensors on the CPU, meta)``.

    ``kind`` (when given) must match ``meta["kind"]``. Raises ``CheckpointError`` when
    the file is missing, truncated, corrupt, or not a flowforge file of that kind.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path} does not exist") from None
    except OSError as error:
        raise CheckpointError(f"cannot read {path}: {error.strerror or error}") from None
    meta = _parse_meta(path, _read_header(path, data))
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{path} holds {meta.get('kind')!r} data, expected {kind!r}")
    tensors = _parse_tensors(path, data)
    if meta.get("sha256") != digest(tensors):
        raise CheckpointError(f"{path} is corrupt (its tensors do not match their checksum)")
    return tensors, meta


def digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``tensors`` (CPU), in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _read_header(path: Path, data: bytes) -> dict:
    """The safetensors JSON header, checked before any tensor is touched."""
    damaged = f"{path} is truncated or is not a safetensors file"
    if len(data) < 8:
        raise CheckpointError(f"{damaged} ({len(data)} bytes)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(_MAX_HEADER, len(data) - 8):
        raise CheckpointError(f"{damaged} (its header claims {size} bytes, {len(data)} present)")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"{damaged} (its header is not valid JSON)") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{damaged} (its header is not a JSON object)")
    return header


def _parse_meta(path: Path, header: dict) -> dict:
    text = (header.get("__metadata__") or {}).get(META_KEY)
    if not isinstance(text, str):
        raise CheckpointError(f"{path} is a safetensors file, but not one written by flowforge")
    try:
        meta = json.loads(text)
    except ValueError:
        raise CheckpointError(f"{path} has a corrupt flowforge record") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has a corrupt flowforge record")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has format version {meta.get('format_version')}, "
            f"this flowforge reads version {FORMAT_VERSION}"
        )
    return meta


def _parse_tensors(path: Path, data: bytes) -> dict[str, Tensor]:
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as error:  # safetensors raises its own error types for damaged data
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is truncated or corrupt ({reason})") from None


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


def save_checkpoint(
    path: str | os.PathLike, state: TrainState, rng: dict[str, Tensor] | None = None
) -> Path:
    """Write ``state`` and the random-number state (default: the current one) atomically."""
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
    return save_tensors(path, tensors, meta)


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
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{path} has an incomplete training record ({error!r})") from None
    return Checkpoint(state, _unprefixed("rng", tensors), meta)


# --- trained weights ------------------------------------------------------------------


def save_weights(path: str | os.PathLike, state_dict: dict[str, Tensor]) -> Path:
    """Write a model's ``state_dict`` as a plain safetensors file, atomically."""
    return save_tensors(path, state_dict, {"kind": "weights", "format_version": FORMAT_VERSION})


def load_weights(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read weights written by ``save_weights`` (on the CPU); ``CheckpointError`` if damaged."""
    return load_tensors(path, kind="weights")[0]
