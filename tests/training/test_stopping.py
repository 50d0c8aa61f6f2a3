"""Early stopping against a fixed sequence of held-out NLLs, and inside ``fit``."""

import copy

import pytest
import torch

from flowforge import fit
from flowforge.errors import InputError
from flowforge.training.stopping import EarlyStopping
from flowforge.workbench.data import two_moons_splits
from tests.helpers import seed_model

NLLS = [3.0, 2.5, 2.6, 2.4, 2.45, 2.41, 2.42, 2.39]  # best: epochs 2, 4, then 8


def _run(stopping, model):
    """Observe NLLS, marking the model with each epoch's number; the epoch it stopped at."""
    for epoch, nll in enumerate(NLLS, start=1):
        with torch.no_grad():
            model.weight.fill_(epoch)
        if stopping.observe(epoch, nll, model):
            return epoch
    return None


@pytest.mark.parametrize("patience, stopped, best", [(1, 3, 2), (2, 6, 4), (3, 7, 4), (4, None, 8)])
def test_stops_after_patience_epochs_without_improvement_and_keeps_the_best(
    patience, stopped, best
):
    model = torch.nn.Linear(1, 1, bias=False)
    stopping = EarlyStopping(patience)
    assert _run(stopping, model) == stopped
    assert stopping.best_epoch == best and stopping.best_nll == NLLS[best - 1]
    assert stopping.restore(model)
    assert model.weight.item() == best


def test_without_patience_it_only_tracks_the_best():
    model = torch.nn.Linear(1, 1, bias=False)
    stopping = EarlyStopping(None)
    assert _run(stopping, model) is None and stopping.best_epoch == 8
    assert not EarlyStopping(3).restore(model)  # nothing observed: nothing to restore


def test_a_resumed_tracker_compares_with_the_best_before_the_interruption():
    model = torch.nn.Linear(1, 1, bias=False)
    stopping = EarlyStopping(2, best_epoch=4, best_nll=2.4, best_state=model.state_dict())
    assert not stopping.observe(5, 2.45, model)
    assert stopping.observe(6, 2.41, model) and stopping.best_epoch == 4


@pytest.fixture(scope="module")
def moons():
    return two_moons_splits(600, 600, seed=0)


def test_fit_stops_where_the_rule_says_on_an_unstopped_runs_numbers(moons):
    """A run without patience gives the held-out NLLs; the same run with patience 2 must
    stop at the first epoch two after its best so far, holding that epoch's weights."""
    train, heldout = moons
    torch.manual_seed(0)
    model = seed_model()
    twin = copy.deepcopy(model)
    kwargs = dict(validation=heldout.points, epochs=12, batch_size=50, lr=0.05, ema=0.0)
    states = []
    full = fit(
        model,
        train.points,
        progress=False,
        restore_best=False,
        callbacks=[lambda s: states.append(copy.deepcopy(s.model_state))],
        **kwargs,
    )
    best, expected_stop = 1, None
    for epoch, nll in enumerate(full.heldout_nll, start=1):
        if nll < full.heldout_nll[best - 1]:
            best = epoch
        if epoch - best >= 2:
            expected_stop = epoch
            break
    assert expected_stop is not None, "the run never stalled: raise lr or epochs"
    stopped = fit(twin, train.points, progress=False, patience=2, **kwargs)
    assert stopped.epochs == expected_stop and stopped.stopped_early
    assert stopped.heldout_nll == full.heldout_nll[:expected_stop]
    assert stopped.best_epoch == best
    for name, value in twin.state_dict().items():
        assert torch.equal(value, states[best - 1][name]), name


def test_patience_without_validation_data_is_refused(moons):
    with pytest.raises(InputError, match="patience=3 stops on the held-out NLL"):
        fit(seed_model(), moons[0].points, epochs=1, patience=3, progress=False)
