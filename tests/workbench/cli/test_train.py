import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import flowforge
from flowforge import load, mean_nll
from flowforge.training import DEFAULT_RECIPE
from flowforge.workbench.cli.main import build_parser, main
from flowforge.workbench.cli.train import new_run
from flowforge.workbench.data import two_moons_splits
from flowforge.workbench.figures.runs import FIGURES
from flowforge.workbench.runs.checkpoint import load_checkpoint, load_weights
from tests.workbench.helpers import TINY, pixel_spread

RUN_FILES = {"config.json", "model.safetensors", "checkpoint.safetensors", "metrics.json"}
RUN_FILES |= {"report.html", *FIGURES}


def subprocess_env() -> dict:
    """The environment for ``python -m flowforge`` to import this checkout's flowforge."""
    src = str(Path(flowforge.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def test_train_writes_a_complete_run_folder(tiny_run):
    assert RUN_FILES <= {p.name for p in tiny_run.iterdir()}
    assert not [p.name for p in tiny_run.iterdir() if p.name.endswith(".tmp")]
    for name in FIGURES:
        assert pixel_spread(tiny_run / name) > 0.05, name
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert len(metrics["train_nll"]) == len(metrics["heldout_nll"]) == metrics["epochs"] == 2
    assert metrics["parameters"] == 1352  # the notebook's model: 4 couplings, hidden 16
    assert {"flowforge", "torch", "numpy", "python"} <= set(metrics["versions"])
    assert metrics["wall_seconds"] > 0 and len(metrics["epoch_seconds"]) == 2


def test_the_reported_heldout_nll_is_that_of_the_saved_model(tiny_run):
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    model, standardization = load(tiny_run)
    _, heldout = two_moons_splits(1500, 500, noise=0.1, seed=0)  # the data the run names
    assert standardization == heldout.standardization
    assert metrics["heldout"]["nll"] == pytest.approx(
        mean_nll(model, heldout.points).mean,
        abs=1e-6,  # trained on a GPU, scored on the CPU
    )
    assert metrics["heldout_nll"][-1] == pytest.approx(metrics["heldout"]["nll"], abs=1e-9)


def test_train_prints_and_records_the_gap_to_the_true_entropy(tmp_path, capsys):
    assert main(["train", *TINY, "--quiet", "--output", str(tmp_path / "r")]) == 0
    out = capsys.readouterr().out
    heldout = json.loads((tmp_path / "r" / "metrics.json").read_text())["heldout"]
    assert heldout["gap_to_entropy"] == pytest.approx(heldout["nll"] - heldout["true_entropy"])
    assert heldout["kl_paired"] > 0  # two epochs: far from the truth
    line = f"gap to the true entropy H = {heldout['true_entropy']:.4f}"
    assert line in out and f"{heldout['gap_to_entropy']:.4f}" in out
    assert "KL(truth ‖ model), paired" in (tmp_path / "r" / "report.html").read_text()


def test_defaults_are_the_notebooks_experiment_with_the_default_recipe():
    config = new_run(build_parser().parse_args(["train"])).config
    assert config.model == "realnvp"
    assert config.model_options == {"width": 2, "couplings": 4, "hidden": 16, "base": "normal"}
    assert config.data == {
        "name": "two_moons",
        "n_samples": 100_000,
        "n_heldout": 20_000,
        "noise": 0.1,
    }
    assert config.recipe == {**DEFAULT_RECIPE.to_dict(), "shuffle": True}


def test_the_notebooks_exact_recipe_can_be_spelled():
    argv = ["train", "--batch-size", "128", "--lr", "1e-3", "--epochs", "100"]
    argv += ["--schedule", "constant", "--warmup", "0", "--no-shuffle", "--n-samples", "200"]
    argv += ["--ema", "0"]
    recipe = new_run(build_parser().parse_args(argv)).config.recipe
    assert recipe["batch_size"] == 128 and recipe["lr"] == 1e-3 and recipe["epochs"] == 100
    assert recipe["schedule"] == "constant" and recipe["shuffle"] is False
    assert recipe["warmup"] == 0 and recipe["ema"] == 0


def test_an_existing_run_is_never_overwritten(tiny_run, capsys):
    before = (tiny_run / "model.safetensors").read_bytes()
    assert main(["train", *TINY, "--quiet", "--output", str(tiny_run)]) == 2
    err = capsys.readouterr().err
    assert "already holds a run" in err and "--resume" in err
    assert (tiny_run / "model.safetensors").read_bytes() == before


@pytest.mark.parametrize(
    "argv, expected",
    [
        pytest.param(["--epochs", "0"], "--epochs: must be at least 1", id="zero-epochs"),
        pytest.param(["--lr", "-1"], "--lr: must be greater than 0", id="negative-lr"),
        pytest.param(["--ema", "1"], "--ema: must be at least 0 and below 1", id="ema-one"),
        pytest.param(["--noise", "nan"], "finite number", id="nan-noise"),
        pytest.param(["--base", "cauchy"], "invalid choice: 'cauchy'", id="unknown-base"),
        pytest.param(["--batch-size", "x"], "expected an integer", id="not-a-number"),
        pytest.param(["--device", "tpu"], "unknown device 'tpu'", id="unknown-device"),
        pytest.param(["--resume", "no/such/run"], "no such run folder", id="missing-run"),
        pytest.param(["--resume", ".", "--lr", "1"], "drop --lr", id="resume-with-options"),
    ],
)
def test_invalid_options_give_a_one_line_error(argv, expected, capsys, tmp_path):
    try:
        code = main(["train", "--quiet", *argv])
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_run_interrupted_before_its_first_checkpoint_restarts_identically(tiny_run, tmp_path):
    folder = tmp_path / "restarted"
    folder.mkdir()
    shutil.copy(tiny_run / "config.json", folder / "config.json")  # died before epoch 1 ended
    assert main(["train", "--resume", str(folder), "--quiet"]) == 0
    a, b = load_weights(folder / "model.safetensors"), load_weights(tiny_run / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"training ended before its first checkpoint: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail("no checkpoint appeared in time")
        time.sleep(0.01)


def test_a_run_killed_mid_epoch_and_resumed_ends_with_identical_weights(tmp_path):
    # 300 steps per epoch, so the kill lands inside an epoch, not after the last one.
    argv = ["--n-samples", "2400", "--n-heldout", "300", "--epochs", "3"]
    argv += ["--batch-size", "8", "--seed", "7", "--quiet"]
    killed = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "-m", "flowforge", "train", *argv, "--output", str(killed)],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(killed / "checkpoint.safetensors", process)
    time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    assert not (killed / "model.safetensors").exists(), "training finished before the kill"
    assert 1 <= load_checkpoint(killed / "checkpoint.safetensors").state.epoch < 3

    assert main(["train", "--resume", str(killed), "--quiet"]) == 0
    whole = tmp_path / "whole"
    assert main(["train", *argv, "--output", str(whole)]) == 0

    a, b = load_weights(killed / "model.safetensors"), load_weights(whole / "model.safetensors")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    metrics = [json.loads((f / "metrics.json").read_text()) for f in (killed, whole)]
    assert metrics[0]["train_nll"] == metrics[1]["train_nll"]
    assert metrics[0]["resumed_from_epoch"] >= 1 and metrics[1]["resumed_from_epoch"] == 0


@pytest.fixture
def counted(monkeypatch):
    """Counts of the process-group entries (``distributed()``), the data sets' splits
    drawn and the ``config.json`` files parsed while the test runs."""
    import importlib
    from contextlib import contextmanager

    from flowforge.workbench.data.registry import DataSet
    from flowforge.workbench.runs.config import RunConfig

    counts = {"distributed": 0, "splits": 0, "configs read": 0}
    joining = importlib.import_module("flowforge.training.distributed")
    real_distributed, real_splits = joining.distributed, DataSet.splits
    real_from_dict = RunConfig.from_dict.__func__

    @contextmanager
    def distributed(*args, **kwargs):
        counts["distributed"] += 1
        with real_distributed(*args, **kwargs) as joined:
            yield joined

    def splits(self, *args, **kwargs):
        counts["splits"] += 1
        return real_splits(self, *args, **kwargs)

    def from_dict(cls, *args, **kwargs):
        counts["configs read"] += 1
        return real_from_dict(cls, *args, **kwargs)

    for module in list(sys.modules.values()):
        if module and module.__name__.startswith("flowforge"):
            if getattr(module, "distributed", None) is real_distributed:
                monkeypatch.setattr(module, "distributed", distributed)
    monkeypatch.setattr(DataSet, "splits", splits)
    monkeypatch.setattr(RunConfig, "from_dict", classmethod(from_dict))
    return counts


def test_train_joins_the_processes_once_draws_its_data_once_and_reads_no_config(tmp_path, counted):
    assert main(["train", *TINY, "--quiet", "--output", str(tmp_path / "r")]) == 0
    assert counted == {"distributed": 1, "splits": 1, "configs read": 0}


def test_a_resumed_run_reads_its_config_once(tiny_run, tmp_path, counted):
    folder = tmp_path / "restarted"
    folder.mkdir()
    shutil.copy(tiny_run / "config.json", folder / "config.json")
    assert main(["train", "--resume", str(folder), "--quiet"]) == 0
    assert counted == {"distributed": 1, "splits": 1, "configs read": 1}


def test_every_command_is_registered():
    help_text = build_parser().format_help()
    for command in ("train", "eval", "sample", "plot", "compare-runs"):
        assert command in help_text


def test_a_damaged_run_fails_cleanly_from_the_console(tiny_run, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(tiny_run, broken)
    weights = broken / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # truncated
    result = subprocess.run(
        [sys.executable, "-m", "flowforge", "eval", str(broken)],
        env=subprocess_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"flowforge eval: error: {weights} is truncated or corrupt")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_a_uniform_base_that_loses_points_says_why(tmp_path, capsys):
    # The notebook's question 10.6 (b): once the flow maps a training point outside the
    # uniform base's support, its likelihood is zero and the NLL infinite.
    # A rate that reaches 5e-3 at once (no warm-up) pushes points out within two epochs.
    argv = ["train", *TINY, "--lr", "5e-3", "--warmup", "0", "--base", "uniform", "--quiet"]
    code = main([*argv, "--output", str(tmp_path / "u")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "mean NLL inf" in err and "outside the base's support" in err
    assert (tmp_path / "u" / "config.json").exists()  # the run can be inspected
