"""``FlowDistribution``: a flow through the ``torch.distributions`` API, checked against
torch's own distributions and conventions (shapes, ``Independent``, ``MixtureSameFamily``,
``expand``, ``validate_args``) and against the flow's own ``sample``/``log_prob``."""

import math

import pytest
import torch
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    Uniform,
    constraints,
)

from flowforge import Multivariate, NormalizingFlow, Scale, Translate, multiscale, realnvp
from flowforge.distribution import FlowDistribution

SAMPLE_SHAPES = [(), (1,), (5,), (2, 3), (2, 1, 3), (0,)]
WIDTH, CONTEXT = 2, 3


@pytest.fixture
def conditional() -> NormalizingFlow:
    return realnvp(WIDTH, couplings=2, hidden=8, context_width=CONTEXT).double()


@pytest.fixture
def plain() -> NormalizingFlow:
    return realnvp(WIDTH, couplings=2, hidden=8).double()


@pytest.mark.parametrize("sample_shape", SAMPLE_SHAPES, ids=str)
def test_shapes_without_context(plain, sample_shape):
    d = plain.distribution()
    assert isinstance(d, torch.distributions.Distribution)
    assert d.batch_shape == () and d.event_shape == (WIDTH,)
    x, lp = d.rsample_and_log_prob(sample_shape)
    assert d.sample(sample_shape).shape == d.rsample(sample_shape).shape == x.shape
    assert x.shape == (*sample_shape, WIDTH) and lp.shape == sample_shape
    assert d.log_prob(x).shape == sample_shape
    torch.testing.assert_close(d.log_prob(x), lp)


@pytest.mark.parametrize("batch", [(), (4,), (2, 3)], ids=str)
@pytest.mark.parametrize("sample_shape", SAMPLE_SHAPES, ids=str)
def test_shapes_with_a_batch_of_contexts(conditional, sample_shape, batch):
    d = conditional.distribution(torch.randn(*batch, CONTEXT, dtype=torch.float64))
    assert d.batch_shape == batch and d.event_shape == (WIDTH,)
    x, lp = d.rsample_and_log_prob(sample_shape)
    assert x.shape == (*sample_shape, *batch, WIDTH) and lp.shape == (*sample_shape, *batch)
    assert d.sample(sample_shape).shape == d.rsample(sample_shape).shape == x.shape
    torch.testing.assert_close(d.log_prob(x), lp)


def test_each_batch_member_is_sampled_given_its_own_context():
    # x = z + c: one Translate per context is a conditional flow whose mean we know.
    class ContextShift(Translate):
        def forward(self, z, *context):
            return z + context[0], z.new_zeros(len(z))

        def inverse(self, x, *context):
            return x - context[0], x.new_zeros(len(x))

    model = NormalizingFlow(Multivariate(2), ContextShift(0.0))
    c = torch.tensor([[10.0, 0.0], [0.0, -10.0], [-10.0, 10.0]])
    x = model.distribution(c).sample((4000,))
    torch.testing.assert_close(x.mean(0), c, atol=0.1, rtol=0)


def test_log_prob_broadcasts_as_a_loop_over_rows(conditional):
    c = torch.randn(4, CONTEXT, dtype=torch.float64)
    d = conditional.distribution(c)
    x = torch.randn(5, 4, WIDTH, dtype=torch.float64)
    loop = torch.stack([conditional.log_prob(x[i], c) for i in range(5)])
    torch.testing.assert_close(d.log_prob(x), loop)
    # One value against every context, and one context per value row.
    one = x[0, 0]
    torch.testing.assert_close(d.log_prob(one), conditional.log_prob(one.expand(4, -1), c))
    column = x[:, :1]  # (5, 1, width) against batch (4,)
    expected = torch.stack([conditional.log_prob(column[i].expand(4, -1), c) for i in range(5)])
    torch.testing.assert_close(d.log_prob(column), expected)


def test_log_prob_equals_the_seed_s_log_prob(plain):
    x = torch.randn(7, WIDTH, dtype=torch.float64)
    torch.testing.assert_close(plain.distribution().log_prob(x), plain.log_prob(x))
    torch.testing.assert_close(plain.distribution().log_prob(x[0]), plain.log_prob(x[:1])[0])


