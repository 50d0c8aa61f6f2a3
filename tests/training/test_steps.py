"""Step strategies and the epoch loop, against autograd and hand-computed means."""

import math

import pytest
import torch

from flowforge import Multivariate, NormalizingFlow, realnvp
from flowforge.errors import DivergedError
from flowforge.layers import ActNorm
from flowforge.training.epoch import train_epoch
from flowforge.training.schedule import Constant
from flowforge.training.steps import AutogradStep, HandwrittenStep, Step, handwritten_step


def _gradients(model, step, x):
    model.zero_grad(set_to_none=True)
    loss = step(x, ())
    return float(loss.detach()), {name: p.grad.clone() for name, p in model.named_parameters()}


def test_the_handwritten_and_autograd_steps_give_the_mean_nll_and_its_gradient():
    torch.manual_seed(0)
    model = realnvp(2, couplings=2, hidden=8).double()
    x = torch.randn(37, 2, dtype=torch.float64)
    reference = -model.log_prob(x).mean()  # the loss, written out
    reference.backward()
    expected = {name: p.grad.clone() for name, p in model.named_parameters()}
    for step in (AutogradStep(model), handwritten_step(model)):
        loss, grads = _gradients(model, step, x)
        assert loss == pytest.approx(reference.detach().item(), abs=1e-12), type(step).__name__
        for name, grad in grads.items():
            torch.testing.assert_close(grad, expected[name], atol=1e-10, rtol=1e-10)


def test_the_handwritten_step_is_chosen_where_it_can_be_and_refused_with_a_reason():
    supported, unsupported = realnvp(2), NormalizingFlow(Multivariate(2), ActNorm(2))
    assert isinstance(handwritten_step(supported), HandwrittenStep)
    assert handwritten_step(supported, "autograd") is None
    assert handwritten_step(supported, "auto", obstacle="compile=True ...") is None
    assert handwritten_step(unsupported) is None
    with pytest.raises(ValueError, match="cannot train this model: layer ActNorm has no hand"):
        handwritten_step(unsupported, "handwritten")
    with pytest.raises(ValueError, match="cannot train this model: under DDP; use gradients="):
        handwritten_step(supported, "handwritten", obstacle="under DDP")


class _Recorded(Step):
    """A step with given losses that records the learning rate it was called at."""

    def __init__(self, optimizer, losses):
        self.optimizer, self.losses, self.rates = optimizer, iter(losses), []

    def __call__(self, x, context):
        self.rates.append(self.optimizer.param_groups[0]["lr"])
        return torch.tensor(next(self.losses))


def _optimizer():
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)


def test_the_epoch_mean_weights_each_batch_by_its_rows_and_the_rate_is_set_before_each_step():
    optimizer = _optimizer()
    step = _Recorded(optimizer, [1.0, 2.0, 4.0])
    batches = [(torch.zeros(rows, 2), ()) for rows in (4, 4, 2)]
    mean = train_epoch(step, batches, optimizer, Constant(0.3, 3, warmup=3))
    assert mean == pytest.approx((4 * 1.0 + 4 * 2.0 + 2 * 4.0) / 10)
    assert step.rates == pytest.approx([0.1, 0.2, 0.3])
    assert math.isnan(train_epoch(step, [], optimizer))


def test_a_non_finite_epoch_mean_is_a_diverged_error_naming_the_epoch():
    optimizer = _optimizer()
    step = _Recorded(optimizer, [1.0, float("inf")])
    batches = [(torch.zeros(3, 2), ())] * 2
    with pytest.raises(DivergedError, match=r"training diverged in epoch 3 \(mean NLL inf\)"):
        train_epoch(step, batches, optimizer, epoch=2)
