import copy

import pytest
import torch

from flowforge import (
    fit,
    mean_nll,
)
from flowforge.training import History
from flowforge.training.schedule import make_schedule
from flowforge.workbench.data import two_moons_splits
from tests.helpers import seed_model


@pytest.fixture(scope="module")
def moons():
    return two_moons_splits(4000, 2000, seed=0)


def test_fit_lowers_the_heldout_nll(moons):
    train, heldout = moons
    torch.manual_seed(0)
    model = seed_model()
    before = mean_nll(model, heldout.points).mean
    history = fit(
        model,
        train.points,
        validation=heldout.points,
        epochs=5,
        batch_size=256,
        lr=1e-2,
        progress=False,
    )
    after = mean_nll(model, heldout.points).mean
    assert after < before - 0.3
    assert len(history.train_nll) == len(history.heldout_nll) == 5
    assert after == pytest.approx(history.best_heldout_nll, abs=1e-9)  # best weights restored


def test_resumed_fit_equals_an_uninterrupted_one(moons):
    train, heldout = moons
    torch.manual_seed(0)
    model = seed_model()
    twin = copy.deepcopy(model)
    states = []
    kwargs = dict(
        validation=heldout.points,
        epochs=4,
        batch_size=256,
        lr=1e-2,
        ema=0.9,
        progress=False,
        seed=3,
    )
    fit(model, train.points, callbacks=[lambda s: states.append(copy.deepcopy(s))], **kwargs)
    fit(twin, train.points, resume=states[1], **kwargs)  # crashed after epoch 2
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name
    assert [s.epoch for s in states] == [1, 2, 3, 4]


def test_early_stopping_restores_the_best_weights(moons):
    train, heldout = moons
    torch.manual_seed(0)
    model = seed_model()
    # A learning rate this high makes the held-out NLL worse after a few epochs.
    history = fit(
        model,
        train.points[:500],
        validation=heldout.points,
        epochs=30,
        batch_size=50,
        lr=0.05,
        patience=3,
        progress=False,
    )
    assert history.best_epoch is not None
    assert history.epochs <= history.best_epoch + 3
    assert mean_nll(model, heldout.points).mean == pytest.approx(history.best_heldout_nll, abs=1e-6)


def test_non_finite_rows_are_counted_before_any_step(moons):
    train, _ = moons
    model = seed_model()
    before = copy.deepcopy(model.state_dict())
    bad = train.points.clone()
    bad[[3, 10, 11], 0] = float("nan")
    bad[20, 1] = float("inf")
    with pytest.raises(ValueError, match=r"4 row\(s\) with NaN or infinite"):
        fit(model, bad, progress=False)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])


def test_wrong_width_is_named(moons):
    with pytest.raises(ValueError, match="width 3, but the model expects width 2"):
        fit(seed_model(), torch.randn(10, 3), progress=False)


def test_divergence_is_reported_not_silent(moons):
    train, _ = moons
    model = seed_model()
    with torch.no_grad():
        model.flow[1].block[-1].bias.fill_(float("nan"))
    with pytest.raises(FloatingPointError, match="diverged in epoch 1"):
        fit(model, train.points, epochs=1, progress=False)


@pytest.mark.slow
def test_seed_model_reaches_the_issue_target_with_default_recipe():
    """Section 10.5 (b) asks for a held-out NLL below 1.9 nats; the default recipe gets
    the notebook's model to 1.865 or lower on the package's moons data."""
    train, heldout = two_moons_splits(100_000, 20_000, seed=0)
    torch.manual_seed(0)
    model = seed_model()
    fit(model, train.points, validation=heldout.points, progress=False)
    assert mean_nll(model, heldout.points).mean <= 1.865


def test_unshuffled_fit_with_a_constant_rate_is_the_notebooks_train(moons):
    from flowforge import train as notebook_train

    data = moons[0]
    torch.manual_seed(0)
    model = seed_model()
    twin = copy.deepcopy(model)
    fit(
        model,
        data.points,
        epochs=2,
        batch_size=128,
        lr=1e-3,
        schedule="constant",
        warmup=0,
        ema=0.0,
        shuffle=False,
        progress=False,
    )
    notebook_train(twin, data.data_loader(batch_size=128), num_epochs=2, lr=1e-3, progress=False)
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        assert torch.equal(a, b), name


