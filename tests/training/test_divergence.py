"""Divergence is caught after the step that causes it, and the last good state is kept
(issue 15, item 1). The faults are injected after an epoch's real steps (as if its last
step had done it), or come from the issue's own settings (``lr=1000``)."""

import copy
import importlib
import math

import pytest
import torch

from flowforge import fit, mean_nll, train
from flowforge.errors import DivergedError, InputError
from flowforge.training import History
from flowforge.workbench.data import two_moons_splits
from tests.helpers import seed_model

fit_module = importlib.import_module("flowforge.training.fit")  # the module, not fit
SETTINGS = dict(epochs=3, batch_size=500, lr=1e-2, warmup=0, progress=False)


@pytest.fixture(scope="module")
def moons():
    train_split, heldout = two_moons_splits(2000, 500, seed=0)
    return train_split.points, heldout.points


def _states(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _inject(monkeypatch, at_epoch, model, kind):
    """After epoch ``at_epoch``'s real steps (from 0), put a NaN (``kind="nan"``) or a
    huge shift (``"huge"``: finite weights, a finite but absurd NLL) in ``model``."""
    real = fit_module.train_epoch

    def faulty(step, batches, optimizer, schedule, epoch, world, average):
        mean = real(step, batches, optimizer, schedule, epoch, world, average)
        if epoch == at_epoch:
            with torch.no_grad():
                bias = model.flow.layers[1].block[-1].bias  # its (log-scale, shift) outputs
                if kind == "nan":
                    bias[0] = float("nan")
                else:
                    bias.add_(1e8)
        return mean

    monkeypatch.setattr(fit_module, "train_epoch", faulty)


@pytest.mark.parametrize("ema", [0.0, 0.9])
@pytest.mark.parametrize("validation", [True, False])
def test_nan_weights_after_the_last_step_of_an_epoch_stop_before_any_callback_sees_them(
    moons, monkeypatch, ema, validation
):
    points, heldout = moons
    torch.manual_seed(0)
    model, seen = seed_model(), []
    _inject(monkeypatch, 1, model, "nan")
    kwargs = dict(SETTINGS, ema=ema, validation=heldout if validation else None)
    with pytest.raises(DivergedError, match=r"^training diverged in epoch 2\b.*lower the lear"):
        fit(model, points, callbacks=[lambda s: seen.append(copy.deepcopy(s))], **kwargs)
    assert [s.epoch for s in seen] == [1]  # epoch 2 was never called back (checkpointed)
    assert _same(_states(model), seen[0].model_state)  # the model is the last good one
    assert all(torch.isfinite(v).all() for v in model.state_dict().values())


def test_an_absurd_but_finite_heldout_nll_is_divergence(moons, monkeypatch):
    points, heldout = moons
    torch.manual_seed(0)
    model, seen = seed_model(), []
    _inject(monkeypatch, 0, model, "huge")
    with pytest.raises(DivergedError, match=r"epoch 1 \(held-out NLL .*e\+\d+, over the bound"):
        fit(model, points, validation=heldout, callbacks=[seen.append], ema=0, **SETTINGS)
    assert seen == []


def test_without_validation_data_an_absurd_nll_of_the_training_rows_is_divergence(
    moons, monkeypatch
):
    points, _ = moons
    torch.manual_seed(0)
    model = seed_model()
    before = _states(model)
    _inject(monkeypatch, 0, model, "huge")
    with pytest.raises(DivergedError, match=r"epoch 1 \(NLL of the first 256 training rows"):
        fit(model, points, ema=0, **SETTINGS)
    assert _same(_states(model), before)  # no good epoch: the weights it started with


@pytest.mark.parametrize("validation", [True, False])
def test_the_issues_one_step_at_lr_1000_is_divergence_not_nan(moons, validation):
    """The issue's ``--batch-size 2000 --lr 1000 --epochs 1 --warmup 0 --ema 0``: the one
    step leaves finite weights whose float32 log-densities are NaN (about -6.7e93 in
    float64, as mean_nll now scores them); fit returned ``nan`` NLLs."""
    points, heldout = moons
    torch.manual_seed(0)
    model = seed_model()
    before = _states(model)
    diverged = r"^training diverged in epoch 1 \(.*NLL.* (nan|\S+, over the bound)"
    with pytest.raises(DivergedError, match=diverged):
        fit(
            model,
            points,
            validation=heldout if validation else None,
            epochs=1,
            batch_size=2000,
            lr=1000,
            warmup=0,
            ema=0,
            progress=False,
        )
    assert _same(_states(model), before)


def test_a_resumed_run_checks_against_the_nll_before_its_first_epoch(moons):
    points, heldout = moons
    torch.manual_seed(0)
    model, states = seed_model(), []
    start = mean_nll(model, heldout).mean
    fit(model, points, validation=heldout, callbacks=[states.append], ema=0, **SETTINGS)
    assert [s.history.start_heldout_nll for s in states] == [start] * 3
    record = History.from_dict(states[0].history.to_dict())
    assert record.start_heldout_nll == start
    old = History.from_dict({"train_nll": [], "heldout_nll": [], "seconds": []})
    assert math.isnan(old.start_heldout_nll)  # a record written before it was kept
    unknown = History.from_dict({**record.to_dict(), "start_heldout_nll": None})
    assert math.isnan(unknown.start_heldout_nll)


def test_fit_refuses_zero_rows_and_integer_points(moons):
    points, heldout = moons
    model = seed_model()
    with pytest.raises(InputError, match=r"^the training data has no rows \(shape \(0, 2\)\)"):
        fit(model, points[:0], progress=False)
    with pytest.raises(InputError, match=r"validation data has no rows.*validation=None"):
        fit(model, points, validation=heldout[:0], progress=False)
    with pytest.raises(InputError, match=r"torch.int64 .* convert the input \(x.to\(torch.float"):
        fit(model, points.long(), progress=False)


def test_train_restores_the_last_good_weights_when_an_epoch_leaves_nan_weights(moons):
    points, _ = moons
    torch.manual_seed(0)
    model = seed_model()
    loader = torch.utils.data.DataLoader(points, batch_size=2000)
    before = _states(model)
    diverged = r"epoch 1 \(NLL of the first 256 training rows (nan|\S+, over the bound)"
    with pytest.raises(DivergedError, match=diverged):
        train(model, loader, num_epochs=2, lr=1000, progress=False)
    assert _same(_states(model), before)
    with pytest.raises(InputError, match="no rows"):
        train(model, torch.utils.data.DataLoader(points[:0], batch_size=8), progress=False)