def test_the_seed_s_sample_and_log_prob_are_unchanged(plain, conditional):
    assert plain.sample(5).shape == (5, WIDTH)
    c = torch.randn(3, CONTEXT, dtype=torch.float64)
    assert conditional.sample(5, c).shape == (3, 5, WIDTH)
    assert plain.log_prob(torch.zeros(4, WIDTH, dtype=torch.float64)).shape == (4,)


@pytest.mark.parametrize("sample_shape", [(), (6,), (2, 3)], ids=str)
def test_a_scale_and_translate_flow_equals_torch_s_normal(sample_shape):
    scale, offset = torch.tensor([2.0, 0.5]), torch.tensor([1.0, -3.0])
    d = NormalizingFlow(Multivariate(2), Scale(scale), Translate(offset)).distribution()
    mvn = MultivariateNormal(offset, torch.diag(scale**2))
    independent = Independent(Normal(offset, scale), 1)
    assert d.event_shape == mvn.event_shape == independent.event_shape
    assert d.batch_shape == mvn.batch_shape == independent.batch_shape
    x = mvn.sample(sample_shape)
    torch.testing.assert_close(d.log_prob(x), mvn.log_prob(x))
    torch.testing.assert_close(d.log_prob(x), independent.log_prob(x))
    assert d.sample(sample_shape).shape == mvn.sample(sample_shape).shape


def test_independent_over_a_batch_of_contexts(conditional):
    c = torch.randn(2, 4, CONTEXT, dtype=torch.float64)
    d = conditional.distribution(c)
    joint = Independent(d, 1)
    assert joint.batch_shape == (2,) and joint.event_shape == (4, WIDTH)
    x = joint.rsample((5,))
    assert x.shape == (5, 2, 4, WIDTH)
    torch.testing.assert_close(joint.log_prob(x), d.log_prob(x).sum(-1))


def test_a_mixture_of_conditional_flows_is_the_logsumexp_by_hand(conditional):
    c = torch.randn(3, CONTEXT, dtype=torch.float64)
    weights = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)
    components = conditional.distribution(c)
    mixture = MixtureSameFamily(Categorical(probs=weights), components)
    assert mixture.event_shape == (WIDTH,) and mixture.batch_shape == ()
    x = torch.randn(6, WIDTH, dtype=torch.float64)
    per_component = torch.stack([conditional.log_prob(x, ci.expand(6, -1)) for ci in c], -1)
    by_hand = torch.logsumexp(per_component + weights.log(), dim=-1)
    torch.testing.assert_close(mixture.log_prob(x), by_hand)
    assert mixture.sample((4, 5)).shape == (4, 5, WIDTH)


def test_expand_broadcasts_the_context(conditional, plain):
    c = torch.randn(1, CONTEXT, dtype=torch.float64)
    wide = conditional.distribution(c).expand((4,))
    assert wide.batch_shape == (4,) and wide.rsample((3,)).shape == (3, 4, WIDTH)
    x = torch.randn(4, WIDTH, dtype=torch.float64)
    torch.testing.assert_close(wide.log_prob(x), conditional.log_prob(x, c.expand(4, -1)))
    copies = plain.distribution().expand((2, 3))
    assert copies.batch_shape == (2, 3) and copies.sample((5,)).shape == (5, 2, 3, WIDTH)
    torch.testing.assert_close(copies.log_prob(x[0]), plain.log_prob(x[:1]).expand(2, 3))


def test_a_value_of_the_wrong_width_names_the_expected_width(plain):
    d = plain.distribution(validate_args=True)
    with pytest.raises(ValueError, match=r"width 2\), got shape \(5, 3\)") as error:
        d.log_prob(torch.zeros(5, 3, dtype=torch.float64))
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="width 2"):
        plain.distribution().log_prob(torch.zeros(3, dtype=torch.float64))


def test_validate_args_refuses_values_outside_the_support(plain):
    bad = torch.tensor([math.nan, 0.0], dtype=torch.float64)
    with pytest.raises(ValueError, match="support"):
        plain.distribution(validate_args=True).log_prob(bad)


