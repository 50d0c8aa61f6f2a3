"""``FlowDensity`` against scikit-learn: its own estimator checks, closed-form densities,
its density estimators on the moons, ``Pipeline`` and ``GridSearchCV``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")

from sklearn.datasets import make_moons  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.neighbors import KernelDensity  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from flowforge.errors import InputError  # noqa: E402
from flowforge.integrations.sklearn import FlowDensity  # noqa: E402
from flowforge.workbench.data import MoonsDensity  # noqa: E402

# numpy in, numpy out: on the CPU whatever --device says.
pytestmark = pytest.mark.cpu_only

# A tiny flow for the checks, which fit dozens of times: two MADE layers work for any
# width (scikit-learn's checks fit one column too, which a coupling flow cannot split).
TINY = {"family": "maf", "family_options": {"layers": 2, "hidden": 4}, "epochs": 2}


def _expected_failures(estimator: FlowDensity) -> dict[str, str]:
    """Every check applies: none is expected to fail."""
    return {}


@parametrize_with_checks([FlowDensity(**TINY)], expected_failed_checks=_expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


def _moons(n: int, seed: int) -> np.ndarray:
    return make_moons(n, noise=0.1, random_state=seed)[0]


def _diagonal_gaussian_log_density(X: np.ndarray, mean: np.ndarray, scale: np.ndarray):
    """log N(X; mean, diag(scale^2)), written out."""
    z = (X - mean) / scale
    return -0.5 * (z**2).sum(1) - np.log(scale).sum() - 0.5 * X.shape[1] * np.log(2 * np.pi)


@pytest.mark.parametrize("family", ["realnvp", "nsf", "maf"])
def test_an_untrained_identity_flow_is_the_data_s_diagonal_gaussian(family):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3)) * [0.01, 2.0, 50.0] + [3.0, -1.0, 1e3]
    density = FlowDensity(family, {"zero_init": True}, epochs=0, random_state=0).fit(X)
    np.testing.assert_allclose(density.mean_, X.mean(0))
    np.testing.assert_allclose(density.scale_, X.std(0))
    expected = _diagonal_gaussian_log_density(X, X.mean(0), X.std(0))
    np.testing.assert_allclose(density.score_samples(X), expected, rtol=1e-10, atol=1e-10)
    # scikit-learn's own diagonal Gaussian fitted to the same rows: the same density.
    gaussian = GaussianMixture(1, covariance_type="diag", reg_covar=0.0).fit(X)
    np.testing.assert_allclose(density.score_samples(X), gaussian.score_samples(X), atol=1e-6)
    assert density.n_iter_ == 0
    assert density.score_samples(X).dtype == np.float64


def test_a_constant_column_gets_scale_one():
    X = np.column_stack([np.random.default_rng(1).normal(size=100), np.full(100, 7.0)])
    density = FlowDensity("nsf", {"zero_init": True}, epochs=0, random_state=0).fit(X)
    assert density.scale_[1] == 1.0 and density.mean_[1] == 7.0
    assert np.isfinite(density.score_samples(X)).all()


@pytest.fixture(scope="module")
def moons() -> tuple[np.ndarray, np.ndarray, FlowDensity]:
    train, heldout = _moons(2000, 0), _moons(2000, 1)
    with torch.random.fork_rng():
        flow = FlowDensity("nsf", {"hidden": 32, "layers": 3}, random_state=0).fit(train)
    return train, heldout, flow


def test_on_the_moons_a_flow_beats_a_bad_kernel_and_nears_a_big_mixture(moons):
    train, heldout, flow = moons
    bad_kernel = KernelDensity(bandwidth=1.0).fit(train)
    mixture = GaussianMixture(16, random_state=0).fit(train)
    assert flow.score(heldout) > bad_kernel.score_samples(heldout).mean() + 0.5
    assert flow.score(heldout) > mixture.score(heldout) - 0.1
    # the true density is the best there is (its expected log-likelihood is the highest).
    truth = MoonsDensity(0.1).original_log_prob(torch.as_tensor(heldout)).mean().item()
    assert truth - 0.1 < flow.score(heldout) < truth + 0.02
    assert flow.history_.stopped_early == (flow.n_iter_ < flow.epochs)


def test_the_same_random_state_gives_the_same_flow_and_leaves_torch_alone():
    X = _moons(300, 2)
    settings = {"family": "realnvp", "family_options": {"hidden": 8}, "epochs": 3}
    state = torch.random.get_rng_state()
    first = FlowDensity(**settings, random_state=5).fit(X)
    assert torch.equal(torch.random.get_rng_state(), state)
    second = FlowDensity(**settings, random_state=5).fit(X)
    other = FlowDensity(**settings, random_state=6).fit(X)
    np.testing.assert_array_equal(first.score_samples(X), second.score_samples(X))
    assert not np.array_equal(first.score_samples(X), other.score_samples(X))
    np.testing.assert_array_equal(first.sample(5, random_state=0), second.sample(5, 0))
    assert not np.array_equal(first.sample(5, random_state=0), first.sample(5, 1))
    assert torch.equal(torch.random.get_rng_state(), state)


def test_samples_are_in_the_data_s_units(moons):
    train, _, flow = moons
    shifted = FlowDensity("nsf", {"zero_init": True}, epochs=0).fit(train * 10 + 100)
    samples = shifted.sample(4000, random_state=0)
    assert samples.shape == (4000, 2)
    np.testing.assert_allclose(samples.mean(0), shifted.mean_, atol=0.1 * shifted.scale_.max())
    np.testing.assert_allclose(samples.std(0), shifted.scale_, rtol=0.05)
    # a trained flow's samples score like the data.
    assert abs(flow.score(flow.sample(2000, random_state=0)) - flow.score(train)) < 0.2


def test_early_stopping_off_trains_every_epoch_on_every_row():
    X = _moons(200, 3)
    density = FlowDensity("realnvp", {"hidden": 8}, epochs=4, early_stopping=False).fit(X)
    assert density.n_iter_ == 4
    assert np.isnan(density.history_.heldout_nll).all()


@pytest.mark.parametrize("before", [StandardScaler(), PCA(2)], ids=["scaler", "pca"])
def test_in_a_pipeline(before):
    X = _moons(400, 4)
    pipeline = make_pipeline(before, FlowDensity("realnvp", {"hidden": 8}, epochs=3)).fit(X)
    assert pipeline.score_samples(X).shape == (400,)
    assert np.isfinite(pipeline.score(X))


def test_grid_search_picks_the_options_with_the_best_held_out_score():
    X = _moons(600, 5)
    grid = [{"hidden": 2, "couplings": 1}, {"hidden": 32}]
    search = GridSearchCV(
        FlowDensity("realnvp", epochs=30, random_state=0, recipe_options={"warmup": 0}),
        {"family_options": grid},
        cv=2,
    ).fit(X)
    scores = search.cv_results_["mean_test_score"]
    assert search.best_params_ == {"family_options": grid[int(np.argmax(scores))]}
    assert search.best_params_ == {"family_options": {"hidden": 32}}
    assert search.best_estimator_.get_params()["family_options"] == {"hidden": 32}


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"family": "multiscale"}, "models images"),
        ({"family": "made"}, "unknown family"),
        ({"family_options": {"widht": 3}}, "bad family_options"),
        ({"family": "realnvp", "family_options": {"context_width": 2}}, "drop context_width"),
        ({"recipe_options": {"epochs": 3}}, "as FlowDensity parameters"),
        ({"validation_fraction": 1.5}, "validation_fraction must be in"),
        ({"epochs": -1}, "epochs >= 0"),
    ],
)
def test_bad_settings_get_one_line_errors(settings, message):
    with pytest.raises(InputError, match=message) as error:
        FlowDensity(**settings).fit(_moons(50, 6))
    assert "\n" not in str(error.value)


def test_one_column_for_a_coupling_family_names_the_families_that_work():
    with pytest.raises(InputError, match="family='nsf' or 'maf'"):
        FlowDensity("realnvp").fit(np.arange(10.0)[:, None])


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[0.0, np.nan], [1.0, 2.0]]), "NaN"),
        (np.arange(5.0), "Expected 2D array"),
        (np.zeros((1, 2)), "minimum of 2 is required"),
    ],
    ids=["nan", "1-d", "one-row"],
)
def test_bad_data_is_refused_by_scikit_learn_s_own_messages(X, message):
    with pytest.raises(ValueError, match=message):
        FlowDensity(**TINY).fit(X)


def test_scoring_another_width_is_refused(moons):
    _, _, flow = moons
    with pytest.raises(ValueError, match="X has 3 features, but FlowDensity is expecting 2"):
        flow.score_samples(np.zeros((4, 3)))
