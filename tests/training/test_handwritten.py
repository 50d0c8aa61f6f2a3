"""Hand-written NLL gradients against autograd, the independent reference."""

import pytest
import torch
from torch.distributions import Normal, Uniform

from flowforge import (
    AdditiveCoupling,
    AffineCoupling,
    Merge,
    Multivariate,
    NormalizingFlow,
    SequentialFlow,
    Split,
    Swap,
    block,
    fit,
    maf,
    nsf,
    realnvp,
)
from flowforge.layers import ActNorm
from flowforge.training import FlatParameters, handwritten_nll
from flowforge.training.handwritten import unsupported_part
from flowforge.workbench.data import two_moons_splits
from tests.helpers import DTYPES


def autograd_nll(model, x, *context):
    """Loss and gradients the ordinary way: ``(-model(x).mean()).backward()``."""
    for p in model.parameters():
        p.grad = None
    loss = -model(x, *context).mean()
    loss.backward()
    return loss.detach(), [None if p.grad is None else p.grad.clone() for p in model.parameters()]


def handwritten(model, x, *context):
    for p in model.parameters():
        p.grad = None
    nll = handwritten_nll(model)
    assert nll is not None, unsupported_part(model)
    loss = nll(x, *context)
    return loss, [None if p.grad is None else p.grad.clone() for p in model.parameters()]


def assert_same_gradients(model, x, *context, tol):
    loss, grads = handwritten(model, x, *context)
    ref_loss, ref_grads = autograd_nll(model, x, *context)
    assert not loss.requires_grad
    torch.testing.assert_close(loss, ref_loss, atol=tol, rtol=tol)
    assert len(grads) == len(ref_grads)
    for g, ref in zip(grads, ref_grads):
        assert (g is None) == (ref is None)
        if ref is not None:
            torch.testing.assert_close(g, ref, atol=tol, rtol=tol)


def coupling_flow(width, couplings, make, base=None):
    """``Split``, couplings made by ``make(dim_A, dim_B, i)`` alternated by ``Swap``, ``Merge``."""
    a, b = width - width // 2, width // 2
    layers = [Split()]
    for i in range(couplings):
        layers.append(make(a, b, i))
        if i < couplings - 1:
            layers.append(Swap())
            a, b = b, a
    layers.append(Merge([a, b]))
    return NormalizingFlow(base or Multivariate(width), *layers)


