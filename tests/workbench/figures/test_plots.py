import math
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch.distributions import MultivariateNormal  # noqa: E402

import flowforge  # noqa: E402
from flowforge import AffineCoupling, Multivariate, realnvp  # noqa: E402
from flowforge.workbench.figures.curves import plot_learning_curves  # noqa: E402
from flowforge.workbench.figures.plots import (  # noqa: E402
    log_prob_grid,
    part_model,
    plot_compare_model_steps,
    plot_inverse_samples,
    plot_log_prob,
    plot_log_prob_and_samples,
    plot_model_steps,
    plot_samples,
)
from flowforge.workbench.figures.runs import save_figure  # noqa: E402
from tests.workbench.helpers import pixel_spread  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_the_library_and_the_star_import_work_without_the_workbench_extra():
    """Without matplotlib, scikit-learn, safetensors and tqdm, ``from flowforge import *``
    still works, and a plot helper says what to install when it is called."""
    code = (
        "import sys\n"
        "for name in ('matplotlib', 'sklearn', 'safetensors', 'tqdm'): sys.modules[name] = None\n"
        "import flowforge; from flowforge import *\n"
        "model = realnvp(); fit(model, model.sample(64).detach(), epochs=1, progress=False)\n"
        "try:\n    plot_log_prob(model)\nexcept ImportError as e: print(e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "flowforge.plot_log_prob needs the workbench extra" in result.stdout
    assert "pip install 'flowforge[workbench]'" in result.stdout


def test_the_notebooks_plot_names_are_public():
    for name in ("plot_log_prob", "plot_samples", "plot_log_prob_and_samples"):
        assert callable(getattr(flowforge, name))
    for name in ("plot_inverse_samples", "part_model", "plot_model_steps"):
        assert getattr(flowforge, name) is globals()[name]


def test_the_grid_is_the_log_density_clipped_as_in_the_notebook():
    x0, x1, y = log_prob_grid(Multivariate(2), -5, 5, steps=41, min_prob=-10)
    exact = -(x0**2 + x1**2) / 2 - math.log(2 * math.pi)  # standard normal in 2-D
    inside = exact >= -10
    np.testing.assert_allclose(y[inside], exact[inside], atol=1e-5)
    assert np.all(y[~inside] == -11) and (~inside).any()
    assert x0[3, 0] == pytest.approx(-5 + 3 * 0.25) and x1[0, 3] == pytest.approx(-5 + 3 * 0.25)


def test_a_bounded_base_is_clipped_not_nan():
    base = flowforge.families.base_distribution("uniform", 2)  # support [-3, 3]^2
    _, _, y = log_prob_grid(base, -4, 4, steps=9)
    assert np.isfinite(y).all()
    assert y[0, 0] == -11 and y[4, 4] == pytest.approx(-2 * math.log(6))


def test_plot_log_prob_draws_into_the_given_axis_only():
    before = plt.get_fignums()
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_log_prob(MultivariateNormal(torch.zeros(2), torch.eye(2)), steps=50, ax=ax) is None
    assert len(fig.axes) == 2  # the plot and its colour bar
    assert fig.axes[1].get_ylabel() == "log-density (nats)"
    assert (ax.get_title(), ax.get_xlabel()) == ("log-density", "x₁ (standardized)")
    assert plt.get_fignums() == before  # pyplot untouched


def test_without_an_axis_it_draws_where_the_notebook_did():
    plt.figure()
    plt.subplot(1, 2, 2)
    assert plot_log_prob(Multivariate(2), steps=20, colorbar=False) is None
    assert plt.gca().collections  # the current axes got the contours


def test_plot_samples_draws_n_points_from_a_model_or_a_distribution():
    for model in (realnvp(2), MultivariateNormal(torch.zeros(2), torch.eye(2))):
        ax = Figure().add_subplot()
        plot_samples(model, n=123, ax=ax)
        assert len(ax.lines[0].get_xdata()) == 123
        assert ax.get_xlim() == (-2.5, 2.5)


def test_inverse_samples_are_the_data_in_latent_space():
    model = realnvp(2)
    data = torch.randn(200, 2)
    ax = Figure().add_subplot()
    plot_inverse_samples(model, data, ax=ax)
    with torch.no_grad():
        z, _ = model.flow.inverse(data)
    np.testing.assert_allclose(ax.collections[0].get_offsets(), z.numpy(), rtol=1e-6)
    assert len(ax.collections) > 1  # the base density's contour lines
    plot_inverse_samples(realnvp(2, base="uniform"), data, ax=Figure().add_subplot())


def test_part_model_keeps_the_first_couplings_and_every_other_layer():
    torch.manual_seed(0)
    model = realnvp(2, couplings=4)
    x = torch.randn(50, 2)
    for k in range(5):
        part = part_model(model, k)
        couplings = [layer for layer in part.flow.layers if isinstance(layer, AffineCoupling)]
        assert (
            couplings
            == [layer for layer in model.flow.layers if isinstance(layer, AffineCoupling)][:k]
        )
        assert len(part.flow.layers) == len(model.flow.layers) - (4 - k)
    torch.testing.assert_close(part_model(model, 4).log_prob(x), model.log_prob(x))
    swapped = x.flip(1)  # no couplings: Split, three Swaps, Merge exchange the columns
    torch.testing.assert_close(
        part_model(model, 0).log_prob(x), model.base_distribution.log_prob(swapped)
    )


def test_model_steps_has_one_panel_per_step():
    fig = Figure()
    assert plot_model_steps(realnvp(2, couplings=2), 3, fig=fig, grid_steps=20) is None
    *panels, bar = fig.axes  # one colour bar for all panels
    assert [ax.get_title() for ax in panels] == ["0 couplings", "1 coupling", "2 couplings"]
    assert bar.get_ylabel() == "log-density (nats)"
    models = {"a": realnvp(2, couplings=2), "b": realnvp(2, couplings=2)}
    fig = Figure()
    assert plot_compare_model_steps(models, 3, fig=fig, grid_steps=20) is None
    assert len(fig.axes) == 7
    assert [fig.axes[0].get_ylabel(), fig.axes[3].get_ylabel()] == ["a\nx₂", "b\nx₂"]


def test_model_steps_share_one_colour_scale():
    """Every panel is drawn with the same levels, so the one colour bar is true for all."""
    torch.manual_seed(0)
    fig = Figure()
    plot_model_steps(realnvp(2, couplings=2), 3, fig=fig, grid_steps=20)
    *panels, bar = fig.axes
    levels = [tuple(ax.collections[0].levels) for ax in panels]
    assert len(set(levels)) == 1
    assert levels[0][0] <= -11  # the clipped value is filled, not left blank
    assert levels[0][-1] >= max(ax.collections[0].get_array().max() for ax in panels)


def test_learning_curves_skip_missing_values():
    ax = Figure().add_subplot()
    history = {"train_nll": [2.0, 1.9, 1.8], "heldout_nll": [None, 1.95, 1.85]}
    assert plot_learning_curves(history, ax=ax) is None
    train, heldout = ax.lines
    assert list(train.get_ydata()) == [2.0, 1.9, 1.8]
    assert np.isnan(heldout.get_ydata()[0]) and list(heldout.get_ydata()[1:]) == [1.95, 1.85]


def test_a_saved_figure_is_a_png_and_blankness_is_measurable(tmp_path):
    # The run's figures are checked for content in tests/workbench/cli/test_train.py.
    fig = Figure()
    plot_log_prob_and_samples(Multivariate(2), n=200, steps=40, fig=fig)
    drawn = save_figure(fig, tmp_path / "a.png")
    assert drawn.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pixel_spread(drawn) > 0.05
    blank = save_figure(Figure(), tmp_path / "blank.png")
    assert pixel_spread(blank) == 0.0


def test_the_notebooks_side_by_side_figure():
    """Called as in the notebook, it draws a new pyplot figure and returns None, so that
    Jupyter does not show the figure twice."""
    before = set(plt.get_fignums())
    assert plot_log_prob_and_samples(Multivariate(2), n=100, steps=30) is None
    (new,) = set(plt.get_fignums()) - before
    fig = plt.figure(new)
    assert len(fig.axes) == 3
    assert {"log-density", "100 samples"} <= {ax.get_title() for ax in fig.axes}
