"""Points written in chunks, atomically: ``flowforge sample`` in memory that does not grow with N.

``PointsWriter`` writes an ``(n, width)`` float64 table, one chunk of rows at a time, to a
temporary file beside the target (a ``.npy`` header for the final shape first, or the CSV
header line), then flushes it to disk and renames it over the target. The file is the
one ``datafiles.write_points`` writes for the whole table at once, byte for byte. A
failure at any moment (a full disk, an interrupt) removes the temporary file and leaves
any earlier file of that name as it was.
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import BinaryIO

import numpy as np

from flowforge.errors import DataFileError
from flowforge.workbench.files import fsync_folder, temp_path


def _npy_header(n: int, width: int) -> bytes:
    """The header ``numpy.save`` writes for an ``(n, width)`` C-ordered float64 array."""
    import io

    header = io.BytesIO()
    shape = {"descr": np.dtype("<f8").str, "fortran_order": False, "shape": (n, width)}
    np.lib.format.write_array_header_1_0(header, shape)
    return header.getvalue()


def _named(error: OSError, path: Path) -> OSError:
    """``error`` told of ``path`` rather than of the temporary file beside it."""
    return OSError(error.errno, error.strerror or str(error), str(path))


class PointsWriter:
    """``with PointsWriter(path, n, width) as out: out.write(chunk)`` for chunks of
    ``(rows, width)`` float64 rows that add up to ``n``; ``.npy`` or ``.csv`` by suffix.

    On a clean exit the rows must number exactly ``n`` (else ``DataFileError``) and the
    file appears at ``path`` at once; on any error the temporary file is removed.
    """

    def __init__(self, path: str | os.PathLike, n: int, width: int) -> None:
        self.path, self.n, self.width, self.rows = Path(path), int(n), int(width), 0
        self.csv = self.path.suffix.lower() == ".csv"
        self.tmp = temp_path(self.path)
        self.file: BinaryIO | None = None

    def __enter__(self) -> PointsWriter:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
        try:
            self.file = os.fdopen(os.open(self.tmp, flags, 0o666), "wb")
        except OSError as error:
            raise _named(error, self.path) from None
        try:
            if self.csv:
                self.file.write((",".join(f"x{i}" for i in range(self.width)) + "\n").encode())
            else:
                self.file.write(_npy_header(self.n, self.width))
        except OSError as error:
            self._discard()
            raise _named(error, self.path) from None
        return self

    def write(self, chunk: np.ndarray) -> None:
        """Append ``chunk`` (``(rows, width)``) to the file."""
        chunk = np.ascontiguousarray(chunk, dtype="<f8")
        if chunk.ndim != 2 or chunk.shape[1] != self.width:
            raise ValueError(f"expected rows of width {self.width}, got shape {chunk.shape}")
        try:
            if self.csv:
                np.savetxt(self.file, chunk, delimiter=",", fmt="%.17g")
            else:
                self.file.write(chunk.tobytes())
        except OSError as error:
            raise _named(error, self.path) from None
        self.rows += len(chunk)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if kind is not None:
            self._discard()
            return
        try:
            if self.rows != self.n:
                raise DataFileError(f"{self.path}: wrote {self.rows} rows, expected {self.n}")
            self.file.flush()
            os.fsync(self.file.fileno())
            self.file.close()
            os.replace(self.tmp, self.path)
        except OSError as error:
            self._discard()
            raise _named(error, self.path) from None
        except BaseException:
            self._discard()
            raise
        fsync_folder(self.path.parent)

    def _discard(self) -> None:
        if self.file is not None:
            try:
                self.file.close()
            except OSError:  # closing flushes, which fails again on a full disk
                pass
        self.tmp.unlink(missing_ok=True)
