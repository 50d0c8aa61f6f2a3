"""The digits from the command line: a tiny multi-scale run, its bits/dim, figures and report."""

import json
import re

import pytest

from flowforge.families import FAMILIES, IMAGES
from flowforge.workbench.cli.main import main
from flowforge.workbench.runs.config import read_config
from tests.workbench.helpers import pixel_spread, run_main, small_flags

SMALL = ["--epochs", "1", "--batch-size", "128", "--quiet"]
IMAGE_FAMILIES = [name for name, family in FAMILIES.items() if family.data == IMAGES]


@pytest.fixture(scope="module", params=IMAGE_FAMILIES)
def digits_run(request, tmp_path_factory):
    """A tiny run of each image family (at its declared test size) on the digits."""
    folder = tmp_path_factory.mktemp("digits") / request.param
    flags = ["--model", request.param, *small_flags(request.param)]
    printed = run_main(["train", "--dataset", "digits", *SMALL, *flags, "-o", str(folder)])
    return folder, printed


def test_digits_train_a_multi_scale_flow_and_report_bits_per_dim(digits_run):
    folder, printed = digits_run
    config = read_config(folder)
    assert config.data == {"name": "digits"} and config.model in IMAGE_FAMILIES
    assert config.model_options["image_shape"] == [1, 8, 8]
    assert "width" not in config.model_options  # the image kind passes the shape instead
    assert config.model_options["levels"] == 17 and config.recipe["lr"] == 3e-3
    heldout = json.loads((folder / "metrics.json").read_text())["heldout"]
    assert heldout["n"] == 360 and heldout["dims"] == 64
    assert heldout["bits_per_dim"] == pytest.approx(heldout["nll"] / (64 * 0.6931471805599453))
    assert 1.0 < heldout["bits_per_dim"] < 6.0
    assert f"test bits/dim: {heldout['bits_per_dim']:.4f}" in printed
    assert f"test NLL after 1 epochs: {heldout['nll']:.4f}" in printed
    assert "nats per image (n=360, pixel units)" in printed
    report = (folder / "report.html").read_text()
    assert "held-out bits per dimension (test set)" in report
    assert "64 samples of the model" in report and "one row per scale" in report
    assert pixel_spread(folder / "samples.png") > 0.05
    assert pixel_spread(folder / "latents.png") > 0.05


def test_eval_prints_the_test_bits_per_dim(digits_run):
    folder, _ = digits_run
    metrics = json.loads((folder / "metrics.json").read_text())["heldout"]
    text = run_main(["eval", str(folder)])
    assert text.startswith(f"test set: {metrics['bits_per_dim']:.4f} ± ")
    record = json.loads(run_main(["eval", str(folder), "--json"]))
    assert record["bits_per_dim"] == pytest.approx(metrics["bits_per_dim"])


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--dataset", "digits", "--n-samples", "500"], "fixed training/validation/test split"),
        (["--dataset", "digits", "--model", "realnvp"], "need an image model .*--model multiscale"),
        (["--dataset", "rings", "--model", "multiscale"], "models images of discrete pixels"),
        (
            ["--dataset", "digits", "--couplings", "2"],
            "--couplings does not apply to --model multiscale",
        ),
    ],
)
def test_images_and_models_must_go_together(argv, expected, tmp_path, capsys):
    assert main(["train", *argv, "--quiet", "-o", str(tmp_path / "run")]) == 2
    assert re.search(expected, capsys.readouterr().err)


def test_compare_points_to_the_digits_benchmark(capsys, tmp_path):
    assert main(["compare", "--dataset", "digits", "-o", str(tmp_path / "c")]) == 2
    assert "python -m benchmarks.digits" in capsys.readouterr().err


def test_compare_runs_refuses_image_runs(digits_run, capsys, tmp_path):
    folder, _ = digits_run
    assert main(["compare-runs", str(folder), str(folder), "-o", str(tmp_path / "c.png")]) == 2
    assert "models 64 dimensions; compare-runs draws densities in the plane" in (
        capsys.readouterr().err
    )
