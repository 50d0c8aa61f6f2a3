import builtins
import copy
import pickle

import pytest
import torch

from flowforge import fit, realnvp
from flowforge.workbench.data import two_moons_splits
from flowforge.workbench.runs.checkpoint import (
    MAX_CHECKPOINT_BYTES,
    MAX_WEIGHTS_BYTES,
    CheckpointError,
    capture_rng,
    load_checkpoint,
    load_tensors,
    load_weights,
    previous_path,
    restore_rng,
    save_checkpoint,
    save_tensors,
    save_weights,
)
from tests.workbench import hostile

KW = dict(epochs=3, batch_size=100, lr=1e-2, ema=0.9, progress=False, seed=4)


@pytest.fixture(scope="module")
def data():
    train, heldout = two_moons_splits(600, 200, seed=1)
    return train.points, heldout.points


@pytest.fixture(scope="module")
def run_states(data):
    """A 3-epoch fit with an early-stopping record, and the TrainState after every epoch."""
    torch.manual_seed(0)
    model = realnvp(2)
    states = []
    fit(
        model,
        data[0],
        validation=data[1],
        callbacks=[lambda s: states.append(copy.deepcopy(s))],
        **KW,
    )
    return model, states


def assert_same_tensors(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert a[name].dtype == b[name].dtype and torch.equal(a[name], b[name]), name


def test_a_checkpoint_holds_the_whole_training_state(run_states, tmp_path):
    _, states = run_states
    state = states[1]
    path = save_checkpoint(tmp_path / "ck.safetensors", state)
    loaded = load_checkpoint(path).state
    assert (loaded.epoch, loaded.step) == (state.epoch, state.step) == (2, 12)
    assert loaded.history == state.history
    assert_same_tensors(loaded.model_state, state.model_state)
    assert_same_tensors(loaded.best_model_state, state.best_model_state)
    assert_same_tensors(loaded.training_state, state.training_state)  # the iterates (ema)
    original = state.optimizer_state
    assert loaded.optimizer_state["param_groups"] == original["param_groups"]
    assert loaded.optimizer_state["state"].keys() == original["state"].keys()
    for index, entry in original["state"].items():
        assert_same_tensors(loaded.optimizer_state["state"][index], entry)


def test_training_resumed_from_a_file_equals_an_uninterrupted_run(run_states, data, tmp_path):
    finished, states = run_states
    path = save_checkpoint(tmp_path / "ck.safetensors", states[0])
    resumed = realnvp(2)  # different initial weights: the checkpoint must overwrite them
    fit(resumed, data[0], validation=data[1], resume=load_checkpoint(path).state, **KW)
    assert_same_tensors(resumed.state_dict(), finished.state_dict())


def test_the_random_number_state_is_saved_and_restored(run_states, tmp_path):
    _, states = run_states
    torch.manual_seed(11)
    path = save_checkpoint(tmp_path / "ck.safetensors", states[0])  # captures the RNG now
    expected = torch.rand(5)
    torch.manual_seed(99)
    checkpoint = load_checkpoint(path)
    assert checkpoint.rng["cpu"].dtype == torch.uint8
    restore_rng(checkpoint.rng)
    assert torch.equal(torch.rand(5), expected)
    restore_rng(capture_rng())  # a round trip through capture is the identity
    torch.rand(1)


def test_weights_round_trip_exactly_and_are_plain_safetensors(tmp_path):
    from safetensors.torch import load_file

    weights = {
        "a": torch.randn(3, 4),
        "b": torch.arange(5),
        "c": torch.tensor(2.5, dtype=torch.float64),
    }
    path = save_weights(tmp_path / "w.safetensors", weights)
    assert_same_tensors(load_weights(path), weights)
    assert_same_tensors(load_file(path), weights)  # any safetensors reader can open it


def test_a_checkpoint_is_not_accepted_as_weights(run_states, tmp_path):
    path = save_checkpoint(tmp_path / "ck.safetensors", run_states[1][0])
    with pytest.raises(CheckpointError, match="holds 'train_state' data, expected 'weights'"):
        load_weights(path)


def _damaged(path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "empty":
        data = bytearray()
    elif how == "half":
        data = data[: len(data) // 2]
    elif how == "last-byte":
        data = data[:-1]
    elif how == "header-byte":
        data[20] ^= 0x55
    elif how == "tensor-byte":
        data[-7] ^= 0x01
    elif how == "size":
        data[:8] = (10**12).to_bytes(8, "little")
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "how", ["empty", "half", "last-byte", "header-byte", "tensor-byte", "size"]
)
def test_a_damaged_file_raises_an_error_naming_it(run_states, tmp_path, how):
    path = save_checkpoint(tmp_path / "ck.safetensors", run_states[1][2])
    _damaged(path, how)
    with pytest.raises(CheckpointError, match=str(path)) as info:
        load_checkpoint(path)
    assert "truncated" in str(info.value) or "corrupt" in str(info.value)


def test_a_missing_file_raises_an_error_naming_it(tmp_path):
    with pytest.raises(CheckpointError, match=f"{tmp_path / 'nope.safetensors'} does not exist"):
        load_weights(tmp_path / "nope.safetensors")


def test_a_foreign_safetensors_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.ones(2)}, path)
    with pytest.raises(CheckpointError, match="not one written by flowforge"):
        load_weights(path)


