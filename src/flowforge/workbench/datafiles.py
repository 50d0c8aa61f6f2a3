"""Points from and to files: ``.npy`` (never with pickle) or ``.csv``, checked on the way in.

A points file holds one point per row, ``(n, width)``. CSV files are comma-separated
numbers; an optional first line of column names is skipped.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import numpy as np

from flowforge.errors import DataFileError
from flowforge.workbench.files import atomic_write_bytes

FORMATS = (".npy", ".csv")


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataFileError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use a .npy or .csv file"
        )
    return suffix


def _has_header(path: Path) -> bool:
    """Whether the first non-empty line of a CSV file is not numbers (column names)."""
    with open(path, encoding="utf-8") as file:
        for line in file:
            if line.strip():
                try:
                    [float(field) for field in line.split(",")]
                except ValueError:
                    return True
                return False
    return False


def _read_csv(path: Path) -> np.ndarray:
    try:
        skip = 1 if _has_header(path) else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            return np.loadtxt(path, delimiter=",", ndmin=2, skiprows=skip, dtype=np.float64)
    except UnicodeDecodeError:
        raise DataFileError(f"{path}: not a text CSV file") from None
    except ValueError as error:
        raise DataFileError(f"{path}: not a CSV file of numbers ({error})") from None


def _read_npy(path: Path) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as error:  # object arrays (which need pickle) land here too
        raise DataFileError(f"{path}: not a readable .npy array of numbers ({error})") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise DataFileError(f"{path}: holds {array.dtype} values, expected numbers")
    return array.astype(np.float64)


def read_points(path: str | os.PathLike, width: int) -> np.ndarray:
    """The ``(n, width)`` float64 points in ``path``; ``DataFileError`` names any problem.

    Checks that the file exists and parses, that it is a 2-D table with ``width``
    columns and at least one row, and that every value is finite.
    """
    path = Path(path)
    kind = _format(path)
    if not path.is_file():
        raise DataFileError(f"{path}: no such file")
    try:
        points = _read_npy(path) if kind == ".npy" else _read_csv(path)
    except OSError as error:
        raise DataFileError(f"{path}: cannot read it ({error.strerror or error})") from None
    check_points_array(points, width, path)
    return points


def check_points_array(points: np.ndarray, width: int, source: str | os.PathLike) -> None:
    """Raise ``DataFileError`` unless ``points`` is ``(n >= 1, width)`` with finite values."""
    if points.size == 0:
        raise DataFileError(f"{source}: has no points")
    if points.ndim != 2 or points.shape[1] != width:
        columns = points.shape[1] if points.ndim == 2 else f"shape {points.shape}"
        raise DataFileError(
            f"{source}: expected {width} columns (one point per row), got {columns}; "
            f"the model was trained on {width}-dimensional points"
        )
    bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
    if bad.size:
        raise DataFileError(
            f"{source}: {bad.size} row(s) hold NaN or infinite values (first: row {bad[0]}); "
            "remove them and try again"
        )


def write_points(path: str | os.PathLike, points: np.ndarray, *, force: bool = False) -> Path:
    """Write ``(n, width)`` points as ``.npy`` or ``.csv`` (with a header), atomically.

    Refuses to replace an existing file unless ``force``.
    """
    path = Path(path)
    kind = _format(path)
    if path.exists() and not force:
        raise DataFileError(f"{path} already exists; choose another name or pass --force")
    if not path.parent.is_dir():
        raise DataFileError(f"{path}: the folder {path.parent} does not exist")
    buffer = io.BytesIO()
    if kind == ".npy":
        np.save(buffer, np.ascontiguousarray(points), allow_pickle=False)
    else:
        header = ",".join(f"x{i}" for i in range(points.shape[1]))
        np.savetxt(buffer, points, delimiter=",", header=header, comments="", fmt="%.17g")
    return atomic_write_bytes(path, buffer.getvalue())
