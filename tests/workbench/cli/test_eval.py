import json
import math
import shutil

import numpy as np
import pytest
import torch

from flowforge import load
from flowforge.workbench.cli.main import main
from flowforge.workbench.data import MoonsDensity, two_moons_splits

FLOOR_KEYS = {
    "true_entropy",
    "true_entropy_stderr",
    "gap_to_entropy",
    "gap_stderr",
    "kl_paired",
    "kl_paired_stderr",
}


def eval_json(capsys, *argv):
    assert main(["eval", *map(str, argv), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def expected_scores(run, original_points: np.ndarray) -> tuple[float, float]:
    """NLL in model units and in original units, computed here from the formulas."""
    model, standardization = load(run)
    mean, std = np.array(standardization.mean), np.array(standardization.std)
    z = torch.as_tensor((original_points - mean) / std, dtype=torch.float32)
    with torch.no_grad():
        log_q = model.log_prob(z).double().numpy()
    return float(-log_q.mean()), float(-(log_q - np.log(std).sum()).mean())


def heldout_original(n_samples=1500, n_heldout=500):
    _, heldout = two_moons_splits(n_samples, n_heldout, noise=0.1, seed=0)
    return heldout.original_points.double().numpy()


def test_eval_prints_the_heldout_nll_with_its_standard_error(tiny_run, capsys):
    assert main(["eval", str(tiny_run)]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert f"NLL {metrics['heldout']['nll']:.4f} ± {metrics['heldout']['stderr']:.4f}" in out
    assert "n=500" in out


def test_eval_json_has_exactly_the_documented_keys_and_values(tiny_run, capsys):
    result = eval_json(capsys, tiny_run)
    assert set(result) == {"nll", "nll_original_units", "stderr", "n", *FLOOR_KEYS}
    nll, nll_original = expected_scores(tiny_run, heldout_original())
    assert result["n"] == 500
    assert result["nll"] == pytest.approx(nll, abs=1e-4)
    assert result["nll_original_units"] == pytest.approx(nll_original, abs=1e-4)
    assert 0 < result["stderr"] < 0.2


def test_eval_gives_the_gap_to_the_true_entropy_and_the_paired_kl(tiny_run, capsys):
    result = eval_json(capsys, tiny_run)
    metrics = json.loads((tiny_run / "metrics.json").read_text())["heldout"]
    assert result["true_entropy"] == metrics["true_entropy"]  # train's estimate, reused
    assert 1.7 < result["true_entropy"] < 1.95 and 0 < result["true_entropy_stderr"] < 0.01
    assert result["gap_to_entropy"] == pytest.approx(result["nll"] - result["true_entropy"])
    # The paired KL from its definition: the truth and the model on the same held-out points.
    model, standardization = load(tiny_run)
    _, heldout = two_moons_splits(1500, 500, noise=0.1, seed=0)
    log_p = MoonsDensity(0.1, standardization).log_prob(heldout.points)
    with torch.no_grad():
        log_q = model.log_prob(heldout.points).double()
    assert result["kl_paired"] == pytest.approx(float((log_p - log_q).mean()), abs=1e-5)
    assert result["kl_paired_stderr"] == pytest.approx(float((log_p - log_q).std() / 500**0.5))
    assert main(["eval", str(tiny_run)]) == 0
    assert f"gap to the true entropy H = {result['true_entropy']:.4f}" in capsys.readouterr().out


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_eval_scores_a_users_points_in_original_units(tiny_run, tmp_path, capsys, suffix):
    points = np.array([[0.0, 0.5], [1.0, -0.4], [-0.8, 0.2], [2.0, 0.3]])
    path = tmp_path / f"points{suffix}"
    if suffix == ".npy":
        np.save(path, points)
    else:
        np.savetxt(path, points, delimiter=",", header="x,y", comments="")
    result = eval_json(capsys, tiny_run, "--data", path)
    nll, nll_original = expected_scores(tiny_run, points)
    assert result["n"] == 4
    assert result["nll"] == pytest.approx(nll, abs=1e-5)
    assert result["nll_original_units"] == pytest.approx(nll_original, abs=1e-5)


def test_the_heldout_points_as_a_file_score_like_the_heldout_set(tiny_run, tmp_path, capsys):
    path = tmp_path / "heldout.npy"
    np.save(path, heldout_original())
    from_file = eval_json(capsys, tiny_run, "--data", path)
    heldout = {k: v for k, v in eval_json(capsys, tiny_run).items() if k not in FLOOR_KEYS}
    assert from_file == pytest.approx(heldout, abs=1e-5)  # a file gets no floor comparison


def _write_bad(kind: str, folder):
    path = folder / {"object": "bad.npy", "txt": "bad.txt", "binary": "bad.csv"}.get(
        kind, "bad.csv"
    )
    if kind == "width":
        np.savetxt(path, np.zeros((3, 3)), delimiter=",")
    elif kind == "nan":
        path.write_text("0.1,0.2\nnan,0.3\n0.5,inf\n")
    elif kind == "empty":
        path.write_text("x,y\n")
    elif kind == "text":
        path.write_text("a,b\n1,two\n")
    elif kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "object":
        np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    elif kind == "txt":
        path.write_text("1,2\n")
    elif kind == "missing":
        path = folder / "missing.csv"
    return path


@pytest.mark.parametrize(
    "kind, message",
    [
        ("width", "expected 2 columns"),
        ("nan", "2 row(s) hold NaN or infinite values (first: row 1)"),
        ("empty", "has no points"),
        ("text", "not a CSV file of numbers"),
        ("binary", "bad.csv: not a"),
        ("object", "not a readable .npy array"),
        ("txt", "unsupported file type '.txt'"),
        ("missing", "no such file"),
    ],
)
def test_bad_data_files_give_a_one_line_error(tiny_run, tmp_path, capsys, kind, message):
    path = _write_bad(kind, tmp_path)
    assert main(["eval", str(tiny_run), "--data", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(path) in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate", "is truncated"),
        ("flip", "is corrupt"),
        ("pickle", "is truncated or is not a safetensors file"),
        ("delete", "did not finish; continue it with `flowforge train --resume"),
    ],
)
def test_a_damaged_weights_file_is_reported_not_loaded(tiny_run, tmp_path, capsys, damage, message):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    weights = run / "model.safetensors"
    data = bytearray(weights.read_bytes())
    if damage == "truncate":
        weights.write_bytes(data[: len(data) // 2])
    elif damage == "flip":
        data[-5] ^= 0xFF
        weights.write_bytes(data)
    elif damage == "pickle":
        torch.save(load(tiny_run).model.state_dict(), weights)
    else:
        weights.unlink()
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(weights) in err
    assert len(err.strip().splitlines()) == 1


def test_eval_of_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["eval", str(tmp_path)]) == 2
    assert "is not a flowforge run folder (it has no config.json)" in capsys.readouterr().err


@pytest.fixture(scope="module")
def checkerboard_run(tmp_path_factory):
    from tests.workbench.helpers import TINY

    folder = tmp_path_factory.mktemp("runs") / "checkerboard"
    argv = ["train", *TINY, "--dataset", "checkerboard", "--quiet", "--output", str(folder)]
    assert main(argv) == 0
    return folder


@pytest.mark.parametrize(
    "rows",
    [
        pytest.param("0.5,0.2\n", id="one-point"),
        pytest.param("5.0,5.0\n0.5,0.2\n", id="zero-true-density"),
        pytest.param("1e20,1e20\n0.5,0.2\n", id="far-away"),
        pytest.param("-1e20,3\n1e20,-1e20\n", id="all-far-away"),
    ],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_eval_of_any_file_of_points_never_crashes(
    checkerboard_run, tmp_path, capsys, rows, as_json
):
    # The checkerboard's true density is zero outside its squares: no floor comparison holds.
    path = tmp_path / "points.csv"
    path.write_text(rows)
    assert main(["eval", str(checkerboard_run), "--data", str(path), *["--json"] * as_json]) == 0
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    assert "KL" not in out and "entropy" not in out
    assert "no gap to the true entropy or KL(truth ‖ model)" in err
    if as_json:
        assert set(json.loads(out)) == {"nll", "nll_original_units", "stderr", "n"}


def test_the_kl_is_given_for_the_heldout_set_only(tiny_run, tmp_path, capsys):
    samples = tmp_path / "samples.csv"
    assert main(["sample", str(tiny_run), "-n", "500", "-o", str(samples)]) == 0
    capsys.readouterr()
    assert not FLOOR_KEYS & set(eval_json(capsys, tiny_run, "--data", samples))
    assert FLOOR_KEYS <= set(eval_json(capsys, tiny_run))


def test_points_far_away_are_scored_not_called_outside_a_normal_base(tiny_run, tmp_path, capsys):
    # A float32 model overflows to -inf at 1e20; the normal base's density is positive
    # everywhere, so the point is rescored in float64 (issue 15, 10), not "outside".
    path = tmp_path / "far.csv"
    path.write_text("1e20,1e20\n0.5,0.2\n")
    result = eval_json(capsys, tiny_run, "--data", path)
    assert math.isfinite(result["nll"]) and result["nll"] > 1e3  # far less likely, not inf
    assert "outside" not in capsys.readouterr().err
