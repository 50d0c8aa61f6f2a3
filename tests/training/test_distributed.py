"""Data-parallel training: two gloo processes on the loopback interface against one process.

One ``torch.multiprocessing.spawn`` runs every scenario of ``distributed_worker`` (the
processes start once, which is most of the cost); the command line runs under a real
``torchrun``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from flowforge import Multivariate, NormalizingFlow, fit, mean_nll
from flowforge.layers import BatchNormFlow
from flowforge.training.distributed import (
    LaunchError,
    World,
    free_port,
    launched_by_torchrun,
    local_device,
    loopback_environment,
    share,
)
from flowforge.training.parallel import check_distributed
from flowforge.workbench.runs.checkpoint import load_checkpoint, save_checkpoint
from tests.training import distributed_worker as worker

TIMEOUT = 60.0  # seconds; a dead peer must be reported long before this
ROOT = Path(__file__).resolve().parents[2]


def single_process(out: Path) -> dict:
    """The reference: the same recipe in this process, with a checkpoint of epoch 1."""
    train, heldout = worker.moons()
    model = worker.fresh_model(train)

    def checkpoint(state) -> None:
        if state.epoch == 1:
            save_checkpoint(out / "one_epoch1.safetensors", state)

    history = fit(
        model, train, validation=heldout, progress=False, callbacks=[checkpoint], **worker.RECIPE
    )
    return {"weights": worker.weights(model), "history": history.to_dict()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("distributed")
    one = single_process(out)
    torch.multiprocessing.spawn(worker.worker, args=(free_port(), str(out), TIMEOUT), nprocs=2)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=False) for r in (0, 1)]
    return one, ranks, out


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].numel())


def test_the_processes_join_one_group_with_the_timeout(runs):
    _, ranks, _ = runs
    assert [r["world"] for r in ranks] == [(0, 2, TIMEOUT, "cpu"), (1, 2, TIMEOUT, "cpu")]


def test_two_processes_follow_one_process_with_uneven_shares(runs):
    one, (first, second), _ = runs
    for name, value in first["train"]["weights"].items():
        assert torch.equal(value, second["train"]["weights"][name]), name
    assert max_difference(first["train"]["weights"], one["weights"]) < 1e-5
    # The run moved far from its start, so agreeing to 1e-5 is not agreeing on nothing.
    start = worker.weights(worker.fresh_model(worker.moons()[0]))
    assert max_difference(one["weights"], start) > 1e-2


def test_metrics_are_sums_and_counts_over_every_process(runs):
    one, (first, second), _ = runs
    for key in ("train_nll", "heldout_nll"):
        assert first["train"]["history"][key] == second["train"]["history"][key]
        assert first["train"]["history"][key] == pytest.approx(one["history"][key], abs=1e-6)
    # The last held-out NLL is that of the final weights over all 201 points...
    train, heldout = worker.moons()
    model = worker.fresh_model(train)
    model.load_state_dict(first["train"]["weights"])
    whole = mean_nll(model, heldout).mean
    assert first["train"]["history"]["heldout_nll"][-1] == pytest.approx(whole, abs=1e-6)
    # ... not the average of the two processes' averages (100 and 101 points).
    halves = [mean_nll(model, part).mean for part in (heldout[:100], heldout[100:])]
    assert abs(sum(halves) / 2 - whole) > 1e-5  # ten times the tolerance above


def test_only_the_first_process_shows_progress_and_calls_callbacks(runs):
    _, (first, second), _ = runs
    assert first["train"]["callbacks"] == [1, 2]
    assert second["train"]["callbacks"] == []
    assert "training" in first["train"]["stderr"]
    assert second["train"]["stderr"] == ""


def test_a_resumed_two_process_run_matches_an_uninterrupted_one(runs):
    _, (first, second), _ = runs
    for rank in (first, second):
        assert max_difference(rank["resumed_two"], first["train"]["weights"]) == 0.0


def test_checkpoints_move_between_one_and_two_processes(runs):
    one, (first, _), out = runs
    # written by one process, resumed by two
    assert max_difference(first["resumed_one"], one["weights"]) < 1e-5
    # written by two processes, resumed by one
    train, heldout = worker.moons()
    model = worker.fresh_model(train)
    state = load_checkpoint(out / "two_epoch1.safetensors").state
    fit(model, train, validation=heldout, progress=False, resume=state, **worker.RECIPE)
    assert max_difference(worker.weights(model), one["weights"]) < 1e-5


def test_a_process_group_can_be_made_again_after_one_ended(runs):
    _, (first, second), _ = runs
    assert len(first["again"]) == len(second["again"]) == 2
    for rank in (first, second):
        for again in rank["again"]:
            assert max_difference(again, first["again"][0]) == 0.0


def test_launch_mistakes_are_named_on_every_process(runs):
    _, ranks, _ = runs
    for rank in ranks:
        assert "batch size 1 is smaller than the 2 processes" in rank["errors"]["batch"]
        assert "process(es) [1] hold other training data" in rank["errors"]["data"]
        assert "(rows per process: 344, 343)" in rank["errors"]["data"]
        assert "[1] hold other validation data" in rank["errors"]["validation"]
        assert "(rows per process: 201, none)" in rank["errors"]["validation"]


def test_a_dead_process_ends_the_run_with_a_clear_error_and_a_good_checkpoint(runs):
    _, (first, _), out = runs
    dead = first["dead"]
    assert dead["error"] is not None, "the first process finished without its peer"
    assert dead["error"].startswith("process 0 of 2: a collective operation failed in epoch 2")
    assert dead["seconds"] < TIMEOUT
    assert load_checkpoint(out / "dead_epoch.safetensors").state.epoch == 1
    assert first["after"] == 1  # the group was destroyed when the block ended


# --- without processes -----------------------------------------------------------------


@pytest.mark.parametrize("rows", [1, 2, 7, 8, 1001])
@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_shares_cover_every_row_once_and_differ_by_at_most_one(rows, size):
    parts = [share(rows, World(rank, size)) for rank in range(size)]
    assert parts[0][0] == 0 and parts[-1][1] == rows
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    lengths = [stop - start for start, stop in parts]
    assert max(lengths) - min(lengths) <= 1


def test_torchrun_is_recognised_from_its_environment():
    assert launched_by_torchrun({"WORLD_SIZE": "2"})
    assert not launched_by_torchrun({"WORLD_SIZE": "1"})
    assert not launched_by_torchrun({})


def test_each_process_gets_its_own_device_or_a_clear_error():
    env = {"WORLD_SIZE": "2", "LOCAL_RANK": "1", "RANK": "1"}
    assert local_device("cpu", env) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert local_device("auto", env) == torch.device("cpu")
    with pytest.raises(LaunchError, match="CPUs \\(gloo\\) or CUDA GPUs \\(NCCL\\), not mps"):
        local_device("mps", env)


def test_batch_statistics_are_refused_across_processes():
    model = NormalizingFlow(Multivariate(2), BatchNormFlow(2))
    with pytest.raises(LaunchError, match="use ActNorm"):
        check_distributed(model, torch.device("cpu"), torch.zeros(8, 2), None, 4, World(0, 2))
    with pytest.raises(LaunchError, match="use a batch size of at least 3"):
        check_distributed(model, torch.device("cpu"), torch.zeros(8, 2), None, 2, World(0, 3))


# --- the command line under torchrun ---------------------------------------------------

# Loaded into every process through PYTHONPATH: records each file a process opens for
# writing under RUN, and saves the list as writes-<rank>.json when the process exits.
AUDIT = """
import atexit, json, os, sys
_run, _seen = os.environ["AUDIT_RUN"], []
def _hook(event, args):
    if event == "open" and isinstance(args[0], str) and args[0].startswith(_run):
        mode, flags = args[1] or "", args[2] or 0
        if any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR):
            _seen.append(os.path.basename(args[0]))
