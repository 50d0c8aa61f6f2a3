"""The course notebook, executed in a real Jupyter kernel with ``from flowforge import *``.

What a student sees: the cells (``course_cells``) run with zero errors; each figure cell
displays exactly one image and no other cell displays one (a helper that returned its
figure would be shown twice by the inline backend); a training cell's last line shows a
one-line summary, not a hundred numbers; nothing prints a warning (tqdm's "IProgress
not found" among them); and both trained models reach the notebook's target, held-out
NLL below 1.9 nats per point, on fresh points of the same distribution.
"""

from __future__ import annotations

import json

import pytest

from tests.notebook.course_cells import CELLS, FIGURE_CELLS, TRAINING_CELLS

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

# The test's own last cell (not the notebook's): held-out NLL on fresh, standardized moons.
HELDOUT_CELL = """
import json as _json
_fresh = sklearn.datasets.make_moons(n_samples=50_000, noise=.1, random_state=7)[0]
_fresh = (_fresh - _fresh.mean(0)) / _fresh.std(0)
_x = torch.tensor(_fresh, dtype=torch.float32, device=device)
with torch.no_grad():
    print("HELDOUT", _json.dumps([float(-m.log_prob(_x).mean()) for m in (model, model2)]))
"""

TARGET = 1.9


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """The notebook after execution, and each code cell's notebook number."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for _, source in CELLS]
    nb.cells.append(nbformat.v4.new_code_cell(HELDOUT_CELL))
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    client = nbclient.NotebookClient(
        nb,
        timeout=900,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(tmp_path_factory.mktemp("notebook"))}},
    )
    client.execute()
    return nb, [number for number, _ in CELLS] + ["heldout"]


def _outputs(nb, numbers, kind):
    return {n: [o for o in c.outputs if o.output_type in kind] for n, c in zip(numbers, nb.cells)}


def test_every_cell_runs_without_error(executed):
    nb, numbers = executed
    errors = {
        n: f"{o.ename}: {o.evalue}"
        for n, outputs in _outputs(nb, numbers, {"error"}).items()
        for o in outputs
    }
    assert errors == {}


def test_each_figure_cell_displays_exactly_one_image(executed):
    nb, numbers = executed
    images = {
        n: sum("image/png" in o.get("data", {}) for o in outputs)
        for n, outputs in _outputs(nb, numbers, {"display_data", "execute_result"}).items()
    }
    assert {n for n, count in images.items() if count} == FIGURE_CELLS
    assert {n: images[n] for n in FIGURE_CELLS} == dict.fromkeys(FIGURE_CELLS, 1)


def test_no_cell_warns(executed):
    nb, numbers = executed
    warned = {
        n: o.text
        for n, outputs in _outputs(nb, numbers, {"stream"}).items()
        for o in outputs
        if "Warning" in o.text or "IProgress" in o.text
    }
    assert warned == {}


def test_training_cell_shows_a_one_line_summary(executed):
    nb, numbers = executed
    results = _outputs(nb, numbers, {"execute_result"})
    for n in TRAINING_CELLS:
        (result,) = results[n]
        text = result["data"]["text/plain"]
        assert "\n" not in text and text.startswith("EpochLosses(100 epochs"), text


def test_both_models_reach_the_notebooks_target(executed):
    nb, numbers = executed
    (stream,) = _outputs(nb, numbers, {"stream"})["heldout"]
    line = next(line for line in stream.text.splitlines() if line.startswith("HELDOUT"))
    nlls = json.loads(line.split(" ", 1)[1])
    assert all(nll < TARGET for nll in nlls), nlls
