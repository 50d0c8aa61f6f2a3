"""Write failures and failed starts are one-line errors that leave nothing behind (issue 15, 5)."""

import errno
import os

import pytest

from flowforge.workbench.cli.main import main
from tests.workbench.helpers import TINY


def one_line_error(capsys, argv) -> str:
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.fixture
def full_disk(monkeypatch):
    """Every flush to disk fails as on a full disk."""

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)


@pytest.mark.parametrize(
    "argv, message",
    [
        pytest.param(["--device", "meta"], "--device meta: flowforge trains", id="meta-device"),
        pytest.param(["--seed", "99999999999999999999"], "from 0 to 2**64 - 1", id="huge-seed"),
        pytest.param(["--noise", "1e308"], "cannot be drawn with", id="huge-noise"),
    ],
)
def test_a_failed_start_leaves_no_run_folder(tmp_path, capsys, argv, message):
    folder = tmp_path / "run"
    err = one_line_error(capsys, ["train", *TINY, "--quiet", *argv, "--output", str(folder)])
    assert message in err
    assert not folder.exists()


def test_default_run_names_never_collide_and_a_failed_start_leaves_none(
    tmp_path, capsys, monkeypatch
):
    import time

    from flowforge.workbench.cli.train import default_output

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20261203-120000")  # one second
    made = [default_output() for _ in range(3)]
    assert [p.name for p in made] == ["20261203-120000", "20261203-120000-2", "20261203-120000-3"]
    assert all(p.is_dir() for p in made)  # claimed, not only named
    for p in made:
        p.rmdir()
    one_line_error(capsys, ["train", *TINY, "--quiet", "--noise", "1e308"])
    assert list((tmp_path / "runs").iterdir()) == []  # refused before a folder was made


def test_outputs_that_cannot_be_run_folders_are_refused(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("precious")
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing")
    cases = {
        a_file: "is a file",
        a_file / "run": "is a file, not a folder",
        dangling: "is a link to a missing folder",
        dangling / "run": "is a link to a missing folder",
    }
    for output, message in cases.items():
        err = one_line_error(capsys, ["train", *TINY, "--quiet", "--output", str(output)])
        assert message in err
    assert a_file.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "dangling"]


def test_a_full_disk_while_training_says_how_to_continue(tmp_path, capsys, full_disk):
    folder = tmp_path / "run"
    err = one_line_error(capsys, ["train", *TINY, "--quiet", "--output", str(folder)])
    assert "No space left on device; free some space" in err
    assert f"{folder / 'config.json'}: No space left" in err
    assert f"flowforge train --resume {folder}" not in err  # config.json was never written
    assert not folder.exists()


def test_a_full_disk_during_an_epoch_says_how_to_continue(tmp_path, capsys, monkeypatch):
    from flowforge.workbench.runs import experiment

    def full(path, state):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(experiment, "save_checkpoint", full)
    folder = tmp_path / "run"
    err = one_line_error(capsys, ["train", *TINY, "--quiet", "--output", str(folder)])
    assert f"{folder / 'checkpoint.safetensors'}: No space left on device" in err
    assert "free some space" in err
    assert f"flowforge train --resume {folder}" not in err  # no checkpoint: the start is undone
    assert not folder.exists()


def test_compare_runs_write_failures_are_one_line(tiny_run, tmp_path, capsys, monkeypatch):
    dangling = tmp_path / "link.png"
    dangling.symlink_to(tmp_path / "missing.png")
    err = one_line_error(
        capsys, ["compare-runs", str(tiny_run), str(tiny_run), "-o", str(dangling)]
    )
    assert "is a link to a missing file" in err
    output = tmp_path / "c.png"
    err = one_line_error(capsys, ["compare-runs", str(tiny_run), str(tmp_path), "-o", "x/c.png"])
    assert "the folder x does not exist" in err
    monkeypatch.setattr(
        os,
        "fsync",
        lambda fd: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")),
    )
    err = one_line_error(capsys, ["compare-runs", str(tiny_run), str(tiny_run), "-o", str(output)])
    assert f"{output}: No space left on device" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.png"]


def test_plot_on_a_full_disk_is_one_line(tiny_run, tmp_path, capsys, full_disk):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    err = one_line_error(capsys, ["plot", str(run)])
    assert "No space left on device" in err and str(run) in err
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_compare_refuses_an_output_it_cannot_write_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "a_file"
    a_file.write_text("precious")
    err = one_line_error(capsys, ["compare", "-o", str(a_file / "out"), "--models", "gaussian"])
    assert "is a file, not a folder" in err


def test_a_read_only_folder_is_refused_before_any_work(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root may write to a read-only folder")
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        err = one_line_error(capsys, ["train", *TINY, "--quiet", "--output", str(folder / "r")])
        assert "is not writable" in err
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize(
    "name, shown",
    [(".model.safetensors.0123456789ab.tmp", "model.safetensors"), ("plain.csv", "plain.csv")],
)
def test_file_errors_name_the_file_being_written(tmp_path, name, shown):
    from flowforge.workbench.files import file_error

    error = OSError(errno.EROFS, "Read-only file system", str(tmp_path / name))
    assert file_error(error) == (
        f"{tmp_path / shown}: Read-only file system; the file system is read-only; "
        "choose a folder you can write to"
    )
