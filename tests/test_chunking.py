"""``NormalizingFlow.log_prob``/``sample``/``sample_and_log_prob`` in chunks when no
gradient is needed (``flowforge.evaluate``): the values of one pass through the layers,
bounded memory, the single pass kept whenever a gradient is needed."""

import pytest
import torch

import flowforge
from flowforge import columns, evaluate
from flowforge.families.glow import glow
from flowforge.layers import BatchNormFlow, Merge, Split, Swap
from flowforge.nets import columns as column_nets

CHUNK = 37  # small and odd, so that a few hundred points make several ragged chunks


def layer_by_layer(model, x, *context):
    """``log_prob`` composed by hand from the layers' own ``inverse`` and the base."""
    value, total = x, torch.zeros(len(x), dtype=x.dtype)
    for layer in reversed(model.flow.layers):
        value, log_det = layer.inverse(value, *context)
        total = total + log_det
    return model.base_distribution.log_prob(value) + total


def models():
    torch.manual_seed(0)
    return {
        "realnvp": flowforge.realnvp(2, couplings=4, hidden=16),
        "realnvp-exp": flowforge.realnvp(3, couplings=3, hidden=8, log_scale="exp"),
        "realnvp-sigmoid": flowforge.realnvp(4, couplings=2, hidden=8, log_scale="sigmoid"),
        "nice-couplings": flowforge.NormalizingFlow(
            flowforge.Multivariate(5),
            Split([2, 3]),
            flowforge.AdditiveCoupling(flowforge.block(2, 3, 8, outputs_per_dim=1)),
            Swap(),
            flowforge.AdditiveCoupling(flowforge.block(3, 2, 8, outputs_per_dim=1)),
            Swap(),
            Merge([2, 3]),
        ),
        # uneven halves (2 and 1 columns): the spline's parameters are a (23, 1 or 2, k)
        # view of the network's output, and points beyond the bound take the identity
        "nsf-coupling": flowforge.nsf(3, layers=3, hidden=8, bins=4, coupling=True),
        # MADE layers with Reverse (Permute) between: affine and spline, 2-D and 5-D
        "maf": flowforge.maf(2, layers=3, hidden=16),
        "maf-5d-permuted": flowforge.maf(5, layers=3, hidden=16, mixing="random"),
        "nsf": flowforge.nsf(2, layers=2, hidden=8, bins=4),
        "nsf-5d": flowforge.nsf(5, layers=2, hidden=12, bins=4),
        # layers the plan calls on a (rows, width) view: ActNorm (initialized from data,
        # so not the identity), LULinear, a learned Scale (NICE's), Translate; and IAF
        # (a MADE layer inverted: its density direction takes width passes)
        "glow": _initialized(glow(3, steps=2, hidden=8)),
        "maf-lu": flowforge.maf(3, layers=2, hidden=8, mixing="lu"),
        "nice": flowforge.nice(4, couplings=2, hidden=8),
        "iaf": flowforge.iaf(3, layers=2, hidden=8),
        "scale-translate": flowforge.NormalizingFlow(
            flowforge.Multivariate(2),
            flowforge.Scale([2.0, -0.5]),
            flowforge.Translate(1.5),
            Split(),
            flowforge.AffineCoupling(flowforge.block(1, 1, 8)),
            Merge(),
        ),
        # activations with no in-place form (the plan copies them into its buffers)
        "maf-silu": flowforge.maf(3, layers=2, hidden=8, activation=torch.nn.SiLU),
        "gelu": flowforge.NormalizingFlow(
            flowforge.Multivariate(2),
            Split(),
            flowforge.AffineCoupling(flowforge.block(1, 1, 12, activation=torch.nn.GELU)),
            Merge(),
        ),
        "tanh-deep": flowforge.NormalizingFlow(
            flowforge.Multivariate(2),
            Split(),
            flowforge.AffineCoupling(
                flowforge.block(1, 1, 12, num_hidden_layers=3, activation=torch.nn.Tanh)
            ),
            Merge(),
        ),
    }


