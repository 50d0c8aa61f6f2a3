"""Fuzz test of every file loader (issue 15): valid points files (.npy, .csv), config.json,
model.safetensors and checkpoint.safetensors are mutated (bit flips, truncations,
insertions, overwrites with random bytes, repeated chunks) thousands of times in all, and
each load must give a correct result or a one-line ``InputError`` -- never another
exception, never a hang, and never executed code (pickle is replaced by a sentinel, and
a pickled payload among the seeds would create a marker file).

``FLOWFORGE_FUZZ_ROUNDS`` (default 1,000 mutations per seed file, 8,500 loads in all,
about 15 s) sets the size: ``FLOWFORGE_FUZZ_ROUNDS=20000 pytest
tests/workbench/test_fuzz_loaders.py`` is the long run.
"""

from __future__ import annotations

import _pickle
import json
import os
import pickle
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from flowforge.errors import InputError
from flowforge.workbench.datafiles import read_points
from flowforge.workbench.runs.checkpoint import (
    load_checkpoint,
    load_weights,
    save_checkpoint,
    save_weights,
)
from flowforge.workbench.runs.config import load, write_config
from flowforge.workbench.runs.kinds import build_model
from tests.workbench.helpers import tiny_config
from tests.workbench.hostile import tiny_train_state

ROUNDS = int(os.environ.get("FLOWFORGE_FUZZ_ROUNDS", "1000"))


class Boom:
    """Unpickling this runs code: it would create the file ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One random mutation of ``data``."""
    out = bytearray(data)
    how = rng.randrange(6)
    at = rng.randrange(len(out) + 1)
    if how == 0 and out:  # flip one bit
        at = min(at, len(out) - 1)
        out[at] ^= 1 << rng.randrange(8)
    elif how == 1:  # truncate
        del out[at:]
    elif how == 2:  # insert random bytes
        out[at:at] = rng.randbytes(rng.randint(1, 16))
    elif how == 3:  # overwrite with random bytes
        n = rng.randint(1, 16)
        out[at : at + n] = rng.randbytes(n)
    elif how == 4:  # repeat a chunk
        n = rng.randint(1, 64)
        out[at:at] = out[at : at + n] * rng.randint(1, 4)
    else:  # several bit flips
        for _ in range(rng.randint(2, 8)):
            if out:
                out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


@pytest.fixture
def no_pickle(monkeypatch):
    """Every way into pickle raises (and is recorded): a load must never get there."""
    calls = []

    def sentinel(*args, **kwargs):
        calls.append(args[:1])
        raise AssertionError("pickle was called")

    class Unpickler:  # a class, so that modules imported meanwhile can still subclass it
        def __init__(self, *args, **kwargs):
            sentinel(*args)

    for module in (pickle, _pickle):
        for name in ("load", "loads"):
            monkeypatch.setattr(module, name, sentinel)
        monkeypatch.setattr(module, "Unpickler", Unpickler)
    monkeypatch.setattr(torch, "load", sentinel)
    return calls


def _points_seeds(folder: Path) -> dict[str, bytes]:
    points = np.random.default_rng(0).normal(size=(12, 2))
    seeds = {}
    for name, array in {
        "float64.npy": points,
        "int32.npy": (points * 10).astype(np.int32),
        "fortran.npy": np.asfortranarray(points.astype(">f4")),
    }.items():
        np.save(folder / name, array)
        seeds[name] = (folder / name).read_bytes()
    np.save(folder / "pickled.npy", np.array([Boom(folder / "pwned"), 1], dtype=object))
    seeds["pickled.npy"] = (folder / "pickled.npy").read_bytes()
    text = "\n".join(",".join(f"{v:.6g}" for v in row) for row in points) + "\n"
    seeds["header.csv"] = ("x0,x1\n" + text).encode()
    seeds["bom.csv"] = b"\xef\xbb\xbf" + text.encode()
    return seeds