def test_the_torch_attributes():
    d = NormalizingFlow(Multivariate(2), Scale(2.0)).distribution()
    assert d.has_rsample is True and d.arg_constraints == {}
    assert d.support.check(torch.zeros(3, 2)).shape == (3,)
    assert isinstance(d.support, constraints.independent) and d.support.event_dim == 1
    for name in ("mean", "variance"):
        with pytest.raises(NotImplementedError, match="estimate it from samples"):
            getattr(d, name)


def test_a_uniform_base_s_support_is_the_flow_s_image_of_its_box():
    # x = 3 z + 1 with z uniform on [-1, 1]^2: the support is [-2, 4]^2.
    model = NormalizingFlow(Multivariate(2, Uniform(-1.0, 1.0)), Scale(3.0), Translate(1.0))
    d = model.distribution(validate_args=True)
    inside, outside = torch.tensor([[3.9, -1.9]]), torch.tensor([[4.1, 0.0]])
    assert d.support.check(inside).tolist() == [True]
    assert d.support.check(outside).tolist() == [False]
    torch.testing.assert_close(d.log_prob(inside), torch.tensor([-2 * math.log(6.0)]))
    with pytest.raises(ValueError, match="support"):
        d.log_prob(outside)


def test_rsample_is_reparameterized():
    scale = Scale(torch.tensor([2.0, 0.5]), learnable=True)
    offset = Translate(torch.tensor([1.0, -1.0]), learnable=True)
    model = NormalizingFlow(Multivariate(2), scale, offset)
    d = model.distribution()
    torch.manual_seed(0)
    d.rsample((4, 5)).sum().backward()
    ours = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch.manual_seed(0)
    model.sample(20).sum().backward()  # the same draws through the seed's sample
    for mine, reference in zip(ours, (p.grad for p in model.parameters()), strict=True):
        torch.testing.assert_close(mine, reference)
    torch.testing.assert_close(ours[-1], torch.full((2,), 20.0))  # d sum(x) / d offset
    assert all(g.abs().sum() > 0 for g in ours)


def test_rsample_gradients_reach_a_conditional_flow_s_weights(conditional):
    d = conditional.distribution(torch.randn(3, CONTEXT, dtype=torch.float64))
    x, lp = d.rsample_and_log_prob((8,))
    (x.square().sum() + lp.sum()).backward()
    grads = [p.grad for p in conditional.parameters() if p.requires_grad]
    assert grads and sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_sample_under_no_grad_or_not_has_no_grad(plain):
    d = plain.distribution()
    assert not d.sample((3,)).requires_grad
    with torch.no_grad():
        assert not d.rsample((3,)).requires_grad
    assert d.rsample((3,)).requires_grad


def test_a_mixture_base_is_not_reparameterized():
    model = realnvp(2, couplings=1, hidden=4, base="mixture")
    d = model.distribution()
    assert d.has_rsample is False and d.sample((2, 3)).shape == (2, 3, 2)
    with pytest.raises(NotImplementedError, match="use sample"):
        d.rsample((2,))


def test_an_image_flow_takes_the_image_shape_as_event_shape():
    model = multiscale((1, 4, 4), levels=17, scales=1, steps=1, hidden=8)
    with pytest.raises(TypeError, match="DequantizedFlow"):
        model.distribution()
    flow = NormalizingFlow(model.base_distribution, *model.flow)  # its density on the cube
    d = flow.distribution(event_shape=(1, 4, 4))
    assert d.event_shape == (1, 4, 4) and d.sample((2, 3)).shape == (2, 3, 1, 4, 4)
    y = torch.rand(5, 1, 4, 4)
    torch.testing.assert_close(d.log_prob(y), flow.log_prob(y.reshape(5, 16)))
    with pytest.raises(ValueError, match="holds 15 numbers"):
        flow.distribution(event_shape=(1, 3, 5))


def test_bad_contexts_are_refused(conditional):
    with pytest.raises(ValueError, match="disagree on their batch shape"):
        FlowDistribution(conditional, (torch.zeros(3, 2), torch.zeros(4, 1)))
    with pytest.raises(TypeError, match="takes a NormalizingFlow"):
        FlowDistribution(torch.nn.Linear(2, 2))
