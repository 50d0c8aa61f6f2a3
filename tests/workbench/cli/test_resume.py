"""Options that would do nothing are refused; a finished run is left alone; model size is
bounded (issue 15, item 9)."""

import shutil

import pytest

from flowforge.workbench.cli.main import main
from tests.workbench.helpers import TINY, copy_with_heldout_nll


def outcome(capsys, argv) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1, err
    return code, out, err


@pytest.mark.parametrize(
    "flag",
    [["--ema", "0.5"], ["--warmup", "3"], ["--epochs", "9"], ["--schedule", "constant"]],
    ids=lambda f: f[0],
)
def test_options_resume_would_ignore_are_refused(tiny_run, tmp_path, capsys, flag):
    folder = tmp_path / "r"
    folder.mkdir()
    shutil.copy(tiny_run / "config.json", folder / "config.json")
    code, _, err = outcome(capsys, ["train", "--resume", str(folder), "--quiet", *flag])
    assert code == 2 and f"drop {flag[0]}" in err
    assert "(only --device, --quiet, --timeout may change)" in err
    assert sorted(p.name for p in folder.iterdir()) == ["config.json"]


def test_timeout_is_honoured_on_resume(tiny_run, tmp_path, capsys):
    folder = tmp_path / "r"
    folder.mkdir()
    shutil.copy(tiny_run / "config.json", folder / "config.json")
    code, out, _ = outcome(capsys, ["train", "--resume", str(folder), "--quiet", "--timeout", "30"])
    assert code == 0 and "held-out NLL after 2 epochs" in out


def _contents(folder):
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())}


def test_resuming_a_finished_run_changes_nothing(tiny_run, tmp_path, capsys):
    run = tmp_path / "finished"
    shutil.copytree(tiny_run, run)
    before = _contents(run)
    code, out, _ = outcome(capsys, ["train", "--resume", str(run), "--quiet"])
    assert code == 0 and f"{run} finished training already" in out and "nothing was changed" in out
    assert _contents(run) == before


def test_resuming_a_finished_diverged_run_is_an_error(tiny_run, tmp_path, capsys):
    run = copy_with_heldout_nll(tiny_run, tmp_path / "diverged", None)
    before = _contents(run)
    code, _, err = outcome(capsys, ["train", "--resume", str(run), "--quiet"])
    assert code == 2 and "diverged" in err
    assert _contents(run) == before


@pytest.mark.parametrize(
    "argv, message",
    [
        pytest.param(["--couplings", "999999999"], "must be at most 1000", id="couplings"),
        pytest.param(["--hidden", "1000000"], "must be at most 65536", id="hidden"),
        pytest.param(
            ["--couplings", "100", "--hidden", "60000"],
            "the model would have 360,030,000,200 parameters, more than flowforge trains",
            id="parameters",
        ),
        pytest.param(
            ["--model", "nice", "--couplings", "1000", "--hidden", "4000"],
            "parameters, more than flowforge trains (50,000,000)",
            id="parameters-estimated",
        ),
    ],
)
def test_a_model_too_large_is_refused_before_a_run_folder_is_made(tmp_path, capsys, argv, message):
    folder = tmp_path / "big"
    code, _, err = outcome(capsys, ["train", *TINY, "--quiet", *argv, "--output", str(folder)])
    assert code == 2 and message in err
    assert not folder.exists()
