"""Checks of the files and folders a command is asked to write, made before any work.

A command that would fail to write its result says so at once, in one line, rather than
after training or sampling for nothing: a file that exists (without ``--force``), a link
to a missing file, a folder that does not exist or cannot be written.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flowforge.errors import InputError


def _writable(folder: Path, flag: str, path: Path) -> None:
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(
            f"{flag} {path}: the folder {folder} is not writable; choose a folder you may write to"
        )


def check_output_file(path: Path, force: bool, suffixes: tuple[str, ...], flag: str = "-o") -> None:
    """``InputError`` unless ``path`` (ending in one of ``suffixes``) can be written: its
    folder exists and is writable, and it is no folder, no link to a missing file, and
    no existing file unless ``force``."""
    if path.suffix.lower() not in suffixes:
        names = " or ".join(suffixes)
        raise InputError(f"{flag} {path}: use a file name ending in {names}")
    if path.is_symlink() and not path.exists():
        raise InputError(f"{flag} {path} is a link to a missing file; remove it or choose another")
    if path.is_dir():
        raise InputError(f"{flag} {path} is a folder; give a file name")
    if path.exists() and not force:
        raise InputError(f"{path} already exists; choose another name or pass --force")
    parent = path.parent
    if not parent.is_dir():
        raise InputError(f"{flag} {path}: the folder {parent} does not exist")
    _writable(parent, flag, path)


def check_output_folder(folder: Path, flag: str = "--output") -> None:
    """``InputError`` for a ``folder`` that cannot be made or written: a file, a link to a
    missing folder, a path through a file, a parent that cannot be written."""
    if folder.is_symlink() and not folder.exists():
        raise InputError(
            f"{flag} {folder} is a link to a missing folder; remove it or choose another {flag}"
        )
    if folder.exists() and not folder.is_dir():
        raise InputError(f"{flag} {folder} is a file; choose another {flag}")
    existing = next(
        (p for p in (folder, *folder.parents) if p.exists() or p.is_symlink()), Path(".")
    )
    if existing.is_symlink() and not existing.exists():
        raise InputError(f"{flag} {folder}: {existing} is a link to a missing folder")
    if not existing.is_dir():
        raise InputError(f"{flag} {folder}: {existing} is a file, not a folder")
    _writable(existing, flag, folder)


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """File-system errors in the block that name no file (a failed flush of a full disk)
    re-raised naming ``path``, the file or folder being written."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror or str(error), str(path)) from None
