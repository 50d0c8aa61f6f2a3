"""The weight average against a plain re-computation of its recursion."""

import pytest
import torch

from flowforge.training.averaging import WeightAverage, ema_decay


def test_the_decay_warms_up_as_tensorflows_num_updates_rule():
    assert ema_decay(0.98, 1) == pytest.approx(2 / 11)
    assert ema_decay(0.98, 100) == pytest.approx(101 / 110)
    assert ema_decay(0.98, 400) == pytest.approx(401 / 410)  # still below 0.98
    assert ema_decay(0.98, 10_000) == 0.98


@pytest.mark.parametrize("shapes", [[(7,)], [(3, 4), (5,), (2, 2, 2)]])
def test_updates_follow_the_recursion(shapes):
    g = torch.Generator().manual_seed(0)
    tensors = [torch.randn(*s, generator=g, dtype=torch.float64) for s in shapes]
    average = WeightAverage(tensors, decay=0.9)
    expected = [t.clone() for t in tensors]
    for step in range(1, 40):
        for t in tensors:
            t.copy_(torch.randn(t.shape, generator=g, dtype=torch.float64))
        average.update()
        d = min(0.9, (1 + step) / (10 + step))
        expected = [d * e + (1 - d) * t for e, t in zip(expected, tensors)]
    for got, want in zip(average.average, expected):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    assert average.step == 39


def test_swap_exchanges_values_in_place_and_twice_is_nothing():
    weights = torch.nn.Parameter(torch.arange(4.0))
    average = WeightAverage([weights], decay=0.5)
    with torch.no_grad():
        weights.add_(10.0)
    storage = weights.data_ptr()
    average.swap()
    assert torch.equal(weights.detach(), torch.arange(4.0)) and average.swapped
    assert torch.equal(average.average[0], torch.arange(4.0) + 10)
    assert weights.data_ptr() == storage
    average.swap()
    assert torch.equal(weights.detach(), torch.arange(4.0) + 10) and not average.swapped


def test_a_resumed_average_continues_the_warm_up():
    x = torch.zeros(3)
    average = WeightAverage([x], decay=0.99, step=5)
    x.fill_(1.0)
    average.update()
    assert average.average[0][0].item() == pytest.approx(1 - 7 / 16)  # d_6 = (1 + 6) / (10 + 6)


@pytest.mark.parametrize("decay", [0.0, 1.0, -0.5, 2.0])
def test_a_decay_outside_zero_one_is_refused_with_the_fix(decay):
    with pytest.raises(ValueError, match=r"in \(0, 1\)"):
        WeightAverage([torch.zeros(2)], decay=decay)


def test_applied_puts_the_average_in_and_the_iterates_back_exactly_even_on_error():
    g = torch.Generator().manual_seed(1)
    tensors = [torch.randn(3, 4, generator=g), torch.randn(5, generator=g)]
    average = WeightAverage(tensors, decay=0.9)
    for _ in range(7):
        for t in tensors:
            t.add_(torch.randn(t.shape, generator=g))
        average.update()
    iterates = [t.clone() for t in tensors]
    mean = [a.clone() for a in average.average]
    assert not all(torch.equal(i, m) for i, m in zip(iterates, mean))
    with average.applied():
        assert all(torch.equal(t, m) for t, m in zip(tensors, mean))
    assert all(torch.equal(t, i) for t, i in zip(tensors, iterates))
    with pytest.raises(KeyError), average.applied():
        raise KeyError("a callback failed")
    assert all(torch.equal(t, i) for t, i in zip(tensors, iterates))  # bit for bit
    assert all(torch.equal(a, m) for a, m in zip(average.average, mean))
    average.copy_to_tensors()
    assert all(torch.equal(t, m) for t, m in zip(tensors, mean))
