import json
import math
import os
import stat

import numpy as np
import pytest

from flowforge.workbench.files import atomic_write_bytes, atomic_write_text, to_json, write_json


def test_an_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "a.txt"
    atomic_write_text(path, "old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_files_get_the_usual_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        path = atomic_write_bytes(tmp_path / "b.bin", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_an_interrupted_write_keeps_the_old_content(tmp_path, monkeypatch):
    path = tmp_path / "c.txt"
    atomic_write_text(path, "kept")

    def crash(fd):
        raise KeyboardInterrupt

    monkeypatch.setattr("flowforge.workbench.files.os.fsync", crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_text(path, "lost")
    assert path.read_text() == "kept"
    assert [p.name for p in tmp_path.iterdir()] == ["c.txt"]


def test_json_is_strict_with_nan_as_null_and_infinities_as_strings(tmp_path):
    value = {"a": [1.0, float("nan")], "b": {"c": float("-inf"), 3: float("inf")}, "d": (2, 3)}
    back = json.loads(to_json(value))
    assert back == {"a": [1.0, None], "b": {"c": "-inf", "3": "inf"}, "d": [2, 3]}
    assert float(back["b"]["c"]) == -math.inf  # what float() reads back
    assert json.loads(to_json([np.float64(0.5), np.int64(3), np.float32("nan")])) == [0.5, 3, None]
    path = write_json(tmp_path / "v.json", value)
    assert "NaN" not in path.read_text() and "Infinity" not in path.read_text()
