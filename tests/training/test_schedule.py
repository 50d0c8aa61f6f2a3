"""The learning-rate schedule against its closed form, written out at chosen steps."""

import math

import pytest
import torch

from flowforge.errors import InputError
from flowforge.training.schedule import Constant, Cosine, make_schedule


@pytest.mark.parametrize(
    "step, expected",
    [
        (0, 0.2),  # 0.2 * (1 + cos 0) / 2
        (250, 0.1 * (1 + math.sqrt(0.5))),  # a quarter: cos(pi / 4)
        (500, 0.1),  # half way: cos(pi / 2) = 0
        (750, 0.1 * (1 - math.sqrt(0.5))),
        (1000, 0.0),  # the end
        (1500, 0.0),  # and after it
    ],
)
def test_cosine_follows_half_a_cosine_to_zero(step, expected):
    assert Cosine(0.2, total_steps=1000).rate(step) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize("name", ["constant", "cosine"])
def test_warmup_multiplies_by_the_fraction_of_warmup_steps_taken(name):
    total = 40
    schedule = make_schedule(name, 0.5, total_steps=total, warmup=8)
    for step in range(total + 2):
        shape = (
            0.5 if name == "constant" else 0.25 * (1 + math.cos(math.pi * min(step, total) / total))
        )
        expected = shape * min(1.0, (step + 1) / 8)  # (t + 1) / 8 during the first 8 steps
        assert schedule.rate(step) == pytest.approx(expected, rel=1e-15, abs=1e-18), step
    assert Constant(0.5, total, warmup=8).rate(7) == 0.5  # the peak at the last one


def test_apply_sets_every_group_and_counts_its_steps():
    a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([{"params": [a]}, {"params": [b], "lr": 9.0}], lr=9.0)
    schedule = Constant(1.0, total_steps=10, warmup=4)
    seen = []
    for _ in range(5):
        rate = schedule.apply(optimizer)
        seen.append([group["lr"] for group in optimizer.param_groups])
        assert seen[-1] == [rate, rate]
    assert seen == [[0.25] * 2, [0.5] * 2, [0.75] * 2, [1.0] * 2, [1.0] * 2]
    assert schedule.step == 5


def test_a_resumed_schedule_continues_where_it_stopped():
    whole = Cosine(1e-2, total_steps=50, warmup=5)
    rates = [whole.apply(torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])) for _ in range(50)]
    resumed = Cosine(1e-2, total_steps=50, warmup=5, step=20)
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))])
    assert [resumed.apply(optimizer) for _ in range(30)] == rates[20:]


def test_an_unknown_schedule_is_named_with_the_choices():
    with pytest.raises(InputError, match="unknown schedule 'linear'; use 'cosine' or 'constant'"):
        make_schedule("linear", 1e-3, 100)
