import pytest
import torch

from flowforge.workbench.data import ALIASES, DATASETS, MoonsDensity, ToyDistribution, dataset
from flowforge.workbench.runs.config import read_config
from tests.workbench.helpers import train_tiny

TOY_NAMES = ["eight_gaussians", "checkerboard", "circles", "pinwheel", "two_spirals", "rings"]


POINT_SETS = [name for name, d in DATASETS.items() if d.image is None]


def test_the_moons_the_seven_toys_and_the_digits_are_registered():
    assert list(DATASETS) == ["two_moons", *TOY_NAMES, "swiss_roll", "digits"]
    assert POINT_SETS == ["two_moons", *TOY_NAMES, "swiss_roll"]
    std = dataset("rings").splits(100, 10)[0].standardization
    truths = {
        name: DATASETS[name].distribution(std, {"noise": 0.1, "n_samples": 100})
        for name in POINT_SETS
    }
    with_density = [name for name, truth in truths.items() if truth.has_density]
    assert with_density == ["two_moons", "eight_gaussians", "checkerboard", "circles", "rings"]


@pytest.mark.parametrize("name", POINT_SETS)
def test_every_set_of_points_splits_and_knows_its_truth(name):
    entry = dataset(name)
    train, heldout = entry.splits(300, 100, seed=3)
    assert train.points.shape == (300, 2) and heldout.points.shape == (100, 2)
    assert heldout.standardization == train.standardization
    record = {"name": name, "n_samples": 300, "n_heldout": 100, **entry.options}
    truth = entry.distribution(train.standardization, record)
    assert isinstance(truth, MoonsDensity if name == "two_moons" else ToyDistribution)
    assert truth.standardization == train.standardization
    assert truth.sample(4, seed=0).dtype == torch.float64
    again, _ = entry.splits(300, 100, seed=3)
    assert torch.equal(train.points, again.points)


def test_unknown_names_and_options_are_refused_with_what_is_known():
    with pytest.raises(ValueError, match="unknown data set 'moonz'; known: two_moons, eight_gau"):
        dataset("moonz")
    with pytest.raises(ValueError, match=r"also 8gaussians = eight_gaussians"):
        dataset("moonz")
    with pytest.raises(ValueError, match="data set rings takes no option noise .its options: none"):
        dataset("rings").splits(100, 10, noise=0.1)
    with pytest.raises(ValueError, match="takes no option scale .its options: noise"):
        dataset("two_moons").splits(100, 10, scale=2.0)


def test_a_set_of_points_needs_its_sizes():
    with pytest.raises(ValueError, match="data set rings needs n_samples and n_heldout"):
        dataset("rings").splits(seed=0)


@pytest.mark.parametrize("alias", ["8gaussians", "2spirals", "swissroll", "moons"])
def test_the_papers_names_are_aliases_of_the_same_data_set(alias):
    entry = dataset(alias)
    assert entry is DATASETS[ALIASES[alias]] and entry.name == ALIASES[alias]
    a, _ = entry.splits(200, 50, seed=3)
    b, _ = DATASETS[ALIASES[alias]].splits(200, 50, seed=3)
    assert torch.equal(a.points, b.points)


def test_every_alias_names_a_data_set_and_none_shadows_one():
    assert set(ALIASES.values()) <= set(DATASETS)
    assert not set(ALIASES) & set(DATASETS)


def test_a_run_records_the_name_an_alias_stands_for(tmp_path):
    folder = train_tiny(tmp_path / "r", "--dataset", "8gaussians")
    assert read_config(folder).data["name"] == "eight_gaussians"
