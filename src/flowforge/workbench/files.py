"""Atomic file writes and strict JSON: a crash never leaves a half-written file behind.

Every file the workbench writes goes through ``atomic_write_bytes``: the bytes go to a
temporary file in the same folder, are flushed to disk (``fsync``), and the temporary
file is renamed over the target (``os.replace``, atomic on POSIX and Windows). A
reader therefore sees either the old file or the new one, never a mixture.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename); returns the path."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    # Like open(): created with mode 0o666 less the umask (tempfile would make it 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return path


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable, where the platform allows opening a folder."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(value: Any) -> Any:
    """``value`` ready for strict JSON, at any depth: NaN becomes ``None`` (no number),
    an infinity the string ``"inf"`` or ``"-inf"`` (a real result, such as the NLL of a
    point outside a uniform base's support, that ``float()`` reads back)."""
    if isinstance(value, np.generic):  # numpy scalars, such as a statistic's result
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def to_json(value: Any) -> str:
    """Strict JSON (NaN as ``null``, infinities as ``"inf"``/``"-inf"``, see ``json_safe``),
    indented for people to read."""
    return json.dumps(json_safe(value), indent=2, allow_nan=False) + "\n"


def write_json(path: str | os.PathLike, value: Any) -> Path:
    """Write ``value`` as strict JSON to ``path`` atomically."""
    return atomic_write_text(path, to_json(value))