class Boom:
    """Unpickling this runs code: it would create the file ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_pickle_is_refused_without_running_it(tmp_path, writer):
    marker = tmp_path / "pwned"
    path = tmp_path / "model.safetensors"
    payload = {"weight": torch.ones(2), "boom": Boom(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        load_weights(path)
    assert not marker.exists()


def test_loading_never_calls_pickle(run_states, tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "ck.safetensors", run_states[1][1])

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was called while loading")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    monkeypatch.setattr(torch, "load", forbidden)
    real_import = builtins.__import__
    monkeypatch.setattr(
        builtins,
        "__import__",
        lambda name, *a, **k: (
            forbidden() if name in ("_pickle", "dill") else real_import(name, *a, **k)
        ),
    )
    assert load_checkpoint(path).state.epoch == 2


def test_a_failed_write_keeps_the_previous_file(run_states, tmp_path, monkeypatch):
    _, states = run_states
    path = save_checkpoint(tmp_path / "ck.safetensors", states[0])
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("flowforge.workbench.files.os.replace", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, states[2])
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ck.safetensors"]  # no temp file left


def test_metadata_survives_with_non_finite_numbers(tmp_path):
    path = save_tensors(
        tmp_path / "t.safetensors",
        {"x": torch.zeros(1)},
        {"kind": "test", "format_version": 1, "values": [1.5, float("nan"), float("inf")]},
    )
    tensors, meta = load_tensors(path, kind="test")
    assert meta["values"] == [1.5, None, "inf"]
    assert torch.equal(tensors["x"], torch.zeros(1))


# --- issue 15 (3): the whole file is checksummed; the previous good checkpoint is kept ----


_tiny_state = hostile.tiny_train_state


RNG = {"cpu": torch.arange(4, dtype=torch.uint8)}


def _flips(data: bytes):
    for bit in range(len(data) * 8):
        damaged = bytearray(data)
        damaged[bit // 8] ^= 1 << (bit % 8)
        yield bit, bytes(damaged)


@pytest.mark.parametrize("kind", ["checkpoint", "weights"])
def test_every_single_bit_flip_anywhere_is_refused(tmp_path, kind):
    """Issue 15 (3): the epoch, step, history and Adam's settings are in the checksum too
    (before, about 1 in 60 flips of a checkpoint loaded a different state)."""
    state = _tiny_state()
    path = tmp_path / f"{kind}.safetensors"
    if kind == "checkpoint":
        save_checkpoint(path, state, RNG)
        load = load_checkpoint
    else:
        save_weights(path, state.model_state)
        load = load_weights
    data, damaged_path = path.read_bytes(), tmp_path / "damaged.safetensors"
    loaded = []
    for bit, damaged in _flips(data):
        damaged_path.write_bytes(damaged)
        try:
            load(damaged_path)
        except CheckpointError as error:
            assert "\n" not in str(error) and str(damaged_path) in str(error), bit
        else:
            loaded.append(bit)
    assert loaded == [], f"{len(loaded)} of {len(data) * 8} flips loaded, first at bit {loaded[0]}"
    assert load(path) is not None  # the original still loads


def _epoch(path) -> int:
    return load_checkpoint(path).state.epoch


def test_the_previous_good_checkpoint_is_kept_and_a_damaged_one_never_replaces_it(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    previous = previous_path(path)
    assert previous.name == "checkpoint.previous.safetensors"
    save_checkpoint(path, _tiny_state(1), RNG)
    assert not previous.exists()
    save_checkpoint(path, _tiny_state(2), RNG)
    assert (_epoch(path), _epoch(previous)) == (2, 1)
    _damaged(path, "tensor-byte")  # damage on disk: it must not become the previous one
    save_checkpoint(path, _tiny_state(3), RNG)
    assert (_epoch(path), _epoch(previous)) == (3, 1)
    save_checkpoint(path, _tiny_state(4), RNG)
    assert (_epoch(path), _epoch(previous)) == (4, 3)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([path.name, previous.name])


def test_resuming_from_a_damaged_checkpoint_names_the_previous_good_one(tmp_path):
    from flowforge.workbench.runs.experiment import read_checkpoint

    path = tmp_path / "checkpoint.safetensors"
    save_checkpoint(path, _tiny_state(1), RNG)
    _damaged(path, "header-byte")
    with pytest.raises(CheckpointError, match="no earlier checkpoint is kept") as info:
        read_checkpoint(tmp_path)
    assert "\n" not in str(info.value)
    save_checkpoint(path, _tiny_state(2), RNG)
    save_checkpoint(path, _tiny_state(3), RNG)
    _damaged(path, "tensor-byte")
    with pytest.raises(CheckpointError, match=r"previous good checkpoint \(epoch 2\)") as info:
        read_checkpoint(tmp_path)
    assert "flowforge train --resume" in str(info.value) and "\n" not in str(info.value)
    previous_path(path).replace(path)  # what the message says to do
    assert read_checkpoint(tmp_path).state.epoch == 2


# --- issue 15 (6): checked before reading; JSON bombs ----------------------------------


@pytest.mark.parametrize("kind", sorted(hostile.KINDS))
@pytest.mark.parametrize("what", ["weights", "checkpoint"])
def test_hostile_files_are_refused_before_reading(tmp_path, what, kind):
    limit = MAX_WEIGHTS_BYTES if what == "weights" else MAX_CHECKPOINT_BYTES
    path = hostile.make(kind, tmp_path / f"{what}.safetensors", limit + 1)
    load = load_weights if what == "weights" else load_checkpoint
    outcome = hostile.within(30, lambda: load(path))
    assert isinstance(outcome, CheckpointError), repr(outcome)
    assert hostile.KINDS[kind] in str(outcome) and str(path) in str(outcome)
    assert "\n" not in str(outcome)


def test_a_json_nesting_bomb_in_the_safetensors_header_is_a_one_line_error(tmp_path):
    header = b"[" * 100_000
    path = tmp_path / "bomb.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header)
    with pytest.raises(CheckpointError, match="its header is not valid JSON: it nests more"):
        load_weights(path)


def test_a_file_too_large_to_read_back_is_not_written(tmp_path, monkeypatch):
    monkeypatch.setattr("flowforge.workbench.runs.checkpoint.MAX_WEIGHTS_BYTES", 100)
    with pytest.raises(CheckpointError, match="more than flowforge reads back"):
        save_weights(tmp_path / "w.safetensors", {"w": torch.zeros(100)})
    assert list(tmp_path.iterdir()) == []
