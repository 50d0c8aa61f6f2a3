import copy

import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_post_hook

from flowforge import realnvp
from flowforge.training import FlatAdam, FlatParameters, adam


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
    cls = torch.optim.AdamW if weight_decay else torch.optim.Adam
    with FlatParameters(model.parameters()) as flat:
        optimizer = FlatAdam(flat, lr=1e-2, weight_decay=weight_decay)
        optimizer._fused = fused and optimizer._fused
        _train(model, optimizer, _batches())
    _train(reference, cls(reference.parameters(), lr=1e-2, weight_decay=weight_decay), _batches())
    _assert_same_parameters(model, reference)


def test_parameters_and_gradients_are_views_of_one_buffer_inside_the_block():
    model = realnvp()
    with FlatParameters(model.parameters()) as scope:
        optimizer = FlatAdam(scope)
        flat = optimizer.flat_parameter
        assert flat is scope.tensor
        assert flat.numel() == sum(p.numel() for p in model.parameters()) == 1352
        with torch.no_grad():
            flat.zero_()
        assert all((p == 0).all() for p in model.parameters())
        (-model.log_prob(torch.randn(8, 2)).mean()).backward()
        grads = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
        torch.testing.assert_close(grads, flat.grad)
        optimizer.zero_grad()
        assert not flat.grad.any() and all(not p.grad.any() for p in model.parameters())


def test_making_an_optimizer_changes_nothing_about_the_model():
    """Flattening is the block's doing, never a side effect of an optimizer's constructor."""
    model = realnvp()
    storages = [p.untyped_storage().data_ptr() for p in model.parameters()]
    with pytest.raises(TypeError, match="FlatParameters"):
        FlatAdam(model.parameters())
    assert [p.untyped_storage().data_ptr() for p in model.parameters()] == storages
    with adam(model.parameters(), lr=1e-2) as optimizer:
        assert isinstance(optimizer, FlatAdam)
        _train(model, optimizer, [x.float() for x in _batches(2)])
    pointers = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(pointers) == len(storages)  # each its own storage again
    model.double()  # and the model moves freely afterwards
    assert all(p.dtype == torch.float64 for p in model.parameters())


def test_gradients_replaced_by_model_zero_grad_are_reattached():
    """``model.zero_grad()`` (set_to_none) between steps must not lose gradients."""
    torch.manual_seed(0)
    model = realnvp().double()
    reference = copy.deepcopy(model)
    with FlatParameters(model.parameters()) as flat:
        optimizer = FlatAdam(flat, lr=1e-2)
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
    batches = _batches(8)
    with FlatParameters(model.parameters()) as flat:
        optimizer = FlatAdam(flat, lr=1e-2)
        _train(model, optimizer, batches[:4])
        saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
        _train(model, optimizer, batches[4:])

    with FlatParameters(twin.parameters()) as flat:
        resumed = FlatAdam(flat, lr=1e-2)
        twin.load_state_dict(saved[0])  # copies into the views
        resumed.load_state_dict(saved[1])
        _train(twin, resumed, batches[4:])
    _assert_same_parameters(model, twin, rtol=0, atol=0)


def test_moving_the_model_inside_the_block_is_reported():
    model = realnvp()
    with FlatParameters(model.parameters()) as flat:
        optimizer = FlatAdam(flat)
        model.double()
        (-model.log_prob(torch.randn(4, 2, dtype=torch.float64)).mean()).backward()
        with pytest.raises(RuntimeError, match="inside the FlatParameters block"):
            optimizer.step()


def test_leaving_the_block_gives_parameters_their_own_storage():
    model = realnvp()
    with FlatParameters(model.parameters()) as flat:
        optimizer = FlatAdam(flat, lr=1e-2)
        _train(model, optimizer, [x.float() for x in _batches(2)])
        inside = {k: v.clone() for k, v in model.state_dict().items()}
    pointers = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(pointers) == len(list(model.parameters()))
    for k, v in model.state_dict().items():
        assert torch.equal(v, inside[k])
    with pytest.raises(RuntimeError, match="not flattened"):
        optimizer.step()


def test_mixed_parameters_are_refused_and_adam_falls_back():
    a = torch.nn.Parameter(torch.zeros(3))
    b = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="one device with one dtype"):
        FlatParameters([a, b])
    with adam([a, b], 1e-3) as optimizer:
        assert isinstance(optimizer, torch.optim.Adam)
    with adam([a], 1e-3) as optimizer:
        assert isinstance(optimizer, FlatAdam)
    with adam([a], 1e-3, weight_decay=0.1) as optimizer:
        assert isinstance(optimizer, FlatAdam) and optimizer.defaults["weight_decay"] == 0.1
    with adam([a], 1e-3, weight_decay=0.1, flat=False) as optimizer:
        assert type(optimizer) is torch.optim.AdamW


def test_frozen_parameters_are_left_alone():
    model = realnvp()
    frozen = model.flow[1].block[0].weight
    frozen.requires_grad_(False)
    before = frozen.clone()
    with adam(model.parameters(), lr=0.1, weight_decay=0.5) as optimizer:
        _train(model, optimizer, [x.float() for x in _batches(3)])
    assert torch.equal(frozen, before)


def test_bad_hyperparameters():
    with FlatParameters(realnvp().parameters()) as flat:
        with pytest.raises(ValueError, match="need lr > 0"):
            FlatAdam(flat, lr=0.0)
    with pytest.raises(ValueError, match="no parameters"):
        FlatParameters([])


def test_step_hooks_and_the_profiler_label_still_work():
    """``step`` skips torch's wrapper only when nothing is watching."""
    torch.manual_seed(0)
    model = realnvp().double()
    seen = []
    with adam(model.parameters(), lr=1e-2) as optimizer:
        optimizer.register_step_pre_hook(lambda opt, args, kwargs: seen.append("pre"))
        optimizer.register_step_post_hook(lambda opt, args, kwargs: seen.append("post"))
        handle = register_optimizer_step_post_hook(lambda opt, args, kwargs: seen.append("global"))
        try:
            _train(model, optimizer, _batches(2))
        finally:
            handle.remove()
    assert seen == ["pre", "post", "global"] * 2
    with adam(realnvp().double().parameters(), lr=1e-2) as quiet:
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            quiet.step()
    assert any(e.name == "Optimizer.step#FlatAdam.step" for e in prof.events())


def test_a_hooked_and_an_unhooked_step_are_the_same_update():
    torch.manual_seed(0)
    model = realnvp().double()
    twin = copy.deepcopy(model)
    with adam(model.parameters(), lr=1e-2) as plain, adam(twin.parameters(), lr=1e-2) as hooked:
        hooked.register_step_pre_hook(lambda opt, args, kwargs: None)
        _train(model, plain, _batches())
        _train(twin, hooked, _batches())
    for p, q in zip(model.parameters(), twin.parameters()):
        assert torch.equal(p, q)