def _run_fuzz(
    folder: Path,
    seeds: dict[str, bytes],
    target: Callable[[str], Path],
    load_it: Callable[[Path], object],
    check: Callable[[str, bytes, object], None],
    rounds: int = ROUNDS,
) -> int:
    """Mutate each seed ``rounds`` times, write it where ``target(seed name)`` says, load
    it; every exception must be a one-line ``InputError``. The number of loads."""
    rng, failures, loads = random.Random(15), [], 0
    for name, data in seeds.items():
        path = target(name)
        for round in range(rounds):
            damaged = mutate(data, rng)
            path.write_bytes(damaged)
            loads += 1
            try:
                result = load_it(path)
            except InputError as error:
                if "\n" in str(error) or not str(error):
                    failures.append((name, round, "multi-line", str(error)[:300]))
                continue
            except Exception as error:  # noqa: BLE001 -- what the fuzz test is for
                failures.append((name, round, type(error).__name__, str(error)[:300]))
                continue
            check(name, damaged, result)
    assert not (folder / "pwned").exists(), "a pickled payload ran"
    kinds = sorted({(f[0], f[2], f[3][:80]) for f in failures})
    assert not failures, f"{len(failures)} of {loads} loads failed: {kinds[:12]}"
    return loads


def test_fuzzed_points_files_load_correctly_or_give_a_one_line_error(tmp_path, no_pickle):
    seeds = _points_seeds(tmp_path)

    def check(name: str, damaged: bytes, points) -> None:
        assert points.dtype == np.float64 and points.ndim == 2 and points.shape[1] == 2
        assert np.isfinite(points).all()
        if damaged == seeds[name] and name.endswith(".npy"):
            np.testing.assert_array_equal(points, np.load(tmp_path / name))

    target = lambda name: tmp_path / f"fuzzed{Path(name).suffix}"  # noqa: E731
    loads = _run_fuzz(tmp_path, seeds, target, lambda p: read_points(p, 2), check)
    assert loads >= 6 * ROUNDS and no_pickle == []


def test_fuzzed_weights_and_checkpoints_load_exactly_or_give_a_one_line_error(tmp_path, no_pickle):
    state = tiny_train_state()
    weights = save_weights(tmp_path / "w.safetensors", state.model_state).read_bytes()
    rng = {"cpu": torch.arange(4, dtype=torch.uint8)}
    checkpoint = save_checkpoint(tmp_path / "c.safetensors", state, rng).read_bytes()
    seeds = {"model.safetensors": weights, "checkpoint.safetensors": checkpoint}

    def load_it(path: Path):
        return (load_weights if path.name == "model.safetensors" else load_checkpoint)(path)

    def check(name: str, damaged: bytes, result) -> None:
        assert damaged == seeds[name], "a damaged file loaded"  # checksummed: exact or not

    target = lambda name: tmp_path / "fuzzed" / name  # noqa: E731
    (tmp_path / "fuzzed").mkdir()
    loads = _run_fuzz(tmp_path, seeds, target, load_it, check)
    assert loads >= 2 * ROUNDS and no_pickle == []


def test_fuzzed_config_json_loads_a_run_or_gives_a_one_line_error(tmp_path, no_pickle):
    run = tmp_path / "run"
    run.mkdir()
    config = tiny_config()
    torch.manual_seed(0)
    save_weights(run / "model.safetensors", build_model(config).state_dict())
    seed = write_config(run, config).read_bytes()
    assert json.loads(seed)["format"] == "flowforge-run"

    def check(name: str, damaged: bytes, trained) -> None:
        x = torch.zeros(3, 2)
        assert trained.model.log_prob(x).shape == (3,)  # a working model, as configured

    rounds = max(ROUNDS // 2, 1)  # each load builds a model
    target = lambda name: run / "config.json"  # noqa: E731
    loads = _run_fuzz(tmp_path, {"config.json": seed}, target, lambda p: load(run), check, rounds)
    assert loads == rounds and no_pickle == []
