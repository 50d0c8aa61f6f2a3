import json
import shutil

import pytest
import torch

from flowforge import load
from flowforge.workbench.cli.main import cpu_threads
from flowforge.workbench.data import Standardization
from flowforge.workbench.runs.checkpoint import MAX_WEIGHTS_BYTES, CheckpointError
from flowforge.workbench.runs.config import (
    MAX_JSON_BYTES,
    RunConfig,
    RunError,
    read_config,
    read_metrics,
)
from flowforge.workbench.runs.experiment import start_run, train_run
from tests.workbench import hostile
from tests.workbench.helpers import tiny_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = start_run(tmp_path_factory.mktemp("runs") / "r", tiny_config())
    with cpu_threads():  # as the command line runs it: one thread, no stalls on a busy machine
        outcome = train_run(folder, progress=False)
    return folder, outcome


def test_load_gives_back_the_trained_model_and_its_standardization(run):
    folder, outcome = run
    model, standardization = load(folder)
    assert standardization == tiny_config().standardization
    assert not model.training
    x = torch.randn(64, 2)
    torch.testing.assert_close(model.log_prob(x), outcome.model.log_prob(x), rtol=0, atol=0)


def test_the_config_round_trips_through_json(run):
    folder, _ = run
    assert read_config(folder) == tiny_config()
    assert json.loads((folder / "config.json").read_text())["format"] == "flowforge-run"


def test_a_config_from_before_the_weight_average_resumes_without_one(run):
    folder, _ = run
    record = json.loads((folder / "config.json").read_text())
    del record["recipe"]["ema"]
    assert RunConfig.from_dict(record).recipe == {**tiny_config().recipe, "ema": 0.0}


def test_a_new_run_never_reuses_a_folder_with_files(run, tmp_path):
    folder, _ = run
    with pytest.raises(RunError, match="already holds a run"):
        start_run(folder, tiny_config())
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(RunError, match="exists and is not empty"):
        start_run(tmp_path, tiny_config())
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_load_explains_what_is_wrong(run, tmp_path):
    folder, _ = run
    with pytest.raises(RunError, match="no such run folder"):
        load(tmp_path / "missing")
    with pytest.raises(RunError, match="not a flowforge run folder"):
        load(tmp_path)
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    config = json.loads((bad / "config.json").read_text())
    config["model"]["options"]["hidden"] = 9
    (bad / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="does not fit the model in config.json"):
        load(bad)
    (bad / "config.json").write_text("{not json")
    with pytest.raises(RunError, match="cannot be read as JSON"):
        load(bad)
    (bad / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(RunError, match="format version 99"):
        load(bad)


def test_load_refuses_damaged_weights(run, tmp_path):
    folder, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "model.safetensors").write_bytes(b"\x00" * 10)
    with pytest.raises(CheckpointError, match="model.safetensors is truncated"):
        load(copy)


def test_changed_data_is_detected_before_resuming(run, tmp_path):
    folder, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    other = Standardization((0.0, 0.0), (1.0, 1.0))
    config = json.loads((copy / "config.json").read_text())
    config["standardization"] = other.to_dict()
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(RunError, match="data regenerated from the config differs"):
        train_run(copy, progress=False)


# --- issue 15 (6): run files are checked before they are read ----------------------------


@pytest.mark.parametrize("kind", sorted(hostile.KINDS))
@pytest.mark.parametrize("name", ["config.json", "metrics.json", "model.safetensors"])
def test_hostile_run_files_are_refused_before_reading(run, tmp_path, name, kind):
    folder, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / name).unlink()
    size = {"model.safetensors": MAX_WEIGHTS_BYTES}.get(name, MAX_JSON_BYTES) + 1
    hostile.make(kind, copy / name, size)
    read = read_metrics if name == "metrics.json" else load
    outcome = hostile.within(30, lambda: read(copy))
    assert isinstance(outcome, RunError | CheckpointError), repr(outcome)
    assert hostile.KINDS[kind] in str(outcome) and name in str(outcome)
    assert "\n" not in str(outcome)


@pytest.mark.parametrize("bomb", ["[" * 100_000, '{"a":' * 100_000])
def test_a_json_nesting_bomb_in_config_json_is_a_one_line_error(run, tmp_path, bomb):
    folder, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    (copy / "config.json").write_text(bomb)
    with pytest.raises(RunError, match="config.json cannot be read as JSON .*nests more than"):
        load(copy)
