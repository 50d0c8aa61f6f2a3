import copy

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from flowforge import FlatAdam, realnvp
from flowforge.training.fit import make_optimizer


def _batches(n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(64, 2, generator=g, dtype=torch.float64) for _ in range(n)]


def _train(model, optimizer, batches, set_to_none=True):
    for x in batches:
        loss = -model.log_prob(x).mean()
        optimizer.zero_grad(set_to_none=set_to_none)
        loss.backward()
        optimizer.step()


def _assert_same_parameters(a, b, **tolerance):
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        torch.testing.assert_close(p, q, msg=name, **tolerance)


@pytest.mark.parametrize("fused", [True, False], ids=["fused-kernel", "plain-ops"])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1], ids=["adam", "adamw"])
def test_same_steps_as_torch_adam(fused, weight_decay):
    torch.manual_seed(0)
    model = realnvp().double()
    reference = copy.deepcopy(model)
    optimizer = FlatAdam(model.parameters(), lr=1e-2, weight_decay=weight_decay)
    optimizer._fused = fused and optimizer._fused
    cls = torch.optim.AdamW if weight_decay else torch.optim.Adam
    _train(model, optimizer, _batches())
    _train(reference, cls(reference.parameters(), lr=1e-2, weight_decay=weight_decay), _batches())
    _assert_same_parameters(model, reference)


def test_parameters_and_gradients_are_views_of_one_buffer():
    model = realnvp()
    optimizer = FlatAdam(model.parameters())
    flat = optimizer.flat_parameter
    assert flat.numel() == sum(p.numel() for p in model.parameters()) == 1352
    with torch.no_grad():
        flat.zero_()
    assert all((p == 0).all() for p in model.parameters())
    (-model.log_prob(torch.randn(8, 2)).mean()).backward()
    grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    torch.testing.assert_close(grads, flat.grad)
    optimizer.zero_grad()
    assert not flat.grad.any() and all(not p.grad.any() for p in model.parameters())


def test_gradients_replaced_by_model_zero_grad_are_reattached():
    """``model.zero_grad()`` (set_to_none) between steps must not lose gradients."""
    torch.manual_seed(0)
    model = realnvp().double()
    reference = copy.deepcopy(model)
    optimizer = FlatAdam(model.parameters(), lr=1e-2)
    for x in _batches():
        model.zero_grad(set_to_none=True)
        (-model.log_prob(x).mean()).backward()
        optimizer.step()
    _train(reference, torch.optim.Adam(reference.parameters(), lr=1e-2), _batches())
    _assert_same_parameters(model, reference)


def test_state_dict_resumes_exactly():
    torch.manual_seed(0)
    model = realnvp().double()
    twin = copy.deepcopy(model)
    optimizer = FlatAdam(model.parameters(), lr=1e-2)
    batches = _batches(8)
    _train(model, optimizer, batches[:4])
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    _train(model, optimizer, batches[4:])

    resumed = FlatAdam(twin.parameters(), lr=1e-2)
    twin.load_state_dict(saved[0])  # copies into the views
    resumed.load_state_dict(saved[1])
    _train(twin, resumed, batches[4:])
    _assert_same_parameters(model, twin, rtol=0, atol=0)


def test_moving_the_model_afterwards_is_reported():
    model = realnvp()
    optimizer = FlatAdam(model.parameters())
    model.double()
    (-model.log_prob(torch.randn(4, 2, dtype=torch.float64)).mean()).backward()
    with pytest.raises(RuntimeError, match="after the optimizer was made"):
        optimizer.step()


def test_release_gives_parameters_their_own_storage():
    model = realnvp()
    optimizer = FlatAdam(model.parameters())
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer.release()
    pointers = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(pointers) == len(list(model.parameters()))
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    with pytest.raises(RuntimeError, match="no longer lives"):
        optimizer.step()


def test_mixed_parameters_are_refused_and_make_optimizer_falls_back():
    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="one device with one dtype"):
        FlatAdam([a, b])
    assert isinstance(make_optimizer([a, b], 1e-3), torch.optim.Adam)
    assert isinstance(make_optimizer([a], 1e-3), FlatAdam)
    assert isinstance(make_optimizer([a], 1e-3, weight_decay=0.1), FlatAdam)


def test_frozen_parameters_are_left_alone():
    model = realnvp()
    frozen = model.flow[1].block[0].weight
    frozen.requires_grad_(False)
    before = frozen.clone()
    optimizer = FlatAdam(model.parameters(), lr=0.1, weight_decay=0.5)
    _train(model, optimizer, [x.float() for x in _batches(3)])
    assert torch.equal(frozen, before)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="need lr > 0"):
        FlatAdam(realnvp().parameters(), lr=0.0)
    with pytest.raises(ValueError, match="no parameters"):
        FlatAdam([])


def test_step_hooks_and_the_profiler_label_still_work():
    """``step`` skips torch's wrapper only when nothing is watching."""
    torch.manual_seed(0)
    model = realnvp().double()
    optimizer = FlatAdam(model.parameters(), lr=1e-2)
    seen = []
    optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append("pre"))
    optimizer.register_step_post_hook(lambda opt, args, kwargs: seen.append("post"))
    handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: seen.append("global"))
    try:
        _train(model, optimizer, _batches(2))
    finally:
        handle.remove()
    assert seen == ["pre", "post", "global"] * 2
    quiet = FlatAdam(realnvp().double().parameters(), lr=1e-2)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        quiet.step()
    assert any(e.name == "Optimizer.step#FlatAdam.step" for e in prof.events())


def test_a_hooked_and_an_unhooked_step_are_the_same_update():
    torch.manual_seed(0)
    model = realnvp().double()
    twin = copy.deepcopy(model)
    plain = FlatAdam(model.parameters(), lr=1e-2)
    hooked = FlatAdam(twin.parameters(), lr=1e-2)
    hooked.register_step_pre_hook(lambda opt, args, kwargs: None)
    _train(model, plain, _batches())
    _train(twin, hooked, _batches())
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)
