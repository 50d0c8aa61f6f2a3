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
