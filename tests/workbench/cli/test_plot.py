import shutil

from flowforge.workbench.cli.main import main
from flowforge.workbench.figures.runs import FIGURES


def test_plot_redraws_a_runs_figures_and_report(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    for name in [*FIGURES, "report.html"]:
        (run / name).unlink()
    assert main(["plot", str(run)]) == 0
    for name in FIGURES:  # the same pictures as training drew: same model, same seed
        assert (run / name).read_bytes() == (tiny_run / name).read_bytes(), name
    assert (run / "report.html").read_text().count("data:image/png;base64,") == len(FIGURES)
    assert str(run / "report.html") in capsys.readouterr().out


def test_plot_of_an_unfinished_run_says_how_to_finish_it(tiny_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "metrics.json").unlink()
    assert main(["plot", str(run)]) == 2
    assert f"flowforge train --resume {run}" in capsys.readouterr().err
