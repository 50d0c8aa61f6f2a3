"""No command reports success for, evaluates or samples from a non-finite model (issue 15, 1)."""

import dataclasses
import math
import shutil

import pytest
import torch

from flowforge.workbench.cli.main import main
from flowforge.workbench.runs.checkpoint import load_weights, save_weights
from tests.workbench.helpers import copy_with_heldout_nll

# The reproducer: one step at a rate of 1,000 blows the weights up.
DIVERGING = [
    "--n-samples", "2000", "--n-heldout", "500", "--batch-size", "2000", "--lr", "1000",
    "--epochs", "1", "--warmup", "0", "--ema", "0",
]  # fmt: skip


def one_line_error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    return err


def test_a_diverging_run_is_not_reported_as_a_success(tmp_path, capsys):
    code = main(["train", *DIVERGING, "--quiet", "--output", str(tmp_path / "d1")])
    err = one_line_error(capsys, code)
    assert "diverged in epoch 1" in err and "learning rate" in err
    assert "held-out NLL after" not in capsys.readouterr().out
    assert (tmp_path / "d1" / "config.json").exists()  # kept, to be inspected


def test_a_run_ending_at_an_absurd_nll_is_not_a_success(tiny_run, tmp_path, capsys, monkeypatch):
    from flowforge.workbench.runs import experiment

    real = experiment.train_run

    def absurd(*args, **kwargs):
        outcome = real(*args, **kwargs)
        return dataclasses.replace(
            outcome, heldout=dataclasses.replace(outcome.heldout, mean=1.5e26)
        )

    monkeypatch.setattr(experiment, "train_run", absurd)
    code = main(["train", "--resume", str(_unfinished(tiny_run, tmp_path)), "--quiet"])
    err = one_line_error(capsys, code)
    assert "1.5e+26 nats, beyond any model of the data" in err and "diverged" in err


def _unfinished(run, tmp_path):
    """A copy of ``run`` whose training has not started (its config.json only)."""
    folder = tmp_path / "unfinished"
    folder.mkdir()
    shutil.copy(run / "config.json", folder / "config.json")
    return folder


def _with_nan_weights(run, tmp_path):
    broken = tmp_path / "nan_weights"
    shutil.copytree(run, broken)
    weights = load_weights(broken / "model.safetensors")
    first = next(iter(weights))
    weights[first] = torch.full_like(weights[first], math.nan)
    save_weights(broken / "model.safetensors", weights)
    return broken, first


def _with_heldout_nll(run, tmp_path, nll):
    return copy_with_heldout_nll(run, tmp_path / "diverged", nll)


COMMANDS = {
    "eval": lambda run, tmp_path: ["eval", str(run)],
    "eval-data": lambda run, tmp_path: ["eval", str(run), "--data", str(_points(tmp_path))],
    "sample": lambda run, tmp_path: ["sample", str(run), "-o", str(tmp_path / "s.csv")],
}


def _points(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("0.5,0.2\n1.0,-0.3\n")
    return path


@pytest.mark.parametrize("command", COMMANDS)
def test_a_run_with_non_finite_weights_is_refused(tiny_run, tmp_path, capsys, command):
    run, name = _with_nan_weights(tiny_run, tmp_path)
    err = one_line_error(capsys, main(COMMANDS[command](run, tmp_path)))
    assert "NaN or infinite weights" in err and name in err and "diverged" in err
    assert not (tmp_path / "s.csv").exists()


@pytest.mark.parametrize("nll", [None, "inf", 1.5e26], ids=["nan", "inf", "absurd"])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_run_whose_metrics_say_it_diverged_is_refused(tiny_run, tmp_path, capsys, command, nll):
    run = _with_heldout_nll(tiny_run, tmp_path, nll)
    err = one_line_error(capsys, main(COMMANDS[command](run, tmp_path)))
    assert "the held-out NLL in its metrics.json is" in err and "diverged" in err
    assert not (tmp_path / "s.csv").exists()


def test_a_sample_that_is_not_finite_writes_nothing(tiny_run, tmp_path, capsys, monkeypatch):
    from flowforge.workbench.cli import sample

    real = sample._draw

    def overflowing(*args):
        points = real(*args)
        points[-1, 0] = math.inf
        return points

    monkeypatch.setattr(sample, "_draw", overflowing)
    output = tmp_path / "s.npy"
    err = one_line_error(capsys, main(["sample", str(tiny_run), "-n", "10", "-o", str(output)]))
    assert "sample 9 is not finite" in err and "nothing was written" in err
    assert list(tmp_path.iterdir()) == []  # no file, no temporary file


@pytest.mark.parametrize(
    "nll, dims, problem",
    [
        (2.9, 2, None),
        (-3.0, 2, None),
        (150.0, 64, None),
        (None, 2, "NaN"),
        (math.nan, 2, "NaN"),
        ("inf", 2, "infinite"),
        (-math.inf, 2, "infinite"),
        (2001.0, 2, "2001 nats, beyond any model of the data (at most ±2000)"),
        (-1e9, 64, "beyond any model"),
        ("x", 2, "not a number"),
    ],
)
def test_nll_problem(nll, dims, problem):
    from flowforge.workbench.cli import health

    found = health.nll_problem(nll, dims)
    assert found == problem if problem is None else problem in found
