"""``flowforge train --target``: the run folder, and ``eval`` and ``sample`` on it."""

import json

import numpy as np
import pytest
import torch

from flowforge import load, targets
from flowforge.workbench.cli.main import main

ARGS = ["--iterations", "200", "--layers", "2", "--hidden", "16", "--components", "8"]
ARGS += ["--diagnosis-samples", "20000", "--quiet"]


@pytest.fixture(scope="module")
def target_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs") / "circle"
    assert main(["train", "--target", "circular-mixture", *ARGS, "-o", str(folder)]) == 0
    return folder


@pytest.mark.slow
def test_the_run_folder_holds_the_diagnosis_figures_and_report(target_run):
    metrics = json.loads((target_run / "metrics.json").read_text())
    d = metrics["diagnosis"]
    assert abs(d["log_z_error"]) < 0.05  # the exact normalizer is known
    assert d["modes_covered"] == 8 and not d["disagree"]
    assert d["finite_fraction"] == 1.0
    assert metrics["epochs"] == 2  # 200 steps in rounds of 100
    truth = targets.get("circular-mixture")
    assert metrics["heldout"]["what"] == "exact samples of the target"
    # the NLL of exact samples is at least the target's entropy, about -E_p log p
    x = truth.sample(20_000, generator=torch.Generator().manual_seed(0))
    entropy = float(-(truth.log_prob(x) - truth.log_normalizer).mean())
    assert metrics["heldout"]["nll"] > entropy - 0.05
    for name in ("density.png", "samples.png", "mode_mass.png", "loss.png", "report.html"):
        assert (target_run / name).is_file(), name
    assert "broad proposal" in (target_run / "report.html").read_text()


@pytest.mark.slow
def test_eval_prints_the_diagnosis(target_run, capsys):
    assert main(["eval", str(target_run), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    stored = json.loads((target_run / "metrics.json").read_text())["diagnosis"]
    assert printed["log_z"] == pytest.approx(stored["log_z"], abs=1e-12)  # the run's seed
    assert main(["eval", str(target_run)]) == 0
    assert "ESS" in capsys.readouterr().out


@pytest.mark.slow
def test_sample_writes_the_flow_s_samples(target_run, tmp_path):
    path = tmp_path / "x.npy"
    assert main(["sample", str(target_run), "-n", "64", "-o", str(path), "--seed", "3"]) == 0
    model, _ = load(target_run)
    torch.manual_seed(3)
    with torch.no_grad():
        expected = model.sample(64).double().numpy()
    np.testing.assert_allclose(np.load(path), expected, rtol=1e-6)


@pytest.mark.slow
def test_resume_of_a_finished_run_changes_nothing(target_run, capsys):
    assert main(["train", "--resume", str(target_run)]) == 0
    assert "finished training already" in capsys.readouterr().out


def test_bad_target_options_are_one_line(tmp_path, capsys):
    assert main(["train", "--target", "nope", "-o", str(tmp_path / "a")]) == 2
    assert "unknown target 'nope'; choose one of two-moons" in capsys.readouterr().err
    assert (
        main(["train", "--target", "gmm40", "--dataset", "rings", "-o", str(tmp_path / "b")]) == 2
    )
    assert "drop --dataset" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_the_config_records_the_base_s_degrees_of_freedom(target_run, tmp_path, capsys):
    from flowforge.distributions import GaussianMixture, StudentTMixture
    from flowforge.workbench.runs.config import RunConfig
    from flowforge.workbench.runs.target_kind import build_sampler, target_config

    recorded = json.loads((target_run / "config.json").read_text())["model"]["options"]
    assert recorded["df"] is None  # a target with bounds: Gaussian components
    posterior = target_config("logistic-breast-cancer", {"layers": 1}, {}, 0)
    assert posterior.model_options["df"] == 5.0
    assert type(build_sampler(posterior).base_distribution) is StudentTMixture
    gaussian = target_config("logistic-breast-cancer", {"layers": 1, "df": float("inf")}, {}, 0)
    assert gaussian.model_options["df"] is None
    # a run made before the Student-t base records no df: it rebuilds as it trained
    older = RunConfig(**{**vars(posterior), "model_options": {"layers": 1}})
    assert type(build_sampler(older).base_distribution) is GaussianMixture
    with pytest.raises(SystemExit) as exit:
        main(["train", "--target", "funnel", "--df", "0", "-o", str(tmp_path / "c")])
    assert exit.value.code == 2
    assert "argument --df: must be greater than 0" in capsys.readouterr().err