def test_fit_returns_and_evaluates_the_average_of_its_iterates(moons):
    """One step per epoch, so a run without an average shows every iterate to its
    callbacks; the run with ``ema`` must end with their average, by the recursion
    ``a_t = d_t a_(t-1) + (1 - d_t) w_t``, ``d_t = min(ema, (1 + t) / (10 + t))``."""
    train, heldout = moons
    points = train.points[:512]
    torch.manual_seed(0)
    model = seed_model()
    twin = copy.deepcopy(model)
    expected = {k: v.detach().clone().double() for k, v in model.state_dict().items()}
    kwargs = dict(epochs=6, batch_size=512, lr=1e-2, warmup=0, progress=False)
    iterates = []
    fit(twin, points, ema=0.0, callbacks=[lambda s: iterates.append(copy.deepcopy(s))], **kwargs)
    states = []
    history = fit(
        model,
        points,
        ema=0.3,
        validation=heldout.points,
        restore_best=False,
        callbacks=[lambda s: states.append(copy.deepcopy(s))],
        **kwargs,
    )
    for t, state in enumerate(iterates, start=1):
        d = min(0.3, (1 + t) / (10 + t))
        for name, w in state.model_state.items():
            expected[name] = d * expected[name] + (1 - d) * w.double()
        for name, w in state.model_state.items():  # the iterates themselves are checkpointed
            assert torch.equal(states[t - 1].training_state[name], w), name
    for name, value in model.state_dict().items():
        torch.testing.assert_close(value.double(), expected[name], rtol=1e-6, atol=1e-6)
    assert history.heldout_nll[-1] == pytest.approx(mean_nll(model, heldout.points).mean, abs=1e-9)


def test_an_ema_outside_zero_one_is_refused(moons):
    with pytest.raises(ValueError, match=r"ema .* in \[0, 1\)"):
        fit(seed_model(), moons[0].points, epochs=1, ema=1.0, progress=False)


def test_history_separates_training_time_from_validation(moons):
    train, heldout = moons
    history = fit(seed_model(), train.points, validation=heldout.points, epochs=2, progress=False)
    assert len(history.train_seconds) == len(history.seconds) == 2
    assert all(0 < t <= s for t, s in zip(history.train_seconds, history.seconds))
    assert history.compile_seconds == 0.0
    assert History.from_dict(history.to_dict()) == history


def test_warmup_rises_linearly_then_follows_the_schedule():
    def rate(name, step, warmup=0):
        return make_schedule(name, 1.0, 100, warmup).rate(step)

    rates = [rate("constant", step, warmup=10) for step in range(20)]
    assert rates[:10] == pytest.approx([0.1 * (i + 1) for i in range(10)])
    assert rates[10:] == [1.0] * 10
    cosine = [rate("cosine", step, warmup=10) for step in range(9, 100)]
    assert cosine == pytest.approx([rate("cosine", s) for s in range(9, 100)])


@pytest.mark.slow
def test_compiled_training_matches_eager_training(moons):
    """``fit(compile=True)``: the same steps (to rounding), compile time reported apart."""
    train, _ = moons
    torch.manual_seed(0)
    model = seed_model()
    twin = copy.deepcopy(model)
    kwargs = dict(epochs=1, batch_size=300, lr=1e-2, progress=False)
    points = train.points[:1000]  # batches of 300, 300, 300 and 100
    history = fit(model, points, compile=True, **kwargs)
    fit(twin, points, **kwargs)
    assert history.compile_seconds > 0
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4, msg=name)
    x = train.points[:500]
    torch.testing.assert_close(torch.compile(model)(x), model.log_prob(x), atol=1e-5, rtol=1e-5)


def _numbers(history):
    """A history without its wall times (which differ from run to run)."""
    record = history.to_dict()
    for key in ("seconds", "train_seconds", "compile_seconds"):
        del record[key]
    return record


def test_a_recipe_and_the_same_settings_as_options_train_the_same(moons):
    from flowforge import Recipe

    train, heldout = moons
    points = train.points[:1000]
    settings = dict(epochs=2, batch_size=128, lr=2e-2, warmup=3, ema=0.5, patience=5)
    torch.manual_seed(0)
    start = seed_model()
    calls = {
        "options": lambda m: fit(m, points, validation=heldout.points, progress=False, **settings),
        "recipe": lambda m: fit(
            m, points, Recipe(**settings), validation=heldout.points, progress=False
        ),
        "recipe, overridden": lambda m: fit(
            m,
            points,
            Recipe(**{**settings, "lr": 1.0, "epochs": 9}),
            validation=heldout.points,
            progress=False,
            lr=2e-2,
            epochs=2,
        ),
    }
    runs = {}
    for name, call in calls.items():
        model = copy.deepcopy(start)
        runs[name] = (_numbers(call(model)), model.state_dict())
    reference_history, reference_state = runs.pop("options")
    assert len(reference_history["train_nll"]) == 2
    for name, (history, state) in runs.items():
        assert history == reference_history, name
        for key, value in state.items():
            assert torch.equal(value, reference_state[key]), (name, key)
    other = copy.deepcopy(start)
    fit(
        other, points, Recipe(**{**settings, "lr": 1e-2}), validation=heldout.points, progress=False
    )
    assert not torch.equal(
        other.state_dict()["flow.layers.1.block.0.weight"],
        reference_state["flow.layers.1.block.0.weight"],
    )


def test_unknown_options_and_a_recipe_of_the_wrong_type_are_refused(moons):
    points = moons[0].points
    with pytest.raises(
        TypeError, match=r"unknown recipe field\(s\) 'epoch' \(did you mean 'epochs'\?\)"
    ):
        fit(seed_model(), points, epoch=1, progress=False)
    with pytest.raises(TypeError, match="recipe must be a flowforge.Recipe or None, got dict"):
        fit(seed_model(), points, {"epochs": 1}, progress=False)