def _initialized(model):
    """``model`` with its ActNorms initialized from data away from zero mean, unit scale."""
    flowforge.layers.initialize_actnorm(model, 3 * torch.randn(500, model.width) + 2)
    return model


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(evaluate, "DEFAULT_CHUNK", CHUNK)
    monkeypatch.setattr(evaluate, "CHUNKED_FROM_ROWS", 2)


@pytest.mark.parametrize("name", list(models()))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_log_prob_in_chunks_is_the_layers_one_pass(name, dtype, small_chunks):
    model = models()[name].to(dtype)
    assert columns.column_plan(model) is not None
    x = 2 * torch.randn(300, model.width, dtype=dtype)
    with torch.no_grad():
        fast = model.log_prob(x)
        reference = layer_by_layer(model, x)
    torch.testing.assert_close(fast, reference)
    assert fast.dtype == dtype and fast.shape == (300,)


@pytest.mark.parametrize("name", list(models()))
def test_samples_in_chunks_are_the_layers_forward(name, small_chunks, monkeypatch):
    model = models()[name]
    with torch.no_grad():
        torch.manual_seed(3)
        x, lp = model.sample_and_log_prob(300)
        monkeypatch.setattr(evaluate, "CHUNKED_CALLS", False)
        torch.manual_seed(3)
        one_x, one_lp = model.sample_and_log_prob(300)
    torch.testing.assert_close(x, one_x)
    torch.testing.assert_close(lp, one_lp, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ["realnvp", "nsf-coupling", "maf-5d-permuted", "nsf", "tanh-deep"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_networks_in_column_blocks_are_the_layers(name, dtype, small_chunks, monkeypatch):
    # Blocks of 8 to 16 columns in chunks of 37: several per chunk, the last one ragged.
    monkeypatch.setattr(column_nets, "BLOCK_WORK", 17**2 * 8)
    model = models()[name].to(dtype)
    plan = columns.column_plan(model)
    blocks = {column_nets.block_columns(max(net.widths[:-1]) + 1) for net in plan.nets}
    assert max(blocks) < CHUNK and CHUNK % min(blocks) > 0
    x = 2 * torch.randn(300, model.width, dtype=dtype)
    with torch.no_grad():
        fast = plan.log_prob(x, (), x.new_empty(300))  # the plan itself: no fallback
        z = model.base_distribution.sample(300).to(dtype)
        forward = plan.transform(z.clone(), (), None)
        back, _ = model.flow.forward(z)
        torch.testing.assert_close(fast, layer_by_layer(model, x))
    torch.testing.assert_close(forward, back)


def test_conditional_log_prob_and_sample_in_chunks(small_chunks):
    torch.manual_seed(1)
    model = flowforge.realnvp(2, couplings=2, hidden=8, context_width=3)
    x, c = torch.randn(200, 2), torch.randn(200, 3)
    assert columns.column_plan(model).accepts((c,))
    with torch.no_grad():
        torch.testing.assert_close(model.log_prob(x, c), layer_by_layer(model, x, c))
        torch.manual_seed(5)
        xs, lp = model.sample_and_log_prob(60, c[:4])
        assert xs.shape == (4, 60, 2) and lp.shape == (4, 60)
        rows = c[:4].repeat_interleave(60, dim=0)
        torch.testing.assert_close(lp.flatten(), layer_by_layer(model, xs.reshape(-1, 2), rows))
    with pytest.raises(ValueError, match="context"):  # a context of the wrong width
        with torch.no_grad():
            model.log_prob(x, torch.randn(200, 2))


def test_a_gradient_still_comes_through_the_one_pass(small_chunks):
    model = models()["realnvp"]
    x = torch.randn(100, 2)
    lp = model.log_prob(x)  # parameters require grad: a graph, as before
    assert lp.grad_fn is not None
    lp.sum().backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    layer_by_layer(model, x).sum().backward()
    for a, b in zip(got, (p.grad for p in model.parameters())):
        torch.testing.assert_close(a, b)
    # Frozen weights but points that require grad: the gradient by the points.
    model.requires_grad_(False)
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model.log_prob(xg).sum(), xg)
    xr = x.clone().requires_grad_(True)
    (r,) = torch.autograd.grad(layer_by_layer(model, xr).sum(), xr)
    torch.testing.assert_close(g, r)
    # Frozen weights, plain points: nothing to record, so the chunked path, no graph.
    assert model.log_prob(x).grad_fn is None


def test_seeded_samples_do_not_depend_on_the_chunking(monkeypatch):
    model = models()["realnvp"]
    draws = {}
    monkeypatch.setattr(evaluate, "CHUNKED_FROM_ROWS", 2)
    for chunk in (CHUNK, 1000, 1 << 15):
        monkeypatch.setattr(evaluate, "DEFAULT_CHUNK", chunk)
        with torch.no_grad():
            torch.manual_seed(3)
            draws[chunk] = model.sample(500)
            torch.manual_seed(3)
            draws[chunk, "lp"] = model.sample_and_log_prob(500)
    monkeypatch.setattr(evaluate, "CHUNKED_CALLS", False)
    torch.manual_seed(3)
    one_pass = model.sample(500)  # the layers' forward of base draws, with a graph
    assert one_pass.grad_fn is not None
    for chunk in (CHUNK, 1000, 1 << 15):
        torch.testing.assert_close(draws[chunk], one_pass.detach())
        x, lp = draws[chunk, "lp"]
        torch.testing.assert_close(x, one_pass.detach())
        with torch.no_grad():
            torch.testing.assert_close(lp, layer_by_layer(model, x), rtol=1e-4, atol=1e-4)


AUTOREGRESSIVE = {
    "maf": lambda width, c: flowforge.maf(width, layers=3, hidden=16, context_width=c),
    "nsf": lambda width, c: flowforge.nsf(width, layers=3, hidden=12, bins=4, context_width=c),
}


@pytest.mark.parametrize("family", list(AUTOREGRESSIVE))
@pytest.mark.parametrize("width", [2, 5])
@pytest.mark.parametrize("context", [0, 3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_autoregressive_plans_are_the_layers(
    family, width, context, dtype, small_chunks, monkeypatch
):
    torch.manual_seed(6)
    model = AUTOREGRESSIVE[family](width, context).to(dtype)
    with torch.no_grad():  # random output layers, so that every parameter matters
        for layer in model.flow.layers[0::2]:
            layer.made.net[-1].weight.normal_(0, 0.5)
    plan = columns.column_plan(model)
    assert [step[0] for step in plan.steps] == ["made", "reverse"] * 2 + ["made"]
    x = 2 * torch.randn(300, width, dtype=dtype)  # some beyond the spline's bound
    c = tuple(torch.randn(300, context, dtype=dtype) for _ in range(context > 0))
    assert plan.accepts(c)
    with torch.no_grad():
        fast = plan.log_prob(x, c, x.new_empty(300))  # the plan itself: no fallback
        monkeypatch.setattr(evaluate, "COLUMN_PLANS", False)  # the layers, chunk by chunk
        slow = model.log_prob(x, *c)
        z = model.base_distribution.sample(300).to(dtype)
        _, reference = model.flow.forward(z.clone(), *c)
        forward = plan.transform(z.clone(), c, lp := z.new_empty(300))
        back, _ = model.flow.forward(z, *c)
    torch.testing.assert_close(fast, slow)
    torch.testing.assert_close(forward, back)
    torch.testing.assert_close(lp, model.base_distribution.log_prob(z) - reference)


def test_autoregressive_layers_a_plan_cannot_take_fall_back(small_chunks):
    torch.manual_seed(7)
    model = flowforge.maf(3, layers=2, hidden=8, context_width=2)
    x, c = torch.randn(200, 3), torch.randn(200, 2)
    with torch.no_grad():
        planned = model.log_prob(x, c)
        model.flow.layers[0].made.net[0].register_forward_hook(lambda *args: None)
        assert columns.column_plan(model) is None
        torch.testing.assert_close(model.log_prob(x, c), planned)
        torch.testing.assert_close(planned, layer_by_layer(model, x, c))


def test_an_iaf_layer_with_a_hook_inside_falls_back(small_chunks):
    torch.manual_seed(8)
    model = flowforge.iaf(3, layers=2, hidden=8)
    x = torch.randn(200, 3)
    with torch.no_grad():
        planned = model.log_prob(x)
        model.flow.layers[0].layer.register_forward_hook(lambda *args: None)  # inside Inverse
        assert columns.column_plan(model) is None
        torch.testing.assert_close(model.log_prob(x), planned)


def test_flows_without_a_plan_chunk_through_their_layers_in_eval_mode(small_chunks):
    torch.manual_seed(2)
    layers = flowforge.nsf(2, layers=2, hidden=8).flow.layers
    model = flowforge.NormalizingFlow(flowforge.Multivariate(2), BatchNormFlow(2), *layers)
    assert columns.column_plan(model) is None  # BatchNormFlow: no plan
    x = torch.randn(150, 2)
    calls = []
    model.flow.layers[0].register_forward_hook(lambda *args: calls.append(1))
    with torch.no_grad():
        model.eval()
        torch.testing.assert_close(model.log_prob(x), layer_by_layer(model, x))
    assert calls == []  # layer_by_layer calls inverse, and log_prob honoured the hooks


def test_batch_statistics_in_training_mode_see_the_whole_batch(small_chunks):
    torch.manual_seed(4)
    model = flowforge.NormalizingFlow(
        flowforge.Multivariate(2),
        BatchNormFlow(2),
        Split(),
        flowforge.AffineCoupling(flowforge.block(1, 1, 8)),
        Merge(),
    )
    assert columns.column_plan(model) is None
    x = 3 * torch.randn(200, 2) + 1
    with torch.no_grad():
        lp = model.log_prob(x)  # training mode: one pass, with the whole batch's statistics
        whole = layer_by_layer(model, x)
        chunk = layer_by_layer(model, x[:CHUNK])
    torch.testing.assert_close(lp, whole)
    assert not torch.allclose(lp[:CHUNK], chunk, atol=1e-3)  # chunks would change it


def test_bad_points_get_the_same_errors(small_chunks):
    model = models()["realnvp"]
    with torch.no_grad():
        with pytest.raises(ValueError, match="float64 but the model.s weights are torch.float32"):
            model.log_prob(torch.randn(100, 2, dtype=torch.float64))
        with pytest.raises(ValueError, match="shape"):
            model.log_prob(torch.randn(100, 3))
        with pytest.raises(flowforge.errors.InputError, match="convert the input"):
            model.log_prob(torch.ones(100, 2, dtype=torch.long))


def test_a_hook_on_the_model_keeps_one_call(small_chunks):
    model = models()["realnvp"]
    seen = []
    model.flow.register_forward_hook(lambda module, args, out: seen.append(len(args[0])))
    with torch.no_grad():
        model.log_prob(torch.randn(100, 2))
    # log_prob calls flow.inverse, not forward: no hook runs, but the one pass was kept
    assert seen == []
    assert model._chunked(torch.zeros(3, 2), ()) is False


def test_small_calls_go_in_one_pass(monkeypatch):
    model = models()["realnvp"]
    seen = []
    original = model.flow.inverse

    def spy(z, *context):
        seen.append(len(z))
        return original(z, *context)

    with torch.no_grad():
        assert model._chunked(torch.zeros(evaluate.CHUNKED_FROM_ROWS, 2), ())
        model.flow.inverse = spy  # an instance patch: the plan steps aside for it
        assert columns.column_plan(model) is None
        model.eval()
        monkeypatch.setattr(evaluate, "DEFAULT_CHUNK", 4096)
        model.log_prob(torch.zeros(evaluate.CHUNKED_FROM_ROWS - 1, 2))
        model.log_prob(torch.zeros(10_000, 2))
    assert seen == [evaluate.CHUNKED_FROM_ROWS - 1, 4096, 4096, 10_000 - 8192]


def test_memory_stays_bounded():
    from benchmarks.measure import peak_extra_bytes, reset_peak_rss

    if not reset_peak_rss():
        pytest.skip("needs Linux's /proc/self/clear_refs")
    model = models()["realnvp"]
    x = torch.randn(2_000_000, 2)
    with torch.no_grad():
        model.log_prob(x[:1000])
        extra = peak_extra_bytes(lambda: model.log_prob(x))
    # The result is 8 MB; one pass through the layers would hold ~16 floats per point
    # per activation (over 100 MB); the chunks' scratch is a few MB.
    assert extra < 40 * 2**20, extra
