"""Points from and to files: ``.npy`` (never with pickle) or ``.csv``, checked on the way in.

A points file holds one point per row, ``(n, width)``. CSV files are comma-separated
numbers (UTF-8, with or without a byte-order mark); an optional first line of column names
is skipped. Reading checks the file's type and size before reading it, and never unpickles:
a ``.npy`` file is read only once its header says it holds plain numbers.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from pathlib import Path

import numpy as np

from flowforge.errors import DataFileError
from flowforge.workbench.files import atomic_write_bytes, open_regular, read_limited

FORMATS = (".npy", ".csv")
# The largest points file flowforge reads: 4 GiB (a quarter of a billion 2-D float64 points).
MAX_POINTS_BYTES = 4 * 1024**3


def _format(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise DataFileError(
            f"{path}: unsupported file type {suffix or '(none)'!r}; use a .npy or .csv file"
        )
    return suffix


def _missing(path: Path) -> str:
    return f"{path}: no such file"


def _header_line(lines: list[str]) -> int | None:
    """The index of the first non-empty line if it is not numbers (column names)."""
    for index, line in enumerate(lines):
        if line.strip():
            try:
                [float(field) for field in line.split(",")]
            except ValueError:
                return index
            return None
    return None


def _read_csv(path: Path) -> np.ndarray:
    data = read_limited(path, MAX_POINTS_BYTES, "points", DataFileError, _missing(path))
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is not part of the first row
    except UnicodeDecodeError:
        raise DataFileError(f"{path}: not a text CSV file (it is not UTF-8)") from None
    lines = text.splitlines()
    header = _header_line(lines)
    if header is not None:
        del lines[header]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            return np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as error:
        reason = str(error).splitlines()[0] if str(error) else "unreadable"
        raise DataFileError(f"{path}: not a CSV file of numbers ({reason})") from None


# What a file that is not a .npy array starts with, and what it is then.
_NOT_NPY = (
    (b"PK\x03\x04", "a zip archive (an .npz file?); save one array with numpy.save"),
    (b"PK\x05\x06", "an empty zip archive (an .npz file?); save one array with numpy.save"),
    (b"\x80", "a Python pickle, which flowforge never loads"),
)


def _npy_header(path: Path, file) -> tuple[np.dtype, tuple[int, ...], bool]:
    """The dtype, shape and order in a .npy file's header (the file left after it)."""
    start = file.read(6)
    if start != b"\x93NUMPY":
        what = next((w for magic, w in _NOT_NPY if start.startswith(magic)), None)
        raise DataFileError(f"{path}: not a .npy array ({what or 'no .npy signature'})")
    file.seek(0)
    try:
        version = np.lib.format.read_magic(file)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy format version {version}")
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else None
        read = read or np.lib.format.read_array_header_2_0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # a damaged header's escapes, say
            shape, fortran, dtype = read(file)
    except Exception as e:  # numpy's header parser (ast.literal_eval, tokenize) has many
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataFileError(f"{path}: not a readable .npy array ({reason})") from None
    if dtype.kind not in "biuf" or dtype.hasobject or dtype.fields is not None:
        pickled = ", which only pickle reads" if dtype.hasobject else ""
        raise DataFileError(
            f"{path}: not a readable .npy array of numbers (it holds {dtype} values{pickled})"
        )
    if any(n < 0 for n in shape):
        raise DataFileError(f"{path}: not a readable .npy array (shape {shape})")
    return dtype, shape, fortran


def _read_npy(path: Path) -> np.ndarray:
    """A .npy file's array, read without pickle, once its header says it holds numbers
    and its size matches the header's shape."""
    with open_regular(path, MAX_POINTS_BYTES, "points", DataFileError, _missing(path)) as file:
        dtype, shape, fortran = _npy_header(path, file)
        count = math.prod(shape)
        present = os.fstat(file.fileno()).st_size - file.tell()
        if count * dtype.itemsize != present:
            raise DataFileError(
                f"{path}: is truncated or damaged (its header announces shape {shape} of "
                f"{dtype}, {count * dtype.itemsize:,} bytes; {present:,} follow it)"
            )
        array = np.empty(count, dtype=dtype)
        if file.readinto(array.view(np.uint8)) != present:
            raise DataFileError(f"{path}: changed while it was read")
    with np.errstate(invalid="ignore", over="ignore"):  # NaN and inf are refused by the caller
        return array.reshape(shape, order="F" if fortran else "C").astype(np.float64)


def read_points(path: str | os.PathLike, width: int) -> np.ndarray:
    """The ``(n, width)`` float64 points in ``path``; ``DataFileError`` names any problem.

    Checks, before reading, that it is a regular file (not a folder, a FIFO or a device)
    of at most ``MAX_POINTS_BYTES``; then that it parses, that it is a 2-D table with ``width``
    columns and at least one row, and that every value is finite.
    """
    path = Path(path)
    kind = _format(path)
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