TOL = {torch.float32: 2e-5, torch.float64: 1e-11}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("log_scale", ["soft_clamp", "exp", "sigmoid"])
@pytest.mark.parametrize("trial", range(4))
def test_affine_coupling_flows_match_autograd_over_random_shapes(dtype, log_scale, trial):
    g = torch.Generator().manual_seed(trial)
    width = int(torch.randint(2, 8, (1,), generator=g))
    batch = int(torch.randint(1, 70, (1,), generator=g))
    couplings = int(torch.randint(1, 5, (1,), generator=g))
    hidden = int(torch.randint(1, 12, (1,), generator=g))
    context_width = [0, 3][trial % 2]
    model = realnvp(
        width,
        couplings=couplings,
        hidden=hidden,
        log_scale=log_scale,
        context_width=context_width,
    ).to(dtype)
    x = torch.randn(batch, width, dtype=dtype, generator=g) * 2
    context = (
        (torch.randn(batch, context_width, dtype=dtype, generator=g),) if context_width else ()
    )
    assert_same_gradients(model, x, *context, tol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trial", range(3))
def test_additive_and_tanh_couplings_under_a_shifted_base_match_autograd(dtype, trial):
    g = torch.Generator().manual_seed(100 + trial)
    width = int(torch.randint(2, 7, (1,), generator=g))
    loc, scale = torch.randn(width, generator=g), torch.rand(width, generator=g) + 0.5
    base = Multivariate(width, Normal(loc, scale))

    def make(a, b, i):
        if i % 2:
            return AdditiveCoupling(block(a, b, 7, outputs_per_dim=1, num_hidden_layers=3))
        return AffineCoupling(block(a, b, 5, activation=torch.nn.Tanh, num_hidden_layers=1))

    model = coupling_flow(width, 3, make, base).to(dtype)
    x = torch.randn(23, width, dtype=dtype, generator=g)
    assert_same_gradients(model, x, tol=TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trial", range(3))
@pytest.mark.parametrize("family", ["nsf-coupling", "nsf", "maf"])
def test_spline_and_autoregressive_flows_match_autograd_over_random_shapes(family, trial, dtype):
    """Spline couplings, autoregressive splines (MADE, Reverse) and MAF, with and without
    context, points in the spline's tails included (scale 3 on a bound of 2)."""
    g = torch.Generator().manual_seed(trial)
    width = int(torch.randint(2, 5, (1,), generator=g))
    batch = int(torch.randint(1, 60, (1,), generator=g))
    context_width = (0, 3, 1)[trial]
    torch.manual_seed(trial)
    options = {"layers": 3, "hidden": 8, "context_width": context_width}
    if family == "maf":
        model = maf(width, **options)
    else:
        options.update(bins=int(torch.randint(2, 9, (1,), generator=g)), bound=2.0)
        model = nsf(width, coupling=family == "nsf-coupling", **options)
    with torch.no_grad():  # bent layers, not the near-identity of fresh networks
        for p in model.parameters():
            p.mul_(3.0)
    model = model.to(dtype)
    x = torch.randn(batch, width, generator=g).to(dtype) * 3
    context = (torch.randn(batch, context_width, generator=g).to(dtype),) if context_width else ()
    assert_same_gradients(model, x, *context, tol=TOL[dtype] * 10)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("trial", range(3))
def test_a_gaussian_mixture_base_matches_autograd(dtype, trial):
    """Every mixture parameter (logits, means, Cholesky factors) moved off its start."""
    g = torch.Generator().manual_seed(trial)
    width = int(torch.randint(1, 4, (1,), generator=g))
    torch.manual_seed(trial)
    model = nsf(max(width, 2), layers=2, hidden=8, bins=4, coupling=True, base="mixture")
    with torch.no_grad():
        for p in model.base_distribution.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.5)
    model = model.to(dtype)
    x = torch.randn(int(torch.randint(1, 50, (1,), generator=g)), max(width, 2), generator=g)
    assert_same_gradients(model, x.to(dtype), tol=TOL[dtype] * 10)


def test_several_context_tensors_of_any_shape_are_flattened_as_the_layers_do():
    torch.manual_seed(0)
    model = realnvp(3, couplings=2, hidden=6, context_width=5).double()
    x = torch.randn(11, 3, dtype=torch.float64)
    context = (torch.randn(11, 1, dtype=torch.float64), torch.randn(11, 2, 2, dtype=torch.float64))
    assert_same_gradients(model, x, *context, tol=1e-11)


def test_nested_sequential_flows_and_a_scalar_normal_base():
    torch.manual_seed(0)
    inner = SequentialFlow(AffineCoupling(block(1, 1, 4)), Swap())
    model = NormalizingFlow(
        Multivariate(2, Normal(0.5, 1.5)),
        Split(),
        inner,
        AffineCoupling(block(1, 1, 4)),
        Merge(),
    ).double()
    assert_same_gradients(model, torch.randn(9, 2, dtype=torch.float64), tol=1e-11)


def test_gradients_add_to_existing_ones_and_skip_frozen_parameters():
    torch.manual_seed(0)
    model = realnvp(2, couplings=2, hidden=4).double()
    frozen = model.flow[1].block[0].weight
    frozen.requires_grad_(False)
    x = torch.randn(8, 2, dtype=torch.float64)
    _, ref = autograd_nll(model, x)
    for p in model.parameters():
        p.grad = torch.ones_like(p) if p.requires_grad else None
    handwritten_nll(model)(x)
    for p, r in zip(model.parameters(), ref):
        if p is frozen:
            assert p.grad is None
        else:
            torch.testing.assert_close(p.grad, r + 1, atol=1e-12, rtol=1e-12)


def test_one_instance_follows_new_weights_dtypes_and_flat_buffers():
    """The cached views of the weights must follow whatever happens to the parameters."""
    torch.manual_seed(0)
    model = realnvp(2, couplings=3, hidden=5)
    nll = handwritten_nll(model)
    nll(torch.randn(16, 2))
    x = torch.randn(16, 2, dtype=torch.float64)

    def assert_matches_autograd():
        for p in model.parameters():
            if p.grad is not None:
                p.grad.zero_()  # in place: FlatAdam's gradients are views of its buffer
        loss = nll(x)
        grads = [p.grad.clone() for p in model.parameters()]
        ref_loss, ref_grads = autograd_nll(model, x)
        torch.testing.assert_close(loss, ref_loss, atol=1e-11, rtol=1e-11)
        for g, r in zip(grads, ref_grads):
            torch.testing.assert_close(g, r, atol=1e-11, rtol=1e-11)

    with torch.no_grad():  # in place, as an optimizer step or load_state_dict would
        for p in model.parameters():
            p.mul_(1.5)
    model.double()  # new storage, new dtype
    assert_matches_autograd()
    with FlatParameters(model.parameters()):  # every parameter becomes a view of one buffer
        with torch.no_grad():
            model.flow[1].block[0].weight.add_(0.25)
        assert_matches_autograd()


@pytest.mark.parametrize(
    "model, part",
    [
        (NormalizingFlow(Multivariate(2), ActNorm(2)), "ActNorm"),
        (
            NormalizingFlow(Multivariate(2, Uniform(-3.0, 3.0)), Split(), Merge()),
            "base distribution",
        ),
        (
            NormalizingFlow(
                Multivariate(2),
                Split(),
                AffineCoupling(block(1, 1, 4), log_scale=lambda raw: 0.5 * raw),
                Merge(),
            ),
            "AffineCoupling",
        ),
        (
            NormalizingFlow(
                Multivariate(2),
                Split(),
                AffineCoupling(block(1, 1, 4, activation=torch.nn.LeakyReLU)),
                Merge(),
            ),
            "AffineCoupling",
        ),
        (torch.nn.Linear(2, 2), "Linear"),
    ],
    ids=["actnorm", "uniform-base", "custom-log-scale", "leaky-relu", "not-a-flow"],
)
def test_unsupported_models_are_named_and_get_none(model, part):
    assert handwritten_nll(model) is None
    assert part in unsupported_part(model)


def test_a_hook_turns_the_handwritten_path_off_so_the_hook_runs():
    model = realnvp(2, couplings=1, hidden=4)
    assert handwritten_nll(model) is not None
    model.flow[1].block[0].register_forward_hook(lambda *args: None)
    assert handwritten_nll(model) is None


def test_a_malformed_model_gets_the_layers_own_error_on_the_first_call():
    model = NormalizingFlow(
        Multivariate(3), Split(), AffineCoupling(block(2, 1, 4)), Swap(), Merge()
    )
    with pytest.raises(ValueError, match="block expects input width 2"):
        handwritten_nll(model)(torch.randn(5, 3))


@pytest.fixture(scope="module")
def moons():
    return two_moons_splits(3000, 500, seed=0)


def test_fit_with_handwritten_gradients_follows_autograd(moons):
    train, _ = moons
    runs = {}
    for gradients in ("handwritten", "autograd"):
        torch.manual_seed(0)
        model = realnvp(2, couplings=3, hidden=8).double()
        history = fit(
            model,
            train.points.double(),
            epochs=2,
            batch_size=256,
            lr=1e-3,
            progress=False,
            gradients=gradients,
        )
        runs[gradients] = (history.train_nll, model.state_dict())
    (nll, state), (ref_nll, ref_state) = runs["handwritten"], runs["autograd"]
    assert nll == pytest.approx(ref_nll, abs=1e-10)
    for key in ref_state:
        torch.testing.assert_close(state[key], ref_state[key], atol=1e-9, rtol=1e-9)


def test_fit_auto_uses_handwritten_gradients_where_it_can(moons):
    train, _ = moons
    states = {}
    for gradients in ("auto", "handwritten"):
        torch.manual_seed(0)
        model = realnvp(2, couplings=2, hidden=8)
        fit(model, train.points, epochs=1, batch_size=500, progress=False, gradients=gradients)
        states[gradients] = model.state_dict()
    for key in states["auto"]:
        assert torch.equal(states["auto"][key], states["handwritten"][key])


def test_fit_refuses_handwritten_gradients_it_cannot_use(moons):
    train, _ = moons
    model = NormalizingFlow(Multivariate(2), ActNorm(2))
    with pytest.raises(ValueError, match="layer ActNorm has no hand-written gradient"):
        fit(model, train.points, epochs=1, progress=False, gradients="handwritten")
    with pytest.raises(ValueError, match="compile=True"):
        fit(
            realnvp(2),
            train.points,
            epochs=1,
            progress=False,
            gradients="handwritten",
            compile=True,
        )
    with pytest.raises(ValueError, match="gradients must be one of"):
        fit(realnvp(2), train.points, epochs=1, progress=False, gradients="manual")
