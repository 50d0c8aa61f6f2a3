"""The time rule: the flow trains at least as long as the slowest other model."""

import math

import pytest

from flowforge.workbench.comparison import Plan, Setup, run_comparison
from flowforge.workbench.comparison.fair_time import (
    ATTEMPTS,
    MARGIN,
    PROBE_EPOCHS,
    TimeRule,
    epochs_for,
    fit_at_least,
    slowest,
)


class Clocked:
    """A stand-in model whose fit 'takes' ``overhead + epochs * per_epoch`` seconds."""

    def __init__(self, epochs: int) -> None:
        self.epochs = epochs


def clock(per_epoch: float, overhead: float = 0.0, first_overhead: float = 0.0):
    """``fit_timed`` for ``Clocked`` models; the first fit (the probe) costs extra."""
    calls = []

    def fit_timed(model: Clocked) -> float:
        calls.append(model.epochs)
        extra = first_overhead if len(calls) == 1 else 0.0
        return overhead + extra + model.epochs * per_epoch

    return fit_timed, calls


def test_slowest_and_epochs_for():
    assert slowest([("gan", 14.2), ("gmm", 3.0), ("kde", 0.5)]) == ("gan", 14.2)
    assert slowest([]) == (None, 0.0)
    assert epochs_for(10.0, 0.05, floor=1) == math.ceil(MARGIN * 10.0 / 0.05)
    assert epochs_for(10.0, 0.05, floor=500) == 500
    assert epochs_for(0.0, 0.05, floor=3) == 3
    # each refit after a short fit asks for a wider margin, so timing noise cannot
    # keep the flow under the target fit after fit
    assert epochs_for(10.0, 0.05, floor=1, refit=2) == math.ceil(MARGIN**3 * 10.0 / 0.05)


def test_the_flow_gets_the_epochs_that_last_as_long_as_the_target():
    fit_timed, calls = clock(per_epoch=0.05)
    rule = TimeRule("gan", 14.2)
    _, seconds = fit_at_least(Clocked, fit_timed, floor=200, rule=rule)
    assert calls[0] == PROBE_EPOCHS and len(calls) == 2
    assert seconds >= 14.2 and rule.met
    assert calls[1] == math.ceil(MARGIN * 14.2 / 0.05)  # 327 epochs, more than the floor


def test_a_fit_that_comes_out_short_is_redone_longer():
    # the probe pays 3 s of start-up, so it overestimates an epoch and the first fit
    # (16 epochs, 0.8 s) falls short; the second is scaled by that fit's own epoch time,
    # with the margin of a first refit
    fit_timed, calls = clock(per_epoch=0.05, first_overhead=3.0)
    rule = TimeRule("gan", 14.2)
    _, seconds = fit_at_least(Clocked, fit_timed, floor=1, rule=rule)
    assert len(rule.attempts) == 2 and rule.attempts[0]["seconds"] < 14.2 <= seconds
    assert rule.met and calls[1:] == [16, math.ceil(MARGIN**2 * 14.2 / 0.05)]


def test_an_epoch_time_that_keeps_shrinking_is_still_caught_up_with():
    # every fit runs its epochs faster than the one before (a machine whose load is
    # lifting), so a refit scaled by the last fit alone would come out short forever
    speeds = iter([0.05, 0.04, 0.033, 0.028, 0.024])
    calls = []

    def fit_timed(model: Clocked) -> float:
        calls.append(model.epochs)
        return model.epochs * next(speeds)

    rule = TimeRule("gan", 14.2)
    fit_at_least(Clocked, fit_timed, floor=1, rule=rule)
    assert rule.met and len(calls) <= 1 + ATTEMPTS


def test_fixed_epochs_train_once_and_say_whether_the_rule_was_met():
    fit_timed, calls = clock(per_epoch=0.05)
    rule = TimeRule("gan", 14.2, fixed_epochs=True)
    fit_at_least(Clocked, fit_timed, floor=4, rule=rule)
    assert calls == [4] and not rule.met and rule.to_dict()["met"] is False


def test_without_other_models_the_flow_trains_its_planned_epochs():
    fit_timed, calls = clock(per_epoch=0.05)
    fit_at_least(Clocked, fit_timed, floor=200, rule=TimeRule(None, 0.0))
    assert calls == [200]


SMALL = Setup(n_train=3000, n_heldout=1000, samples=500, entropy_samples=5000)


def test_in_a_comparison_the_flow_trains_at_least_as_long_as_the_slowest_other():
    lines = []
    comparison = run_comparison(["flow", "gan", "gaussian"], Plan(3, 2700), SMALL, lines.append)
    rows = {r.name: r for r in comparison.rows if r.kind == "model"}
    assert list(rows) == ["flow", "gan", "gaussian"]  # the order asked for
    others = max(rows["gan"].train_seconds, rows["gaussian"].train_seconds)
    assert rows["flow"].train_seconds >= others
    rule = rows["flow"].summary["time_rule"]
    assert rule["slowest_other_model"] == "gan" and rule["met"]
    assert rule["target_seconds"] == rows["gan"].train_seconds
    assert rows["flow"].summary["epochs"] == rule["fits"][-1]["epochs"]
    assert "at least the slowest other model, gan" in lines[-1]


@pytest.mark.slow
def test_the_default_flow_reaches_the_notebooks_target():
    """The notebook's target, below 1.9 nats on the standardized moons, with the default
    data and the flow's default epochs (no other model, so no more than those)."""
    comparison = run_comparison(["flow"], Plan(100, 90_000), Setup(), log=lambda line: None)
    flow = comparison.rows[-1]
    assert flow.name == "flow" and flow.summary["epochs"] == 200
    assert flow.nll.mean < 1.9
