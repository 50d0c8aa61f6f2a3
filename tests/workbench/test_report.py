import base64
import re

from flowforge.workbench.report import render

CONFIG = {
    "model": {"name": "realnvp", "options": {"couplings": 4, "hidden": 16}},
    "data": {"name": "two_moons", "noise": 0.1},
    "recipe": {"epochs": 10, "lr": 0.005},
    "seed": 0,
}
METRICS = {
    "heldout": {"nll": 1.8853, "stderr": 0.0054, "n": 20000, "nll_original_units": 1.06},
    "final_train_nll": 1.87,
    "epochs": 10,
    "parameters": 1352,
    "versions": {"torch": "<b>2.13</b>"},
}


def test_the_report_is_one_self_contained_page_with_figures_and_numbers():
    pngs = [b"\x89PNG first", b"\x89PNG second"]
    page = render("run <1>", CONFIG, METRICS, [(pngs[0], "one"), (pngs[1], "two & more")])
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert [base64.b64decode(s.split(",", 1)[1]) for s in sources] == pngs
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert not re.search(r'(src|href)="(https?:|/|\.)', page)  # nothing fetched from elsewhere
    assert "<td>1.8853</td>" in page and "<td>0.0054</td>" in page and "<td>20000</td>" in page
    assert "<td>1352</td>" in page
    assert "two &amp; more" in page and "run &lt;1&gt;" in page
    assert "&lt;b&gt;2.13&lt;/b&gt;" in page and "<b>2.13</b>" not in page  # escaped


def test_missing_numbers_show_as_a_dash():
    page = render("r", CONFIG, {"heldout": {"nll": float("nan")}}, [])
    assert "<th>held-out NLL (nats per point, standardized)</th><td>–</td>" in page


def test_small_and_large_numbers_keep_their_digits():
    page = render("r", {**CONFIG, "recipe": {"lr": 1e-5, "weight_decay": 0.0}}, {"epochs": 3}, [])
    assert "lr=1e-05, weight_decay=0</td>" in page
