"""Run kinds: chosen once from a run's config, each owning its model options, context,
scores and text; and run folders from before the kinds (a multiscale ``width``) still load."""

import json
import math
from dataclasses import replace

import pytest
import torch

from flowforge.errors import InputError
from flowforge.evaluate import NLLEstimate, nll_estimate
from flowforge.workbench.data import DATASETS, Standardization, two_moons_splits
from flowforge.workbench.runs.checkpoint import save_weights
from flowforge.workbench.runs.config import CONFIG, WEIGHTS, RunConfig, RunError, load
from flowforge.workbench.runs.image_kind import Images
from flowforge.workbench.runs.kinds import (
    ConditionalPoints,
    Points,
    Scored,
    build_model,
    new_kind,
    run_kind,
)
from tests.workbench.helpers import tiny_config


def image_config(**options) -> RunConfig:
    shape = {"image_shape": [1, 8, 8], "levels": 17, "scales": 1, "steps": 1, "hidden": 4}
    return RunConfig(
        model="multiscale",
        model_options={**shape, **options},
        data={"name": "digits"},
        standardization=Standardization((0.0,) * 64, (1.0,) * 64),
        recipe={"epochs": 1},
    )


def test_the_kind_is_chosen_from_the_config():
    assert type(run_kind(tiny_config())) is Points
    conditional = run_kind(tiny_config(extra={"context": {"kind": "label", "classes": 2}}))
    assert type(conditional) is ConditionalPoints and conditional.classes == 2
    images = run_kind(image_config())
    assert type(images) is Images and images.image_shape == (1, 8, 8) and images.dims == 64
    with pytest.raises(RunError, match="unknown context .*known: label"):
        run_kind(tiny_config(extra={"context": {"kind": "text"}}))
    with pytest.raises(RunError, match="unknown model 'sylvester'"):
        run_kind(tiny_config(model="sylvester"))


def test_a_new_runs_kind_follows_its_data_set_and_adds_its_model_options():
    train, _ = two_moons_splits(60, 20, seed=0)
    points = new_kind(DATASETS["two_moons"], conditional=False)
    assert points.model_options(train) == {"width": 2} and points.config_extra(train) == {}
    given = new_kind(DATASETS["two_moons"], conditional=True)
    assert given.model_options(train) == {"width": 2, "context_width": 2}
    assert given.config_extra(train) == {"context": {"kind": "label", "classes": 2}}
    images = new_kind(DATASETS["digits"], conditional=False)
    assert images.model_options(train) == {"image_shape": [1, 8, 8], "levels": 17}
    assert points.sizes(DATASETS["two_moons"], {"n_samples": 50, "n_heldout": None}) == {
        "n_samples": 50,
        "n_heldout": 20_000,
    }
    with pytest.raises(InputError, match="fixed training/validation/test split; drop --n-samples"):
        images.sizes(DATASETS["digits"], {"n_samples": 50, "n_heldout": None})


def test_a_conditional_runs_context_is_the_one_hot_labels():
    _, heldout = two_moons_splits(60, 20, seed=0)
    (context,) = ConditionalPoints(2).context(heldout)
    torch.testing.assert_close(context[torch.arange(20), heldout.labels], torch.ones(20))
    assert context.sum() == 20 and Points().context(heldout) == ()
    (rows,) = ConditionalPoints(2).sample_context("run", None, 5)
    assert rows.argmax(dim=1).tolist() == [0, 1, 0, 1, 0]
    with pytest.raises(InputError, match="labels 0 to 1"):
        ConditionalPoints(2).sample_context("run", 2, 5)
    with pytest.raises(InputError, match="run is not conditional; train with --conditional"):
        Points().sample_context("run", 0, 5)


def test_images_score_in_bits_per_dimension():
    kind = run_kind(image_config())
    estimate = NLLEstimate(150.0, 0.5, 360)
    scored = Scored(torch.zeros(1, 64), (), torch.zeros(1), estimate)
    metrics = kind.metrics(image_config(), None, scored)
    assert metrics["bits_per_dim"] == pytest.approx(150.0 / (64 * math.log(2)))
    assert metrics["bits_per_dim_stderr"] == pytest.approx(0.5 / (64 * math.log(2)))
    assert (metrics["dims"], metrics["levels"]) == (64, 17)
    text = kind.eval_text("test set", estimate, estimate, metrics)
    assert text.startswith(f"test set: {metrics['bits_per_dim']:.4f} ± ")
    rows = dict(kind.report_rows(image_config(), {"heldout": metrics}))
    assert rows["held-out bits per dimension (test set)"].mean == metrics["bits_per_dim"]


def test_points_score_against_the_truth():
    config = tiny_config()
    _, heldout = two_moons_splits(800, 200, seed=2)
    log_q = torch.full((200,), -3.0)
    scored = Scored(heldout.points, (), log_q, nll_estimate(log_q))
    scores = Points().scores(config, None, scored)
    assert scores["gap_to_entropy"] == pytest.approx(3.0 - scores["true_entropy"])
    assert "gap to the true entropy" in Points().eval_text(
        "held-out set", *[scored.estimate] * 2, scores
    )
    none = replace(config, data={**config.data, "noise": 0.0})  # two curves: no truth
    assert Points().scores(none, None, scored) == {}


def _old_multiscale_folder(tmp_path, width: int):
    """A run folder as flowforge wrote it before run kinds: ``width`` in the options."""
    config = image_config(width=width)
    folder = tmp_path / f"old{width}"
    folder.mkdir()
    (folder / CONFIG).write_text(json.dumps(config.to_dict()))
    torch.manual_seed(0)
    model = build_model(image_config())
    save_weights(folder / WEIGHTS, model.state_dict())
    return folder, model


def test_an_old_image_run_with_a_width_still_loads(tmp_path):
    folder, model = _old_multiscale_folder(tmp_path, 64)
    loaded, _ = load(folder)
    x = torch.randint(0, 17, (3, 64)).float()
    torch.manual_seed(1)
    expected = model.eval().log_prob(x)
    torch.manual_seed(1)
    torch.testing.assert_close(loaded.log_prob(x), expected)
    assert Images((1, 8, 8), 17).builder_options({"width": 64, "levels": 17}) == {"levels": 17}


def test_an_old_image_run_whose_width_does_not_fit_is_a_one_line_error(tmp_path):
    folder, _ = _old_multiscale_folder(tmp_path, 63)
    with pytest.raises(RunError) as error:
        load(folder)
    message = str(error.value)
    assert "gives the model width 63, but images of shape (1, 8, 8) have 64 pixels" in message
    assert "\n" not in message
