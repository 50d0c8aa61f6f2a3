"""Atomic file writes, checked reads and strict JSON: a crash never leaves a half-written
file behind, and a read never hangs on, or fills memory from, a hostile file.

Every file the workbench writes goes through ``atomic_write_bytes``: the bytes go to a
temporary file ``.NAME.<12 hex digits>.tmp`` in the same folder (``temp_path``), are
flushed to disk (``fsync``), and the temporary file is renamed over the target
(``os.replace``, atomic on POSIX and Windows). A reader therefore sees either the old
file or the new one, never a mixture. A write killed before its rename leaves only its
temporary file, which ``is_temp_file`` recognizes and ``remove_temp_files`` deletes (the
run folder does so whenever a writer claims it, ``runs.claim``).

Every file the workbench reads goes through ``open_regular`` (or ``read_limited``): it
checks, before reading a byte, that the path is a regular file (not a folder, a named
pipe, a device such as ``/dev/zero`` behind a symbolic link, or a socket) of at most a
given size, and it never blocks on opening. ``parse_json`` parses JSON with a bound on
its nesting (``MAX_JSON_DEPTH``), so a nesting bomb is a ``ValueError``, not a
``RecursionError``.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

# The deepest nesting of lists and objects ``parse_json`` accepts: flowforge's own files
# nest five levels at most.
MAX_JSON_DEPTH = 64

_TEMP = re.compile(r"\.(.+)\.[0-9a-f]{12}\.tmp")


def temp_path(path: str | os.PathLike) -> Path:
    """A fresh temporary name beside ``path``: ``.NAME.<12 hex digits>.tmp``."""
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")


def is_temp_file(name: str) -> bool:
    """Whether ``name`` is a temporary file of ``atomic_write_bytes`` (``temp_path``)."""
    return _TEMP.fullmatch(name) is not None


def remove_temp_files(folder: str | os.PathLike) -> list[str]:
    """Delete the temporary files that killed writes left in ``folder``; their names.

    Call it only while no other writer works in ``folder`` (a run folder's claim).
    """
    removed = []
    for entry in os.scandir(folder):
        if is_temp_file(entry.name) and entry.is_file(follow_symlinks=False):
            Path(entry.path).unlink(missing_ok=True)
            removed.append(entry.name)
    return removed


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temp file, fsync, rename); returns the path.

    On failure the temp file is removed and the ``OSError`` names a file (``filename``).
    """
    path = Path(path)
    tmp = temp_path(path)
    # Like open(): created with mode 0o666 less the umask (tempfile would make it 0o600).
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        if error.errno is not None and error.filename is None:  # ENOSPC, EIO: name the file
            raise type(error)(error.errno, error.strerror, str(path)) from error
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_folder(path.parent)
    return path


def fsync_folder(folder: Path) -> None:
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


# --- checked reading ------------------------------------------------------------------

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe (FIFO)"),
    (stat.S_ISCHR, "a device"),
    (stat.S_ISBLK, "a device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_stat(
    path: Path, info: os.stat_result, limit: int, what: str, error: Callable[[str], Exception]
) -> None:
    """``error`` unless ``info`` is that of a regular file of at most ``limit`` bytes."""
    if not stat.S_ISREG(info.st_mode):
        kind = next((name for test, name in _KINDS if test(info.st_mode)), "not a regular file")
        via = f" (a symbolic link to {os.readlink(path)})" if path.is_symlink() else ""
        raise error(
            f"{path}{via} is {kind}, not a regular file; flowforge reads {what} only from "
            "regular files"
        )
    if info.st_size > limit:
        raise error(
            f"{path} is {info.st_size:,} bytes, more than flowforge reads as {what} "
            f"({limit:,} bytes); check that it is the right file"
        )


def open_regular(
    path: str | os.PathLike,
    limit: int,
    what: str,
    error: Callable[[str], Exception],
    missing: str | None = None,
) -> BinaryIO:
    """``path`` opened for binary reading, once it is known to be a regular file of at most
    ``limit`` bytes; else ``error(message)`` is raised without reading (or waiting).

    Symbolic links are followed, and the file opened is checked again (``fstat``), so a
    swap after the first check is caught too. ``what`` names the contents in messages
    ("weights", "a points file"); ``missing`` is the message for a path where nothing is
    (default: "PATH does not exist").
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        if path.is_symlink():
            raise error(
                f"{path} is a symbolic link to {os.readlink(path)}, which does not exist"
            ) from None
        raise error(missing or f"{path} does not exist") from None
    except OSError as failure:
        raise error(f"cannot read {path}: {failure.strerror or failure}") from None
    _check_stat(path, info, limit, what, error)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags | getattr(os, "O_CLOEXEC", 0))
    except OSError as failure:
        raise error(f"cannot read {path}: {failure.strerror or failure}") from None
    try:
        _check_stat(path, os.fstat(fd), limit, what, error)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_limited(
    path: str | os.PathLike,
    limit: int,
    what: str,
    error: Callable[[str], Exception],
    missing: str | None = None,
) -> bytes:
    """The bytes of ``path``, checked as ``open_regular`` checks it (and at most ``limit``
    of them even if the file grows while it is read)."""
    with open_regular(path, limit, what, error, missing) as file:
        try:
            data = file.read(limit + 1)
        except OSError as failure:
            raise error(f"cannot read {path}: {failure.strerror or failure}") from None
    if len(data) > limit:
        raise error(f"{path} grew past {limit:,} bytes while it was read; is it still written?")
    return data


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in the parsed JSON ``value`` (0 for a scalar),
    counted without recursion, and at most ``MAX_JSON_DEPTH + 1``."""
    deepest, stack = 0, [(value, 1)]
    while stack and deepest <= MAX_JSON_DEPTH:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            stack.extend((child, depth + 1) for child in item)
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (flowforge writes strict JSON)")


def parse_json(data: bytes | str) -> Any:
    """Parse strict JSON text; ``ValueError`` (one line) for anything but JSON nesting at
    most ``MAX_JSON_DEPTH`` levels deep: bad syntax or encoding, ``NaN`` or ``Infinity``, a
    nesting bomb, a number too long to read."""
    try:
        value = json.loads(data, parse_constant=_no_constant)
    except RecursionError:
        raise ValueError(f"it nests more than {MAX_JSON_DEPTH} levels deep") from None
    except ValueError as failure:  # UnicodeDecodeError and JSONDecodeError among them
        raise ValueError(str(failure).splitlines()[0] if str(failure) else "invalid") from None
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError(f"it nests more than {MAX_JSON_DEPTH} levels deep")
    return value


# What to do about the file-system errors a user can fix, by errno.
FILE_FIXES = {
    errno.ENOSPC: "free some space (or choose a folder on another disk) and try again",
    errno.EDQUOT: "free some space (or choose a folder on another disk) and try again",
    errno.EROFS: "the file system is read-only; choose a folder you can write to",
    errno.EACCES: "choose a file or folder you may write to, or change its permissions",
    errno.EPERM: "choose a file or folder you may write to, or change its permissions",
    errno.ENOENT: "check the path (a folder in it, or a link's target, is missing)",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "the path is a folder; give a file name",
    errno.EEXIST: "it exists already (perhaps as a link to a missing file); choose another",
}


def _target(path: str) -> str:
    """The file an atomic writer's temporary file (``.NAME.<hex>.tmp``) was to become."""
    folder, name = os.path.split(path)
    match = _TEMP.fullmatch(name)
    return os.path.join(folder, match.group(1)) if match else path


def file_error(error: OSError) -> str:
    """One line for a file-system error: the path, what the system said, what to do."""
    where = f"{_target(str(error.filename))}: " if error.filename is not None else ""
    what = error.strerror or str(error) or type(error).__name__
    fix = FILE_FIXES.get(error.errno, "check the path and the disk, and try again")
    return f"{where}{what}; {fix}"
