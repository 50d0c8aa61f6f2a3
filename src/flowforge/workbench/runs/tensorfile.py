"""One safetensors file of tensors and a JSON record, checksummed as a whole: the format of
flowforge's weights (``model.safetensors``) and checkpoints (``checkpoint.safetensors``).

The tensors are stored by ``safetensors``; the JSON record (``meta``: the file's kind,
its format version, and for a checkpoint the epoch, step, history and optimizer
settings) is a string in the header's metadata under ``"flowforge"``. The file stays a
plain safetensors file that any safetensors reader opens.

**Checksum.** The header's metadata also holds, under ``"flowforge.sha256"``, the SHA-256
of the whole file as written with that value set to 64 zeros: every byte (the header's
length, the tensors' names, dtypes, shapes and offsets, the JSON record, the padding and
the tensors' bytes) is covered. Reading checks it before anything in the file is used,
so damage anywhere, down to one flipped bit, raises ``CheckpointError``: a file loads
exactly as written or not at all. (Files of format version 1, written before, carry a
checksum of their tensors only; they are still read, with that check.)

**Reading** checks the file before reading it (``files.read_limited``): it must be a
regular file (not a folder, a FIFO, or a device behind a symbolic link) of at most
``MAX_WEIGHTS_BYTES`` (weights) or ``MAX_CHECKPOINT_BYTES`` (checkpoints); its JSON may
nest at most ``files.MAX_JSON_DEPTH`` levels. It never executes anything from the file:
the header is parsed as JSON, the tensors by ``safetensors`` (a flat byte buffer and its
dtypes and shapes). A missing, truncated or corrupt file raises ``CheckpointError``
naming the file. Writing refuses (``CheckpointError``) a file the reader would refuse
for its size.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from flowforge.errors import CheckpointError
from flowforge.workbench.files import atomic_write_bytes, json_safe, parse_json, read_limited

META_KEY = "flowforge"
CHECKSUM_KEY = "flowforge.sha256"
FORMAT_VERSION = 2  # 2: the checksum covers the whole file; 1: the tensors only
_LEGACY_VERSION = 1
_PLACEHOLDER = "0" * 64
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header
GiB = 1024**3
# The largest weights file flowforge reads (or writes): 2 GiB, half a billion float32
# parameters, far beyond any model the workbench builds.
MAX_WEIGHTS_BYTES = 2 * GiB
# The largest checkpoint: the weights, Adam's two moments, the best and the averaged
# weights (five copies of the weights), and room for the rest.
MAX_CHECKPOINT_BYTES = 6 * MAX_WEIGHTS_BYTES


def encode_tensors(tensors: dict[str, Tensor], meta: dict) -> bytes:
    """The safetensors file holding ``tensors`` (on any device) and the JSON-able ``meta``,
    with the checksum of the whole file in its header (see the module docstring). ``meta``'s
    ``format_version`` is set to this format's, ``FORMAT_VERSION``."""
    from safetensors.torch import save

    cpu = {name: t.detach().to("cpu", copy=True).contiguous() for name, t in tensors.items()}
    text = json.dumps(json_safe({**meta, "format_version": FORMAT_VERSION}), allow_nan=False)
    data = bytearray(save(cpu, metadata={META_KEY: text, CHECKSUM_KEY: _PLACEHOLDER}))
    start = _checksum_offset(data, _PLACEHOLDER)
    if start is None:
        raise AssertionError("safetensors wrote the checksum's placeholder in an unknown form")
    data[start : start + 64] = hashlib.sha256(data).hexdigest().encode()
    return bytes(data)


def save_tensors(
    path: str | os.PathLike,
    tensors: dict[str, Tensor],
    meta: dict,
    limit: int = MAX_CHECKPOINT_BYTES,
) -> Path:
    """Write ``tensors`` (on any device) and the JSON-able ``meta`` to ``path`` atomically.

    ``CheckpointError`` (and nothing written) if the file would exceed ``limit`` bytes,
    which the loader would refuse.
    """
    data = encode_tensors(tensors, meta)
    check_size(path, len(data), limit)
    return atomic_write_bytes(path, data)


def check_size(path: str | os.PathLike, size: int, limit: int) -> None:
    if size > limit:
        raise CheckpointError(
            f"{path} would be {size:,} bytes, more than flowforge reads back ({limit:,} "
            "bytes); train a smaller model"
        )


def load_tensors(
    path: str | os.PathLike, kind: str | None = None, limit: int = MAX_CHECKPOINT_BYTES
) -> tuple[dict[str, Tensor], dict]:
    """Read a file written by ``save_tensors``: ``(tensors on the CPU, meta)``.

    ``kind`` (when given) must match ``meta["kind"]``. Raises ``CheckpointError`` when
    the file is missing, not a regular file, over ``limit`` bytes, truncated, corrupt
    (anywhere: see the module docstring), or not a flowforge file of that kind.
    """
    path = Path(path)
    what = "weights" if kind == "weights" else "a checkpoint"
    data = read_limited(path, limit, what, CheckpointError)
    return decode_tensors(path, data, kind)


