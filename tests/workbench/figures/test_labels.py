"""Every figure a run writes is labelled: each panel that shows data has a title and axis
labels, and each colour-coded panel (filled contours, an image) a labelled colour bar
that belongs to it; the learning curves keep the later epochs readable."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from flowforge.workbench.data import Standardization, two_moons_splits  # noqa: E402
from flowforge.workbench.figures.curves import plot_learning_curves  # noqa: E402
from flowforge.workbench.runs.config import RunConfig  # noqa: E402
from flowforge.workbench.runs.kinds import build_model, run_kind  # noqa: E402
from tests.workbench.helpers import tiny_config  # noqa: E402

HISTORY = {"train_nll": [3.0, 2.5, 2.2], "heldout_nll": [2.9, 2.4, 2.3]}


def _points():
    return tiny_config(), two_moons_splits(800, 200, seed=2)[0].points, {}


def _conditional():
    config = tiny_config(
        model_options={"width": 2, "couplings": 2, "hidden": 8, "context_width": 2},
        extra={"context": {"kind": "label", "classes": 2}},
    )
    return config, two_moons_splits(800, 200, seed=2)[0].points, {}


def _images():
    options = {"image_shape": [1, 8, 8], "levels": 17, "scales": 2, "steps": 1, "hidden": 4}
    config = RunConfig(
        model="multiscale",
        model_options=options,
        data={"name": "digits"},
        standardization=Standardization((0.0,) * 64, (1.0,) * 64),
        recipe={"epochs": 1},
    )
    images = torch.randint(0, 17, (100, 64)).float()
    return config, images, {"dims": 64, "levels": 17}


@pytest.fixture(scope="module", params=[_points, _conditional, _images], ids=lambda f: f.__name__)
def run_figures(request):
    """The figures of a freshly built model of each run kind, as a run draws them."""
    config, data, heldout = request.param()
    torch.manual_seed(0)
    model = build_model(config)
    kind = run_kind(config)
    figures = kind.figures(model, data, {**HISTORY, "heldout": heldout}, 0)
    return kind, figures


def _colour_bars(fig: Figure) -> list:
    return [ax._colorbar for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]


def _colour_coded(ax: Axes) -> list:
    return [c for c in (*ax.collections, *ax.images) if isinstance(c, ContourSet | AxesImage)]


def _shows_data(ax: Axes) -> bool:
    return bool(ax.lines or ax.collections or ax.images or ax.patches)


def _filled(artist) -> bool:
    return isinstance(artist, AxesImage) or artist.filled


def test_every_panel_has_a_title_and_axis_labels(run_figures):
    _, figures = run_figures
    for name, fig in figures.items():
        suptitle = fig._suptitle.get_text() if fig._suptitle else ""
        panels = [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is None]
        assert any(_shows_data(ax) for ax in panels), name
        for ax in filter(_shows_data, panels):
            assert ax.get_title() or suptitle, f"{name}: a panel without a title"
            if ax.axison:  # image panels hide their axes: their title says what they show
                assert ax.get_xlabel() and ax.get_ylabel(), f"{name}: {ax.get_title()!r}"


def test_every_colour_coded_panel_has_a_labelled_colour_bar_of_its_own_scale(run_figures):
    _, figures = run_figures
    for name, fig in figures.items():
        bars = _colour_bars(fig)
        assert all(bar.ax.get_ylabel() for bar in bars), f"{name}: a colour bar without a label"
        for ax in fig.axes:
            for artist in filter(
                _filled, _colour_coded(ax) if ax not in [b.ax for b in bars] else []
            ):
                same = [
                    bar
                    for bar in bars
                    if np.allclose(bar.mappable.get_clim(), artist.get_clim())
                    and bar.mappable.get_cmap().name == artist.get_cmap().name
                ]
                assert same, f"{name}: {ax.get_title()!r} has no colour bar of its scale"


def test_each_kind_writes_its_figures_and_every_one_has_a_caption(run_figures):
    kind, figures = run_figures
    expected = {
        "Points": {"density_and_samples.png", "samples_on_data.png", "latent.png"},
        "ConditionalPoints": {"density_given_label_0.png", "density_given_label_1.png"},
        "Images": {"samples.png", "latents.png"},
    }[type(kind).__name__]
    assert expected | {"learning_curves.png"} <= set(figures)
    for name in figures:
        assert len(kind.caption(name)) > 40, name


def test_a_conditional_density_says_which_label_it_is_given(run_figures):
    kind, figures = run_figures
    for label in (0, 1):
        fig = figures.get(f"density_given_label_{label}.png")
        if fig is not None:
            assert f"label {label}" in fig._suptitle.get_text()


def test_image_learning_curves_are_per_image_with_bits_per_dimension(run_figures):
    kind, figures = run_figures
    (ax, *rest) = figures["learning_curves.png"].axes
    if type(kind).__name__ == "Images":
        assert ax.get_ylabel() == "NLL (nats per image)"
        assert [child.get_ylabel() for child in ax.child_axes] == ["bits per dimension"]
        assert ax.get_legend().get_texts()[1].get_text() == "test set"
    else:
        assert ax.get_ylabel() == "NLL (nats per point)"


def _ylim(history: dict) -> tuple[float, float]:
    ax = Figure().add_subplot()
    plot_learning_curves(history, ax=ax)
    return ax.get_ylim(), ax


def test_a_huge_first_epoch_does_not_flatten_the_learning_curves():
    rest = list(1.9 + 0.05 * np.exp(-np.arange(39) / 10))
    (low, high), ax = _ylim({"train_nll": [50.0, *rest], "heldout_nll": [49.0, *rest]})
    assert high < 5 and low < 1.9
    assert "epoch 1 clipped" in ax.get_title()
    assert list(ax.lines[0].get_ydata())[0] == 50.0  # clipped by the axis, not dropped


def test_curves_without_an_outlier_are_shown_whole_with_integer_epoch_ticks():
    values = [3.0, 2.5, 2.2, 2.1, 2.05, 2.0]
    (low, high), ax = _ylim({"train_nll": values, "heldout_nll": values})
    assert low < 2.0 and high > 3.0 and "clipped" not in ax.get_title()
    ticks = ax.xaxis.get_major_locator().tick_values(1, 6)
    assert np.allclose(ticks, np.round(ticks))


def test_low_first_epochs_are_never_clipped():
    values = [0.5, 1.9, 1.91, 1.9, 1.92, 1.9]
    (low, high), ax = _ylim({"train_nll": values, "heldout_nll": values})
    assert low < 0.5 and high > 1.92 and "clipped" not in ax.get_title()
