import shutil

from matplotlib.image import imread

from flowforge.workbench.cli.main import main
from tests.workbench.helpers import pixel_spread


def test_compare_runs_draws_both_runs_per_layer_densities(tiny_run, tmp_path, capsys):
    twin = tmp_path / "twin"
    shutil.copytree(tiny_run, twin)  # the same model under another name
    output = tmp_path / "compare.png"
    assert main(["compare-runs", str(tiny_run), str(twin), "-o", str(output)]) == 0
    assert str(output) in capsys.readouterr().out
    assert pixel_spread(output) > 0.05
    image = imread(output)[..., :3]
    height, width = image.shape[:2]
    assert 1.8 < width / height < 3.2  # two rows of five panels (0 to 4 couplings)
    panels = image[:, width // 10 :]  # right of the row labels
    top, bottom = panels[: height // 2], panels[height // 2 :][: height // 2]
    assert abs(float(top.mean()) - float(bottom.mean())) < 0.01  # the same densities per row
    assert float(top.std()) > 0.05


def test_compare_runs_keeps_an_existing_file_and_reports_missing_runs(tiny_run, tmp_path, capsys):
    output = tmp_path / "mine.png"
    output.write_bytes(b"precious")
    assert main(["compare-runs", str(tiny_run), str(tiny_run), "-o", str(output)]) == 2
    assert output.read_bytes() == b"precious"
    assert "already exists" in capsys.readouterr().err
    missing = tmp_path / "nope"
    assert main(["compare-runs", str(tiny_run), str(missing), "-o", str(tmp_path / "x.png")]) == 2
    assert f"{missing}: no such run folder" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
