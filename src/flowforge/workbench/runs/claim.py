"""Claiming a run folder: one writer at a time, and run names that never collide.

A process that writes a run folder (``start_run`` for a new run, ``train_run`` for one
it trains or resumes) first claims it: it takes an exclusive, non-blocking lock
(``flock``; ``msvcrt.locking`` on Windows) on the folder's ``.flowforge.lock`` file,
and holds it until it is done. The lock file records who holds it (process id, host,
time) for the messages; the lock itself is the operating system's, so it is released
the moment its process ends, however it ends (even by SIGKILL), and can never be left
stale. A second writer is refused at once with a one-line ``RunError`` naming the
process that holds the folder; a lock file whose writer is gone (it still names one) is
reported as such, with how to continue the run (``flowforge train --resume``).

Under the claim, and only then, the temporary files that killed writes left behind
(``files.remove_temp_files``) are deleted: a folder that holds nothing but those (and
the lock file) counts as empty. ``claim_new_run`` makes a fresh folder for a run with no
name given (``runs/<date-time>``, then ``-2``, ``-3``, ...) with ``os.mkdir``, which
fails for all but one of any number of processes or threads asking for the same name.
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from flowforge.errors import RunError
from flowforge.workbench.files import is_temp_file, remove_temp_files

LOCK = ".flowforge.lock"

try:  # POSIX
    import fcntl

    def _lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

except ImportError:  # Windows
    import msvcrt

    def _lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True


@dataclass
class Claim:
    """A held claim on ``folder``: the open, locked lock file ``fd``. ``created``: the
    folder was made by this claim (or ``claim_new_run``); ``fresh``: ``start_run`` made
    the run under it, so a start that fails is undone (``runs.experiment``)."""

    folder: Path
    fd: int
    previous_holder: str  # what the lock file said before: a writer gone, or ""
    created: bool = False
    fresh: bool = False

    def release(self) -> None:
        """Clear the holder's record and let go of the lock (closing the file does)."""
        if self.fd < 0:
            return
        try:
            os.ftruncate(self.fd, 0)
        except OSError:
            pass
        os.close(self.fd)
        self.fd = -1
        with _GUARD:
            if _HELD.get(_key(self.folder)) is self:
                del _HELD[_key(self.folder)]


_HELD: dict[str, Claim] = {}  # this process's claims, by folder
_CREATED: set[str] = set()  # folders claim_new_run made in this process
_GUARD = threading.Lock()


def _key(folder: Path) -> str:
    return os.path.realpath(folder)


def _holder() -> str:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    return f"process {os.getpid()} on {socket.gethostname()} since {stamp}"


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 512).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _write_holder(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode())


def claim(folder: str | os.PathLike) -> Claim:
    """Lock the existing folder ``folder`` for this process's writes; ``RunError`` (one
    line) if another writer holds it or it cannot be locked. Temp files of killed writes
    in it are then deleted. Release it with ``Claim.release``."""
    folder = Path(folder)
    try:
        fd = os.open(folder / LOCK, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError as error:
        raise RunError(
            f"cannot write in {folder} ({error.strerror or error}); choose another --output"
        ) from None
    if not _lock(fd):
        holder = _read_holder(fd) or "another process"
        os.close(fd)
        raise RunError(
            f"{folder} is in use: {holder} is writing it; wait for it to finish, or choose "
            "another --output"
        )
    previous = _read_holder(fd)
    try:
        _write_holder(fd, _holder() + "\n")
        remove_temp_files(folder)
    except OSError as error:
        os.close(fd)
        raise RunError(f"cannot write in {folder} ({error.strerror or error})") from None
    return Claim(folder, fd, previous, created=_key(folder) in _CREATED)


def claim_for_new_run(folder: str | os.PathLike, config_name: str) -> Claim:
    """Claim ``folder`` for a new run: made if missing (with its parents), else it must be
    empty but for temp files of killed writes and a lock file. ``RunError`` (one line)
    for a file, a folder holding anything else (a run: how to continue it), a folder in
    use, or one that cannot be made."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunError(f"{folder} is a file; choose another --output")
    created = False
    if not folder.exists():
        try:
            folder.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise RunError(
                f"cannot make {folder.parent} ({error.strerror or error}); choose another --output"
            ) from None
        try:
            os.mkdir(folder)
            created = True
        except FileExistsError:
            pass  # made meanwhile by another writer (or a dangling link): the lock decides
        except OSError as error:
            raise RunError(
                f"cannot make {folder} ({error.strerror or error}); choose another --output"
            ) from None
    held = claim(folder)
    held.created = held.created or created
    try:
        _check_empty(folder, config_name, held.previous_holder)
    except BaseException:
        held.release()
        raise
    return held


def _check_empty(folder: Path, config_name: str, previous_holder: str) -> None:
    found = contents(folder)
    if config_name in found:
        gone = f" (its writer, {previous_holder}, stopped)" if previous_holder else ""
        raise RunError(
            f"{folder} already holds a run{gone}; continue it with "
            f"`flowforge train --resume {folder}` or choose another --output"
        )
    if found:
        raise RunError(f"{folder} exists and is not empty; choose another --output")


def undo_start(held: Claim, written: list[str]) -> None:
    """Remove what a failed start wrote (the files ``written``) and temp files, and the
    folder if the start made it and nothing else is in it; then release the claim."""
    try:
        for name in written:
            (held.folder / name).unlink(missing_ok=True)
        remove_temp_files(held.folder)
        if held.created and not contents(held.folder):
            (held.folder / LOCK).unlink(missing_ok=True)
            held.folder.rmdir()
    except OSError:
        pass  # what is left is a folder start_run accepts again
    finally:
        held.release()


def contents(folder: Path) -> list[str]:
    """What ``folder`` holds besides the lock file and temp files of killed writes."""
    return sorted(
        entry.name
        for entry in os.scandir(folder)
        if entry.name != LOCK and not is_temp_file(entry.name)
    )


def keep(held: Claim) -> None:
    """Keep ``held`` for this process until a writer here takes it (``take``)."""
    with _GUARD:
        _HELD[_key(held.folder)] = held


def take(folder: str | os.PathLike) -> Claim:
    """The claim this process keeps on ``folder`` (``start_run``'s), else a new one."""
    with _GUARD:
        held = _HELD.pop(_key(Path(folder)), None)
    return held if held is not None else claim(folder)


def release_run(folder: str | os.PathLike) -> None:
    """Let go of the claim ``start_run`` left this process on ``folder``, if any (for a
    caller that starts a run it will not train here)."""
    with _GUARD:
        held = _HELD.pop(_key(Path(folder)), None)
    if held is not None:
        held.release()


def claim_new_run(base: str | os.PathLike) -> Path:
    """A new, empty folder named ``base``, else ``base-2``, ``base-3``, ...: the first
    that did not exist, made with ``os.mkdir`` (atomic: of any number of processes or
    threads asking at once, each gets a folder of its own). Its parents are made too.

    ``flowforge train`` without ``--output`` passes ``runs/<date-time>`` here, then gives
    the folder to ``start_run``.
    """
    base = Path(base)
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise RunError(f"cannot make {base.parent} ({error.strerror or error})") from None
    for n in itertools.count(1):
        folder = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            os.mkdir(folder)
        except FileExistsError:
            continue
        except OSError as error:
            raise RunError(f"cannot make {folder} ({error.strerror or error})") from None
        with _GUARD:
            _CREATED.add(_key(folder))
        return folder
    raise AssertionError("unreachable")
