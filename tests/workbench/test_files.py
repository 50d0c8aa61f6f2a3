import json
import math
import os
import stat

import numpy as np
import pytest

from flowforge.workbench.files import (
    MAX_JSON_DEPTH,
    atomic_write_bytes,
    atomic_write_text,
    is_temp_file,
    parse_json,
    read_limited,
    remove_temp_files,
    temp_path,
    to_json,
    write_json,
)
from tests.workbench import hostile


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


# --- issue 15 (6): checked reading and bounded JSON -------------------------------------


class Refused(ValueError):
    pass


@pytest.mark.parametrize("kind", sorted(hostile.KINDS))
def test_open_regular_refuses_what_is_not_a_small_regular_file(tmp_path, kind):
    path = hostile.make(kind, tmp_path / "thing", 1001)
    outcome = hostile.within(20, lambda: read_limited(path, 1000, "things", Refused))
    assert isinstance(outcome, Refused), outcome
    assert hostile.KINDS[kind] in str(outcome) and str(path) in str(outcome)
    assert "\n" not in str(outcome)


def test_read_limited_reads_a_regular_file_and_names_a_missing_one(tmp_path):
    path = atomic_write_bytes(tmp_path / "ok.bin", b"12345")
    assert read_limited(path, 5, "things", Refused) == b"12345"
    with pytest.raises(Refused, match="6 bytes, more than"):
        read_limited(atomic_write_bytes(path, b"123456"), 5, "things", Refused)
    with pytest.raises(Refused, match="nope does not exist"):
        read_limited(tmp_path / "nope", 5, "things", Refused)
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(Refused, match="symbolic link to .*gone, which does not exist"):
        read_limited(tmp_path / "dangling", 5, "things", Refused)


@pytest.mark.parametrize(
    "text", ["[" * 100_000, '{"a":' * 100_000, "[" * (MAX_JSON_DEPTH + 1) + "]" * 65, "NaN"]
)
def test_parse_json_refuses_nesting_bombs_and_non_numbers_in_one_line(text):
    with pytest.raises(ValueError) as info:
        parse_json(text)
    assert not isinstance(info.value, RecursionError) and "\n" not in str(info.value)


def test_parse_json_reads_what_flowforge_writes():
    value = {"a": [[[[{"b": [1, 2.5, None, "inf"]}]]]]}
    assert parse_json(to_json(value)) == value
    assert parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH) is not None


def test_temp_files_of_killed_writes_are_recognized_and_removed(tmp_path):
    keep = atomic_write_text(tmp_path / "config.json", "{}")
    stale = temp_path(tmp_path / "checkpoint.safetensors")
    stale.write_bytes(b"half a checkpoint")
    assert is_temp_file(stale.name) and not is_temp_file(keep.name)
    assert not is_temp_file(".config.json.tmp") and not is_temp_file("notes.tmp")
    assert remove_temp_files(tmp_path) == [stale.name]
    assert [p.name for p in tmp_path.iterdir()] == ["config.json"]
