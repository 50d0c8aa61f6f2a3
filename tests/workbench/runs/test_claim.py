"""Issue 15 (2, 5): one writer per run folder, names that never collide, starts that fail
leave nothing behind, and temp files of killed writes are cleaned up."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import flowforge
from flowforge.workbench.files import temp_path
from flowforge.workbench.runs.claim import LOCK, claim, claim_new_run, release_run
from flowforge.workbench.runs.config import RunError, read_config
from flowforge.workbench.runs.experiment import start_run, train_run
from tests.workbench.helpers import TINY, tiny_config


def _env() -> dict:
    src = str(Path(flowforge.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}


def _race(count: int, call) -> list:
    """``call(i)`` from ``count`` threads released at once: each result or exception."""
    barrier, results = threading.Barrier(count), [None] * count

    def worker(i: int) -> None:
        barrier.wait()
        try:
            results[i] = call(i)
        except Exception as error:  # noqa: BLE001 -- what each thread got
            results[i] = error

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_of_threads_racing_to_start_one_run_exactly_one_wins_every_time(tmp_path):
    for round in range(40):
        folder = tmp_path / f"r{round}"
        if round % 2:
            folder.mkdir()  # an existing, empty folder: the race is on the lock, not mkdir
        configs = [tiny_config(seed=i) for i in range(6)]
        results = _race(6, lambda i, folder=folder, configs=configs: start_run(folder, configs[i]))
        won = [i for i, r in enumerate(results) if not isinstance(r, Exception)]
        assert len(won) == 1, results
        for r in results:
            if isinstance(r, Exception):
                assert isinstance(r, RunError), repr(r)
                assert "is in use" in str(r) or "already holds a run" in str(r)
        assert read_config(folder) == configs[won[0]]  # the winner's, whole
        release_run(folder)


def test_default_names_never_collide(tmp_path):
    base = tmp_path / "runs" / "20260101-000000"
    for _ in range(10):
        made = _race(8, lambda i: claim_new_run(base))
        assert all(isinstance(m, Path) and m.is_dir() for m in made), made
        assert len(set(made)) == len(made)
    names = sorted(p.name for p in base.parent.iterdir())
    assert len(names) == 80 and names[0] == base.name and f"{base.name}-80" in names


def test_a_live_writer_blocks_others(tmp_path):
    folder = start_run(tmp_path / "run", tiny_config())
    try:
        with pytest.raises(RunError, match=rf"is in use: process {os.getpid()} on .* is writing"):
            claim(folder)
        result = subprocess.run(
            [sys.executable, "-m", "flowforge", "train", "--quiet", "--resume", str(folder)],
            env=_env(),
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2, result
        assert len(result.stderr.strip().splitlines()) == 1
        assert f"is in use: process {os.getpid()}" in result.stderr
    finally:
        release_run(folder)
    claim(folder).release()  # free again


def test_a_writer_killed_by_sigkill_leaves_no_stale_lock(tmp_path):
    folder = tmp_path / "run"
    script = (
        "import os, sys\n"
        "from flowforge.workbench.runs.experiment import start_run\n"
        "from tests.workbench.helpers import tiny_config\n"
        "start_run(sys.argv[1], tiny_config())\n"
        "os.kill(os.getpid(), 9)\n"
    )
    env = {**_env(), "PYTHONPATH": os.pathsep.join([_env()["PYTHONPATH"], os.getcwd()])}
    result = subprocess.run([sys.executable, "-c", script, str(folder)], env=env)
    assert result.returncode == -9
    with pytest.raises(
        RunError, match=r"already holds a run \(its writer, process \d+ .*stopped\)"
    ):
        start_run(folder, tiny_config())
    with pytest.raises(RunError, match=f"flowforge train --resume {folder}"):
        start_run(folder, tiny_config())
    outcome = train_run(folder, progress=False)  # what the message says: it continues
    assert outcome.history.epochs == 1 and (folder / "model.safetensors").exists()


def test_two_train_processes_on_one_output_never_both_train_it(tmp_path):
    folder = tmp_path / "shared"
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "flowforge", "train", *TINY, "--quiet", "--seed", str(seed)]
            + ["--output", str(folder)],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in (1, 2)
    ]
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in processes]
    codes = sorted(code for code, _, _ in outcomes)
    assert codes == [0, 2], outcomes
    winner = next(i for i, (code, _, _) in enumerate(outcomes) if code == 0)
    loser_err = outcomes[1 - winner][2].strip()
    assert len(loser_err.splitlines()) == 1, loser_err
    assert "is in use" in loser_err or "already holds a run" in loser_err
    assert read_config(folder).seed == winner + 1  # the folder holds the winner's run


# --- item 5: failed starts, temp files ---------------------------------------------------


def _failing_data(monkeypatch, error: BaseException) -> None:
    def fail(config):
        raise error

    monkeypatch.setattr("flowforge.workbench.runs.experiment.load_data", fail)


def test_a_start_that_fails_before_training_leaves_nothing_behind(tmp_path, monkeypatch):
    _failing_data(monkeypatch, ValueError("no data"))
    made = tmp_path / "made"
    folder = start_run(made, tiny_config())
    with pytest.raises(ValueError, match="no data"):
        train_run(folder, progress=False)
    assert not made.exists()  # start_run made it: it is gone again
    existing = tmp_path / "existing"
    existing.mkdir()
    start_run(existing, tiny_config())
    with pytest.raises(ValueError, match="no data"):
        train_run(existing, progress=False)
    assert [p.name for p in existing.iterdir()] == [LOCK]  # as it was, but for the lock
    monkeypatch.undo()
    start_run(existing, tiny_config())  # the folder can be used again at once
    assert train_run(existing, progress=False).history.epochs == 1


def test_an_interrupted_start_keeps_the_run_to_resume(tmp_path, monkeypatch):
    _failing_data(monkeypatch, KeyboardInterrupt())
    folder = start_run(tmp_path / "run", tiny_config())
    with pytest.raises(KeyboardInterrupt):
        train_run(folder, progress=False)
    assert read_config(folder) == tiny_config()  # `flowforge train --resume` continues it


def test_a_folder_holding_only_temp_files_can_be_reused_or_resumed(tmp_path):
    reused = tmp_path / "reused"
    reused.mkdir()
    temp = temp_path(reused / "config.json")
    temp.write_text('{"half": ')
    start_run(reused, tiny_config())
    assert not temp.exists()
    release_run(reused)
    resumed = start_run(tmp_path / "resumed", tiny_config())
    release_run(resumed)
    temp = temp_path(resumed / "checkpoint.safetensors")
    temp.write_bytes(b"half a checkpoint")
    assert train_run(resumed, progress=False).history.epochs == 1
    assert not temp.exists()
    assert not [p.name for p in resumed.iterdir() if p.name.endswith(".tmp")]


def test_a_file_or_an_unwritable_place_is_a_one_line_error(tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(RunError, match="is a file; choose another --output"):
        start_run(tmp_path / "file", tiny_config())
    with pytest.raises(RunError, match="cannot make .*; choose another --output"):
        start_run(tmp_path / "file" / "run", tiny_config())
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    with pytest.raises(RunError, match="choose another --output") as info:
        start_run(tmp_path / "dangling", tiny_config())
    assert "\n" not in str(info.value)
    assert (tmp_path / "file").read_text() == "mine"


def _full_disk_after(monkeypatch, writes: int) -> None:
    """Every ``fsync`` (of a file or a folder) after the first ``writes`` fails with ENOSPC."""
    import errno

    real, count = os.fsync, [0]

    def fsync(fd):
        count[0] += 1
        if count[0] > writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd)

    monkeypatch.setattr("flowforge.workbench.files.os.fsync", fsync)


def test_a_full_disk_while_training_is_a_one_line_error_and_keeps_the_run(tmp_path, monkeypatch):
    folder = start_run(tmp_path / "run", tiny_config(recipe={**tiny_config().recipe, "epochs": 3}))
    _full_disk_after(monkeypatch, 4)  # two checkpoints (file and folder), then the disk is full
    with pytest.raises(RunError, match="No space left on device") as info:
        train_run(folder, progress=False)
    message = str(info.value)
    assert "checkpoint.safetensors" in message and f"--resume {folder}" in message
    assert "\n" not in message
    monkeypatch.undo()
    assert not [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert train_run(folder, progress=False).resumed_from == 2  # what it says: continue


def test_a_full_disk_at_the_first_checkpoint_leaves_nothing_behind(tmp_path, monkeypatch):
    made = tmp_path / "run"
    folder = start_run(made, tiny_config())
    _full_disk_after(monkeypatch, 0)
    with pytest.raises(RunError, match=r"No space left on device.*and try again"):
        train_run(folder, progress=False)
    assert not made.exists()
