"""``Recipe``: the measured defaults, checked values, replace, and its plain-values form."""

import dataclasses

import pytest

from flowforge.errors import InputError
from flowforge.training import DEFAULT_RECIPE, Recipe


def test_a_recipe_made_without_arguments_is_the_measured_default():
    assert Recipe() == DEFAULT_RECIPE
    # the numbers measured in recipe.py's comment and the README's "default recipe"
    measured = dict(epochs=200, batch_size=1024, lr=1e-2, schedule="cosine", warmup=100, ema=0.98)
    assert {name: getattr(Recipe(), name) for name in measured} == measured
    assert (Recipe().weight_decay, Recipe().shuffle, Recipe().patience) == (0.0, True, None)


def test_replace_changes_only_the_named_fields():
    changed = DEFAULT_RECIPE.replace(epochs=3, lr=1e-3)
    assert (changed.epochs, changed.lr) == (3, 1e-3)
    assert dataclasses.replace(changed, epochs=200, lr=1e-2) == DEFAULT_RECIPE
    assert DEFAULT_RECIPE.epochs == 200  # frozen: the default is never changed in place


def test_replace_refuses_an_unknown_name_in_one_line_that_lists_the_fields():
    with pytest.raises(TypeError) as caught:
        DEFAULT_RECIPE.replace(epoch=3)
    message = str(caught.value)
    assert "\n" not in message
    assert "'epoch'" in message and "did you mean 'epochs'?" in message
    for field in dataclasses.fields(Recipe):
        assert field.name in message


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(epochs=-1), r"need epochs >= 0, batch_size >= 1 and lr > 0; got -1, 1024, 0.01"),
        (dict(batch_size=0), r"batch_size >= 1"),
        (dict(lr=0.0), r"lr > 0"),
        (dict(lr=float("nan")), r"lr > 0"),
        (dict(epochs=2.5), r"epochs and batch_size must be ints"),
        (dict(ema=1.0), r"ema is the weight average's decay, in \[0, 1\)"),
        (dict(ema=-0.1), r"in \[0, 1\) \(0: no average\)"),
        (dict(schedule="linear"), r"unknown schedule 'linear'; use 'cosine' or 'constant'"),
        (dict(gradients="manual"), r"gradients must be one of"),
        (dict(weight_decay=-1e-4), r"weight_decay must be >= 0"),
        (dict(warmup=-5), r"warmup is a number of steps"),
        (dict(patience=0), r"patience is a number of epochs"),
        (dict(threads=0), r"threads must be 'auto', a positive int or None"),
        (dict(threads="many"), r"threads must be 'auto'"),
        (dict(compile="yes"), r"compile must be True or False"),
        (dict(shuffle=1), r"shuffle must be True or False"),
    ],
)
def test_bad_values_are_refused_with_the_problem_named(changes, message):
    with pytest.raises(InputError, match=message):
        Recipe(**changes)
    with pytest.raises(ValueError, match=message):  # InputError is a ValueError
        DEFAULT_RECIPE.replace(**changes)


def test_plain_values_hold_the_course_of_training_and_any_other_field_changed():
    assert DEFAULT_RECIPE.to_dict() == {
        "epochs": 200,
        "batch_size": 1024,
        "lr": 1e-2,
        "schedule": "cosine",
        "weight_decay": 0.0,
        "warmup": 100,
        "ema": 0.98,
        "shuffle": True,
    }
    changed = DEFAULT_RECIPE.replace(patience=3, threads=1, gradients="autograd", flat=False)
    assert changed.to_dict() == {
        **DEFAULT_RECIPE.to_dict(),
        "patience": 3,
        "threads": 1,
        "gradients": "autograd",
        "flat": False,
    }
    assert Recipe.from_dict(changed.to_dict()) == changed


def test_an_old_record_without_the_newer_fields_takes_the_defaults():
    # a run's config.json "recipe" before shuffle and weight_decay were recorded
    old = {"epochs": 5, "batch_size": 200, "lr": 1e-2, "schedule": "cosine", "warmup": 0}
    recipe = Recipe.from_dict(old)
    assert recipe == DEFAULT_RECIPE.replace(**old)
    assert (recipe.ema, recipe.shuffle, recipe.weight_decay) == (0.98, True, 0.0)
    with pytest.raises(TypeError, match="unknown recipe field"):
        Recipe.from_dict({**old, "momentum": 0.9})
