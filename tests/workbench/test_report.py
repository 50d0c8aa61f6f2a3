"""A run's report.html: self-contained, only rows that apply to the run's kind, every
estimate with its standard error, the notebook's target, captions that name the
notebook's questions."""

import base64
import html
import re

import pytest

from flowforge.workbench.report import render
from flowforge.workbench.runs.kinds import run_kind
from tests.workbench.helpers import tiny_config, train_tiny

CONFIG = {
    "model": {"name": "realnvp", "options": {"couplings": 4, "hidden": 16}},
    "data": {"name": "two_moons", "noise": 0.1},
    "recipe": {"epochs": 10, "lr": 0.005},
    "seed": 0,
}
FLOOR = {
    "true_entropy": 1.8232,
    "true_entropy_stderr": 0.0023,
    "gap_to_entropy": 0.0621,
    "gap_stderr": 0.0054,
    "kl_paired": 0.0602,
    "kl_paired_stderr": 0.0011,
}
METRICS = {
    "heldout": {"nll": 1.8853, "stderr": 0.0054, "n": 20000, "nll_original_units": 1.06},
    "final_train_nll": 1.87,
    "epochs": 10,
    "parameters": 1352,
    "versions": {"torch": "<b>2.13</b>"},
}
DISTANCES = {
    "no_true_density": "pinwheel has no closed-form density here: no entropy, gap or KL",
    "sample_distances": {
        "n": 1000,
        "bandwidths": {"median": 1.76, "fine": 0.134},
        "model": {"energy": 0.046, "mmd2": {"median": 0.0116, "fine": 0.0188}, "sliced_w1": 0.26},
        "fresh_sample_of_the_data": {
            "energy": -0.00135,
            "mmd2": {"median": -0.000534, "fine": 0.000104},
            "sliced_w1": 0.0414,
        },
    },
}


def _page(config, heldout: dict, **metrics) -> str:
    """The report page of a run with ``config`` whose held-out record is ``heldout``."""
    record = {**METRICS, **metrics, "heldout": heldout}
    rows = run_kind(config).report_rows(config, record)
    return render("r", config.to_dict(), record, [], first_rows=rows)


def _cells(page: str) -> dict[str, str]:
    """The top-level table's row name -> cell (HTML), in order."""
    table = page.split("<table>", 1)[1]
    pattern = r"<tr><th>([^<]*)</th><td>(.*?)</td></tr>(?=<tr><th>|</table>)"
    return {html.unescape(k): v for k, v in re.findall(pattern, table)}


def test_the_report_is_one_self_contained_page_with_figures_and_numbers():
    pngs = [b"\x89PNG first", b"\x89PNG second"]
    page = render("run <1>", CONFIG, METRICS, [(pngs[0], "one"), (pngs[1], "two & more")])
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert [base64.b64decode(s.split(",", 1)[1]) for s in sources] == pngs
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:|/|\.)', page)  # nothing fetched from elsewhere
    assert "<td>1352</td>" in page
    assert "two &amp; more" in page and "run &lt;1&gt;" in page
    assert "&lt;b&gt;2.13&lt;/b&gt;" in page and "<b>2.13</b>" not in page  # escaped


def test_missing_numbers_are_left_out_not_shown_as_a_dash():
    page = _page(tiny_config(), {"nll": float("nan"), "stderr": None})
    assert "–" not in page
    assert "held-out NLL" not in page and "<th>epochs</th><td>10</td>" in page


def test_settings_keep_their_digits():
    page = render("r", {**CONFIG, "recipe": {"lr": 1e-5, "weight_decay": 0.0}}, {"epochs": 3}, [])
    assert "lr=1e-05, weight_decay=0</td>" in page and "noise=0.1," not in page


def test_the_moons_report_shows_every_estimate_with_its_standard_error():
    page = _page(tiny_config(), {**METRICS["heldout"], **FLOOR})
    cells = _cells(page)
    assert "–" not in page
    assert cells["held-out NLL (nats per point, standardized units)"] == "1.8853 ± 0.0054"
    assert cells["held-out NLL in the data's original units (nats per point)"] == "1.0600 ± 0.0054"
    assert cells["true entropy H of the data (nats, Monte Carlo)"] == "1.8232 ± 0.0023"
    assert cells["gap of the held-out NLL to H (nats)"] == "0.0621 ± 0.0054"
    assert cells["KL(truth ‖ model), paired on the held-out points (nats)"] == "0.0602 ± 0.0011"
    assert cells["held-out points"] == "20000"
    assert "no true density" not in page and "sample distances" not in page