def _save():
    with open(os.path.join(os.environ["AUDIT_OUT"], f"writes-{os.environ['RANK']}.json"), "w") as f:
        json.dump(_seen, f)
if "RANK" in os.environ:
    sys.addaudithook(_hook)
    atexit.register(_save)
"""


def test_flowforge_train_under_torchrun_writes_one_run_folder_from_rank_0(tmp_path):
    (tmp_path / "audit").mkdir()
    (tmp_path / "audit" / "sitecustomize.py").write_text(AUDIT)
    run = tmp_path / "run"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(tmp_path / "audit"), str(ROOT / "src"), str(ROOT), env.get("PYTHONPATH", "")]
    )
    env.update(AUDIT_RUN=str(run), AUDIT_OUT=str(tmp_path), OMP_NUM_THREADS="1")
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2"]
    command += ["--master_addr=127.0.0.1", f"--master_port={free_port()}"]
    command += ["-m", "flowforge", "train", "--n-samples", "1500", "--n-heldout", "500"]
    command += ["--epochs", "1", "--batch-size", "127", "--device", "cpu", "-o", str(run)]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("held-out NLL after 1 epochs") == 1  # printed by rank 0 only
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["processes"] == 2 and metrics["epochs"] == 1
    first = json.loads((tmp_path / "writes-0.json").read_text())
    second = json.loads((tmp_path / "writes-1.json").read_text())
    assert second == []
    # atomic writes go to ".<name>.<random>.tmp" first
    written = {name[1:].rsplit(".", 2)[0] if name.startswith(".") else name for name in first}
    expected = {"config.json", "checkpoint.safetensors", "model.safetensors", "metrics.json"}
    assert expected | {"report.html", "latent.png"} <= written


def test_loopback_environment_is_what_torchrun_sets():
    env = loopback_environment(1, 3, 29512)
    assert env == {
        "RANK": "1",
        "WORLD_SIZE": "3",
        "LOCAL_RANK": "1",
        "MASTER_ADDR": "127.0.0.1",
        "MASTER_PORT": "29512",
    }
    assert launched_by_torchrun(env)
    with pytest.raises(ValueError, match="rank 3 of 3"):
        loopback_environment(3, 3, 29512)
    port = free_port()
    with socket.socket() as s:  # free: it can be bound
        s.bind(("127.0.0.1", port))
