import json
import math
import subprocess
import sys

import pytest

from flowforge.workbench.cli.main import main
from flowforge.workbench.comparison import DEFAULT_MODELS, Plan
from flowforge.workbench.comparison.table import without_timings

TINY = [
    "--budget", "2", "--n-train", "3000", "--n-heldout", "1000",
    "--samples", "500", "--entropy-samples", "5000",
]  # fmt: skip


def compare(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "flowforge", "compare", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    folders = [tmp_path_factory.mktemp(f"run{i}") for i in range(2)]
    # the flow's epochs fixed: the time rule would choose them from measured seconds
    results = [compare("-o", str(f), *TINY, "--flow-epochs", "4") for f in folders]
    return folders, results


def test_two_runs_give_the_same_table(two_runs):
    folders, results = two_runs
    for r in results:
        assert r.returncode == 0, r.stderr
    first, second = (json.loads((f / "results.json").read_text()) for f in folders)
    assert without_timings(first) == without_timings(second)
    assert first["rows"][2]["train_seconds"] > 0


def test_every_model_and_floor_is_in_the_table(two_runs):
    folders, results = two_runs
    rows = {r["model"]: r for r in json.loads((folders[0] / "results.json").read_text())["rows"]}
    assert set(DEFAULT_MODELS) <= set(rows)
    assert {"truth (fresh sample)", "make_moons (fresh sample)"} <= set(rows)
    for row in rows.values():
        assert set(row["distances"]) == {"energy", "mmd2", "sliced_w1"}
        assert set(row["distances"]["mmd2"]) == {"median", "fine"}
    assert rows["gan"]["heldout_nll"] is None  # no likelihood, but all distances
    assert rows["flow-uniform"]["outside_support"] > 0
    assert rows["flow"]["gap_to_entropy"]["mean"] > 0


def test_the_truth_beats_every_model_on_heldout_data(two_runs):
    folders, _ = two_runs
    rows = json.loads((folders[0] / "results.json").read_text())["rows"]
    truth = rows[0]["heldout_nll"]["mean"]
    for row in rows[2:]:
        nll = row["heldout_nll"]
        if nll is not None:
            assert nll["mean"] == "inf" or nll["mean"] > truth, row["model"]
            kl = row["kl_paired"]
            assert kl["mean"] == "inf" or kl["mean"] > 0


def test_outputs_and_printed_entropy(two_runs):
    folders, results = two_runs
    out = results[0].stdout
    assert "true entropy H = " in out and " ± " in out.split("true entropy H = ")[1].split("\n")[0]
    assert {p.name for p in folders[0].iterdir()} >= {
        "results.json",
        "results.md",
        "comparison.png",
        "report.html",
    }
    html = (folders[0] / "report.html").read_text()
    assert "<table>" in html and "data:image/png;base64," in html and "flow-uniform" in html
    assert "| **flow** |" in (folders[0] / "results.md").read_text()


def test_bad_options_are_one_line_errors(tmp_path, capsys):
    bad = compare("-o", str(tmp_path), "--models", "flow,nope", *TINY)
    assert bad.returncode == 2 and "unknown model" in bad.stderr and "Traceback" not in bad.stderr
    assert main(["compare", "-o", str(tmp_path), "--budget", "0"]) == 2
    assert "budget" in capsys.readouterr().err
    assert main(["compare", "--models", "gan,gan"]) == 2
    assert "twice" in capsys.readouterr().err
    assert main(["compare", "--noise", "0"]) == 2
    assert "noise must be positive" in capsys.readouterr().err
    assert main(["compare", "--samples", "30000"]) == 2
    assert "must not exceed n_heldout" in capsys.readouterr().err


def test_models_option_selects_the_models(tmp_path):
    assert main(["compare", "-o", str(tmp_path), "--models", "gaussian", *TINY]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [r["model"] for r in rows][2:] == ["gaussian"]


def test_plan_turns_the_budget_into_fixed_training_lengths():
    small, large = Plan(10, 90_000), Plan(100, 90_000)
    assert large.epochs("flow") > small.epochs("flow") >= 1
    assert large.epochs("flow") == 200  # at least flowforge train's epochs at the default
    assert Plan(10, 90_000, flow_epochs=7).epochs("flow") == 7
    assert large.epochs("flow-uniform") > small.epochs("flow-uniform") >= 1
    assert large.gan_steps() == pytest.approx(10 * small.gan_steps(), rel=0.01)
    assert Plan(1e-6, 100).epochs("flow") == 1
    assert Plan(10, 90_000).to_dict() == Plan(10, 90_000).to_dict()
    with pytest.raises(ValueError, match="budget"):
        Plan(math.nan, 100)
    with pytest.raises(ValueError, match="unknown model"):
        Plan(10, 100).build("vae")