@pytest.mark.parametrize(("nll", "verdict"), [(1.8853, "met (1.8853 &lt; 1.9)"), (1.95, "not met")])
def test_the_moons_report_says_whether_the_notebooks_target_was_met(nll, verdict):
    page = _page(tiny_config(), {**METRICS["heldout"], "nll": nll})
    (cell,) = [v for k, v in _cells(page).items() if k.startswith("notebook's target")]
    assert verdict in cell and ("not met" in cell) == (nll >= 1.9)


def test_the_target_is_only_for_the_unconditional_moons_at_the_notebooks_noise():
    conditional = tiny_config(extra={"context": {"kind": "label", "classes": 2}})
    noisier = tiny_config(data={**tiny_config().data, "noise": 0.2})
    pinwheel = tiny_config(data={"name": "pinwheel", "n_samples": 800, "n_heldout": 200})
    for config in (conditional, noisier, pinwheel):
        assert "target" not in _page(config, METRICS["heldout"])
    page = _page(conditional, {**METRICS["heldout"], **FLOOR})
    assert "H(X | label)" in page and "p(x | label)" in page


def test_sample_distances_are_a_table_of_named_rows():
    pinwheel = tiny_config(data={"name": "pinwheel", "n_samples": 800, "n_heldout": 200})
    page = _page(pinwheel, {**METRICS["heldout"], **DISTANCES})
    assert "{" not in page.split("<table>", 1)[1] and "mmd2" not in page  # no flattened dict
    rows = re.findall(r"<tr><th>([^<]*)</th><td>([^<]*)</td><td>([^<]*)</td></tr>", page)
    assert rows == [
        ("energy distance", "4.60e-02", "-1.35e-03"),
        ("MMD² (RBF width 1.7600, the median distance)", "1.16e-02", "-5.34e-04"),
        ("MMD² (RBF width 0.1340, the data&#x27;s finest feature)", "1.88e-02", "1.04e-04"),
        ("sliced Wasserstein-1", "2.60e-01", "4.14e-02"),
    ]
    assert "1000 model samples" in page and "1000 fresh data points (floor)" in page
    assert "pinwheel has no closed-form density" in page


def test_the_digits_report_is_in_bits_per_dimension_and_nats_per_image():
    from tests.workbench.runs.test_kinds import image_config

    config = image_config()
    heldout = {
        "nll": 112.88,
        "stderr": 0.46,
        "n": 360,
        "nll_original_units": 112.88,
        "bits_per_dim": 2.5446,
        "bits_per_dim_stderr": 0.0104,
        "dims": 64,
        "levels": 17,
    }
    page = _page(config, heldout, final_train_nll=114.13)
    cells = _cells(page)
    assert "–" not in page and "per point" not in page and "standardized" not in page
    assert "held-out points" not in page and "original units" not in page
    assert list(cells)[:3] == [
        "held-out bits per dimension (test set)",
        "held-out NLL (test set, nats per image)",
        "test images",
    ]
    assert cells["held-out bits per dimension (test set)"] == "2.5446 ± 0.0104"
    assert cells["held-out NLL (test set, nats per image)"] == "112.8800 ± 0.4600"


QUESTIONS = {
    "density_and_samples.png": ["10.5 (c)", "10.5 (e)"],
    "samples_on_data.png": ["10.5 (d)"],
    "latent.png": ["10.5 (f)", "10.6 (a)", "10.6 (b)"],
    "model_steps.png": ["10.5 (h)", "compare-runs"],
    "samples.png": ["10.6 (c)"],
}


def test_a_written_report_names_the_notebooks_question_of_each_figure(tmp_path):
    run = train_tiny(tmp_path / "run")
    page = (run / "report.html").read_text()
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", page)
    assert len(captions) == 5
    for name in ("density_and_samples.png", "samples_on_data.png", "latent.png", "model_steps.png"):
        for question in QUESTIONS[name]:
            assert any(question in c for c in captions), (name, question)
    assert "–" not in page
    assert "± " in _cells(page)["true entropy H of the data (nats, Monte Carlo)"]
    assert re.search(r"notebook&#x27;s target.*?(met|not met)", page)


def test_image_captions_name_the_notebooks_questions():
    from tests.workbench.runs.test_kinds import image_config

    kind = run_kind(image_config())
    assert "10.6 (c)" in kind.caption("samples.png") and "10.5 (f)" in kind.caption("latents.png")
    assert "bits per dimension" in kind.caption("learning_curves.png")