def decode_tensors(
    path: str | os.PathLike, data: bytes, kind: str | None = None
) -> tuple[dict[str, Tensor], dict]:
    """``load_tensors`` of the bytes ``data`` read from ``path`` (named in errors)."""
    path = Path(path)
    size, header = _read_header(path, data)
    record = _flowforge_record(path, header)
    checksum = record.get(CHECKSUM_KEY)
    if checksum is not None:
        _check_file(path, data, size, checksum)
    meta = _parse_meta(path, record, FORMAT_VERSION if checksum is not None else _LEGACY_VERSION)
    if kind is not None and meta.get("kind") != kind:
        raise CheckpointError(f"{path} holds {meta.get('kind')!r} data, expected {kind!r}")
    tensors = _parse_tensors(path, data)
    if checksum is None and meta.get("sha256") != digest(tensors):
        raise CheckpointError(f"{path} is corrupt (its tensors do not match their checksum)")
    return tensors, meta


def digest(tensors: dict[str, Tensor]) -> str:
    """SHA-256 over the names, dtypes, shapes and bytes of ``tensors`` (CPU), in name order:
    the checksum of format version 1, which covered the tensors only."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _checksum_offset(data: bytes | bytearray, value: str) -> int | None:
    """Where the 64 hex digits ``value`` of the checksum field start in the file's header,
    if the field occurs there exactly once."""
    (size,) = struct.unpack("<Q", data[:8])
    field = f'"{CHECKSUM_KEY}":"{value}"'.encode()
    start = data.find(field, 8, 8 + size)
    if start < 0 or data.find(field, start + 1, 8 + size) >= 0:
        return None
    return start + len(field) - 65


def _check_file(path: Path, data: bytes, size: int, checksum: Any) -> None:
    """``CheckpointError`` unless the file's SHA-256 (its checksum field zeroed) is ``checksum``."""
    corrupt = CheckpointError(f"{path} is corrupt (it does not match its checksum)")
    if not (isinstance(checksum, str) and len(checksum) == 64):
        raise corrupt
    start = _checksum_offset(data, checksum)
    if start is None:
        raise corrupt
    zeroed = b"".join((data[:start], _PLACEHOLDER.encode(), data[start + 64 :]))
    if hashlib.sha256(zeroed).hexdigest() != checksum:
        raise corrupt


def _read_header(path: Path, data: bytes) -> tuple[int, dict]:
    """The safetensors header's length and JSON, checked before any tensor is touched."""
    damaged = f"{path} is truncated or is not a safetensors file"
    if len(data) < 8:
        raise CheckpointError(f"{damaged} ({len(data)} bytes)")
    (size,) = struct.unpack("<Q", data[:8])
    if size > min(_MAX_HEADER, len(data) - 8):
        raise CheckpointError(f"{damaged} (its header claims {size} bytes, {len(data)} present)")
    try:
        header = parse_json(data[8 : 8 + size])
    except ValueError as error:
        raise CheckpointError(f"{damaged} (its header is not valid JSON: {error})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{damaged} (its header is not a JSON object)")
    end = _data_end(header)
    if end is not None and 8 + size + end > len(data):
        missing = 8 + size + end - len(data)
        raise CheckpointError(
            f"{path} is truncated or corrupt ({missing:,} bytes of its tensors missing)"
        )
    return size, header


def _data_end(header: dict) -> int | None:
    """Where the header says the tensors' bytes end (``None`` if it does not say clearly)."""
    ends = []
    for name, entry in header.items():
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if name != "__metadata__":
            if not (isinstance(offsets, list) and len(offsets) == 2):
                return None
            if not all(isinstance(n, int) for n in offsets):
                return None
            ends.append(offsets[1])
    return max(ends, default=0)


def _flowforge_record(path: Path, header: dict) -> dict:
    """The header's metadata, if flowforge wrote the file."""
    record = header.get("__metadata__")
    if not (isinstance(record, dict) and isinstance(record.get(META_KEY), str)):
        raise CheckpointError(f"{path} is a safetensors file, but not one written by flowforge")
    return record


def _parse_meta(path: Path, record: dict, version: int) -> dict:
    """The JSON record of a file whose checksum says it has format ``version``."""
    try:
        meta = parse_json(record[META_KEY])
    except ValueError:
        raise CheckpointError(f"{path} has a corrupt flowforge record") from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} has a corrupt flowforge record")
    if meta.get("format_version") != version:
        if version == _LEGACY_VERSION and meta.get("format_version") == FORMAT_VERSION:
            raise CheckpointError(f"{path} is corrupt (its checksum is missing)")
        raise CheckpointError(
            f"{path} has format version {meta.get('format_version')}, "
            f"this flowforge reads versions {_LEGACY_VERSION} and {FORMAT_VERSION}"
        )
    return meta


def _parse_tensors(path: Path, data: bytes) -> dict[str, Tensor]:
    from safetensors.torch import load

    try:
        return load(data)
    except Exception as error:  # safetensors raises its own error types for damaged data
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise CheckpointError(f"{path} is truncated or corrupt ({reason})") from None
