from pathlib import Path

import numpy as np
import pytest
import torch

from flowforge import load
from flowforge.workbench.cli.main import main
from flowforge.workbench.datafiles import read_points


def expected_samples(run, n: int, seed: int) -> np.ndarray:
    model, standardization = load(run)
    torch.manual_seed(seed)
    with torch.no_grad():
        z = model.sample(n).double().numpy()
    return z * np.array(standardization.std) + np.array(standardization.mean)


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_samples_are_written_in_original_units(tiny_run, tmp_path, suffix):
    path = tmp_path / f"samples{suffix}"
    assert main(["sample", str(tiny_run), "-n", "300", "-o", str(path), "--seed", "5"]) == 0
    samples = read_points(path, 2)
    assert samples.shape == (300, 2)
    np.testing.assert_allclose(samples, expected_samples(tiny_run, 300, 5), rtol=1e-12)


def test_the_seed_decides_the_samples(tiny_run, tmp_path):
    paths = [tmp_path / f"{name}.npy" for name in "abc"]
    for path, seed in zip(paths, ["1", "1", "2"]):
        assert main(["sample", str(tiny_run), "-n", "50", "-o", str(path), "--seed", seed]) == 0
    a, b, c = (np.load(p) for p in paths)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_an_existing_file_is_kept_unless_forced(tiny_run, tmp_path, capsys):
    path = tmp_path / "mine.csv"
    path.write_text("precious\n")
    assert main(["sample", str(tiny_run), "-n", "10", "-o", str(path)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert path.read_text() == "precious\n"
    assert main(["sample", str(tiny_run), "-n", "10", "-o", str(path), "--force"]) == 0
    assert read_points(path, 2).shape == (10, 2)


@pytest.mark.parametrize(
    "argv, message",
    [
        pytest.param(["-n", "10", "-o", "out.txt"], "ending in .npy or .csv", id="format"),
        pytest.param(["-n", "0", "-o", "out.npy"], "must be at least 1", id="zero"),
    ],
)
def test_bad_sample_options(tiny_run, capsys, argv, message):
    try:
        code = main(["sample", str(tiny_run), *argv])
    except SystemExit as exit:
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_samples_drawn_in_chunks_are_those_of_one_piece(tiny_run, tmp_path, monkeypatch, suffix):
    from flowforge.workbench.cli import sample
    from flowforge.workbench.datafiles import write_points

    whole = tmp_path / f"whole{suffix}"
    write_points(whole, expected_samples(tiny_run, 300, 5))
    monkeypatch.setattr(sample, "CHUNK", 32)  # ten chunks, the last of 12 rows
    path = tmp_path / f"chunked{suffix}"
    assert main(["sample", str(tiny_run), "-n", "300", "-o", str(path), "--seed", "5"]) == 0
    assert path.read_bytes() == whole.read_bytes()  # the same file, byte for byte


def test_a_conditional_run_samples_in_chunks_like_in_one_piece(tmp_path, monkeypatch):
    from flowforge.workbench.cli import sample
    from flowforge.workbench.runs.config import load_model, read_config
    from flowforge.workbench.runs.kinds import run_kind
    from tests.workbench.helpers import train_tiny

    run = train_tiny(tmp_path / "conditional", "--conditional", "--epochs", "1")
    config = read_config(run)
    context = run_kind(config).sample_context(run, None, 101)
    whole = sample.draw(load_model(run, config), config.standardization, 101, 3, *context)
    monkeypatch.setattr(sample, "CHUNK", 16)
    path = tmp_path / "chunked.npy"
    assert main(["sample", str(run), "-n", "101", "-o", str(path), "--seed", "3"]) == 0
    assert np.array_equal(np.load(path), whole)


def _peak_memory(run, path, n: int) -> int:
    """Peak resident memory (bytes) of ``flowforge sample -n N`` in a process of its own:
    its ``VmHWM`` (which, unlike ``ru_maxrss``, does not inherit the forking process's)."""
    import subprocess
    import sys

    from tests.workbench.cli.test_train import subprocess_env

    code = (
        "import sys; from flowforge.workbench.cli.main import main; "
        f"code = main(['sample', {str(run)!r}, '-n', '{n}', '-o', {str(path)!r}]); "
        "print(open('/proc/self/status').read()); sys.exit(code)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=subprocess_env(), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024  # kB


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux's /proc")
def test_peak_memory_grows_with_the_chunk_not_with_n(tiny_run, tmp_path):
    # Drawn in one piece, 1.5 million samples took about 160 bytes each (240 MB) at the peak.
    small = _peak_memory(tiny_run, tmp_path / "small.npy", 50_000)
    large = _peak_memory(tiny_run, tmp_path / "large.npy", 1_500_000)
    assert np.load(tmp_path / "large.npy", mmap_mode="r").shape == (1_500_000, 2)
    assert large - small < 60 * 2**20


def _one_line_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_a_full_disk_is_a_one_line_error_and_leaves_no_file(
    tiny_run, tmp_path, capsys, monkeypatch, suffix
):
    import errno
    import os

    path = tmp_path / f"mine{suffix}"
    path.write_text("precious\n")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    err = _one_line_error(capsys, ["sample", str(tiny_run), "-o", str(path), "--force"])
    assert f"{path}: No space left on device; free some space" in err
    assert path.read_text() == "precious\n"  # the old file is kept
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file


def test_an_unwritable_output_is_refused_before_sampling(tiny_run, tmp_path, capsys, monkeypatch):
    import os

    dangling = tmp_path / "link.csv"
    dangling.symlink_to(tmp_path / "missing" / "file.csv")
    err = _one_line_error(capsys, ["sample", str(tiny_run), "-o", str(dangling)])
    assert "is a link to a missing file" in err
    err = _one_line_error(capsys, ["sample", str(tiny_run), "-o", str(tmp_path / "no" / "s.npy")])
    assert "does not exist" in err
    err = _one_line_error(capsys, ["sample", str(tiny_run), "-o", str(tmp_path)])
    assert "use a file name ending in .npy or .csv" in err
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # as for a read-only folder
    err = _one_line_error(capsys, ["sample", str(tiny_run), "-o", str(tmp_path / "s.npy")])
    assert f"the folder {tmp_path} is not writable" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.csv"]
