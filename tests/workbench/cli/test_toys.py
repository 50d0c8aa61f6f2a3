"""Every toy set from the command line: train, eval, sample, plot and compare, tiny budgets."""

import json

import numpy as np
import pytest

from flowforge.workbench.cli.main import main
from flowforge.workbench.data import TOYS
from flowforge.workbench.datafiles import read_points
from flowforge.workbench.runs.config import read_config
from tests.workbench.helpers import TINY, run_main

WITH_DENSITY = {"eight_gaussians", "checkerboard", "circles", "rings"}
COMPARE = ["--models", "flow", "--budget", "1", "--n-train", "2000", "--n-heldout", "500"]
COMPARE += ["--samples", "300", "--entropy-samples", "2000"]


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory):
    """A tiny run of every toy set, with what ``flowforge train`` printed."""
    root = tmp_path_factory.mktemp("toys")
    runs = {}
    for name in TOYS:
        folder = root / name
        printed = run_main(["train", "--dataset", name, *TINY, "--quiet", "-o", str(folder)])
        runs[name] = folder, printed
    return runs


@pytest.mark.parametrize("name", list(TOYS))
def test_every_toy_trains_and_reports_its_truth(toy_runs, name):
    folder, printed = toy_runs[name]
    config = read_config(folder)
    assert config.data == {"name": name, "n_samples": 1500, "n_heldout": 500}
    heldout = json.loads((folder / "metrics.json").read_text())["heldout"]
    if name in WITH_DENSITY:
        assert heldout["gap_to_entropy"] == pytest.approx(heldout["nll"] - heldout["true_entropy"])
        assert heldout["kl_paired"] > 0 and heldout["kl_paired_stderr"] > 0
        assert f"gap to the true entropy H = {heldout['true_entropy']:.4f}" in printed
        assert "sample_distances" not in heldout
    else:
        assert "true_entropy" not in heldout and "kl_paired" not in heldout
        assert f"{name} has no closed-form density here" in printed
        distances = heldout["sample_distances"]
        assert distances["n"] == 500
        assert distances["model"]["energy"] > distances["fresh_sample_of_the_data"]["energy"]
    report = (folder / "report.html").read_text()
    # The report shows the rows that apply: the KL with a density, else the distances.
    assert ("KL(truth ‖ model), paired" in report) == (name in WITH_DENSITY)
    assert ("<th>sliced Wasserstein-1</th>" in report) != (name in WITH_DENSITY)


@pytest.mark.parametrize("name", list(TOYS))
def test_every_toy_evaluates_with_the_same_truth_scores(toy_runs, name):
    folder, _ = toy_runs[name]
    heldout = json.loads((folder / "metrics.json").read_text())["heldout"]
    scores = json.loads(run_main(["eval", str(folder), "--json"]))
    assert scores["nll"] == pytest.approx(heldout["nll"], abs=1e-9)
    if name in WITH_DENSITY:  # the same paired KL, with the entropy stored by train
        assert scores["kl_paired"] == pytest.approx(heldout["kl_paired"])
        assert scores["true_entropy"] == heldout["true_entropy"]
    else:  # the same model samples and the same fresh sample, drawn with the run's seed
        assert scores["sample_distances"] == heldout["sample_distances"]
    text = run_main(["eval", str(folder)])
    assert ("gap to the true entropy" if name in WITH_DENSITY else "no closed-form density") in text


@pytest.mark.parametrize("name", list(TOYS))
def test_every_toy_samples_in_original_units(toy_runs, tmp_path, name):
    folder, _ = toy_runs[name]
    path = tmp_path / "samples.npy"
    run_main(["sample", str(folder), "-n", "400", "-o", str(path)])
    samples = read_points(path, 2)
    std = read_config(folder).standardization
    assert samples.shape == (400, 2)
    assert np.all(np.abs(samples.mean(0) - std.mean) < 3 * np.array(std.std))


def test_a_toy_run_is_redrawn(toy_runs):
    folder, _ = toy_runs["pinwheel"]
    (folder / "latent.png").unlink()
    assert "latent.png" in run_main(["plot", str(folder)])
    assert (folder / "latent.png").is_file()


@pytest.mark.parametrize("name", list(TOYS))
def test_every_toy_compares(tmp_path, name):
    printed = run_main(["compare", "--dataset", name, *COMPARE, "-o", str(tmp_path)])
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["setup"]["dataset"] == name
    rows = {row["model"]: row for row in results["rows"]}
    assert set(rows) == {"truth (fresh sample)", "flow"}
    flow = rows["flow"]
    assert flow["heldout_nll"]["mean"] > 0 and flow["distances"]["sliced_w1"] > 0
    if name in WITH_DENSITY:
        assert "true entropy H = " in printed
        assert flow["kl_paired"]["mean"] > 0 and results["true_entropy"]["stderr"] >= 0
    else:
        assert f"{name} has no closed-form density here" in printed
        assert flow["kl_paired"] is None and results["true_entropy"] is None
    assert (tmp_path / "comparison.png").stat().st_size > 10_000


@pytest.mark.parametrize(
    "argv, expected",
    [
        pytest.param(
            ["train", "--dataset", "rings", "--noise", "0.2"],
            "--noise does not apply to --dataset rings; it takes no data options",
            id="train-noise",
        ),
        pytest.param(
            ["train", "--dataset", "circles", "--conditional"],
            "--conditional needs the true p(x | label), which flowforge knows for two_moons",
            id="train-conditional",
        ),
        pytest.param(
            ["train", "--dataset", "moonz"],
            "unknown data set 'moonz'; known: two_moons, eight_gaussians, checkerboard",
            id="train-unknown",
        ),
        pytest.param(
            ["compare", "--dataset", "spirals"],
            "unknown data set 'spirals'; known: two_moons, eight_gaussians, checkerboard",
            id="compare-unknown",
        ),
        pytest.param(
            ["compare", "--dataset", "checkerboard", "--noise", "0.1"],
            "data set checkerboard takes no option noise",
            id="compare-noise",
        ),
    ],
)
def test_bad_data_options_give_a_one_line_error(argv, expected, capsys, tmp_path):
    try:
        code = main([*argv, "--quiet"] if argv[0] == "train" else argv)
    except SystemExit as exit:  # argparse's own errors
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and expected in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
