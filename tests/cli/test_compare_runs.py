import shutil

from matplotlib.image import imread

from flowforge.cli.main import main
from tests.workbench import pixel_spread, train_tiny


def test_compare_runs_draws_both_runs_per_layer_densities(tiny_run, tmp_path, capsys):
    other = train_tiny(tmp_path / "other", "--seed", "1")
    output = tmp_path / "compare.png"
    assert main(["compare-runs", str(tiny_run), str(other), "-o", str(output)]) == 0
    assert pixel_spread(output) > 0.05
    height, width = imread(output).shape[:2]
    assert 1.8 < width / height < 3.2  # two rows of five panels (0 to 4 couplings)
    assert str(output) in capsys.readouterr().out

    same = tmp_path / "same.png"  # a run against itself: both rows identical
    assert main(["compare-runs", str(tiny_run), str(tiny_run), "-o", str(same)]) == 0
    image = imread(same)
    top, bottom = image[: len(image) // 2], image[len(image) // 2 :]
    assert abs(float(top.mean()) - float(bottom.mean())) < 0.01


def test_compare_runs_keeps_an_existing_file_and_reports_missing_runs(tiny_run, tmp_path, capsys):
    output = tmp_path / "mine.png"
    output.write_bytes(b"precious")
    assert main(["compare-runs", str(tiny_run), str(tiny_run), "-o", str(output)]) == 2
    assert output.read_bytes() == b"precious"
    assert "already exists" in capsys.readouterr().err
    missing = tmp_path / "nope"
    assert main(["compare-runs", str(tiny_run), str(missing), "-o", str(tmp_path / "x.png")]) == 2
    assert f"{missing}: no such run folder" in capsys.readouterr().err
    shutil.rmtree(tmp_path / "x.png", ignore_errors=True)
