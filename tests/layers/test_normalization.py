"""ActNorm's explicit data-dependent initialization; BatchNormFlow in training and eval mode."""

import pytest
import torch

from flowforge import Multivariate, NormalizingFlow, Scale, check_flow
from flowforge.check import log_det_jacobian
from flowforge.layers import ActNorm, BatchNormFlow, Inverse, initialize_actnorm


def _data(n: int = 512) -> torch.Tensor:
    return torch.randn(n, 3, dtype=torch.float64) * torch.tensor([0.5, 2.0, 4.0]).double() + 3.0


def _flow() -> NormalizingFlow:
    # data -> ActNorm -> Scale -> ActNorm -> latent, in the inverse (density) direction
    return NormalizingFlow(Multivariate(3), ActNorm(3), Scale([2.0, 3.0, 0.1]), ActNorm(3)).double()


def test_initialization_standardizes_what_reaches_each_actnorm():
    model, x = _flow(), _data()
    assert initialize_actnorm(model, x) == 2
    z, _ = model.flow.inverse(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(3, dtype=torch.float64))
    inner, _ = model.flow[2].inverse(x)  # the layer nearest the data, alone
    torch.testing.assert_close(inner.mean(0), torch.zeros(3, dtype=torch.float64))
    assert all(bool(m.initialized) for m in model.flow if isinstance(m, ActNorm))


def test_initialization_sees_all_the_data_however_many_points():
    # Past the row count where log_prob goes in chunks, and ordered, so that the first
    # chunk's statistics are far from all the data's.
    model = NormalizingFlow(Multivariate(2), ActNorm(2), Scale([2.0, 0.5]), ActNorm(2))
    x = torch.cat([torch.randn(40_000, 2), 10 + 3 * torch.randn(40_000, 2)])
    assert initialize_actnorm(model, x) == 2
    z, _ = model.flow.inverse(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(z.std(0, unbiased=False), torch.ones(2), atol=1e-4, rtol=0)
    assert not any(m.pending for m in model.flow if isinstance(m, ActNorm))


def test_initialization_happens_once_and_survives_a_state_dict():
    model, x = _flow(), _data()
    initialize_actnorm(model, x)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert initialize_actnorm(model, x * 10) == 0  # already initialized: left alone
    loaded = _flow()
    loaded.load_state_dict(before)
    assert initialize_actnorm(loaded, x * 10) == 0  # a loaded model is not re-initialized
    for key, value in loaded.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_forward_never_initializes_and_training_mode_is_restored():
    model, x = _flow(), _data()
    model.flow.forward(x)
    model.log_prob(x)
    assert not any(bool(m.initialized) for m in model.flow if isinstance(m, ActNorm))
    model.train()
    initialize_actnorm(model, x)
    assert model.training


def test_uninitialized_actnorm_is_the_identity_and_initialized_passes_the_contract():
    layer, x = ActNorm(3).double(), _data(8)
    out, log_det = layer.forward(x)
    torch.testing.assert_close(out, x)
    torch.testing.assert_close(log_det, torch.zeros(8, dtype=torch.float64))
    initialize_actnorm(layer, _data())
    check_flow(layer, x)


def test_actnorm_that_sees_no_data_is_reported():
    with pytest.raises(RuntimeError, match="Inverse"):
        initialize_actnorm(Inverse(ActNorm(3)).double(), _data())


def _batch_norm() -> BatchNormFlow:
    layer = BatchNormFlow(3, momentum=0.3).double()
    with torch.no_grad():
        layer.log_gamma.copy_(torch.tensor([0.2, -0.4, 0.1]))
        layer.beta.copy_(torch.tensor([1.0, -1.0, 0.5]))
    return layer


def test_batch_norm_training_mode_normalizes_by_the_batch_like_torch():
    layer, x = _batch_norm(), _data(64)
    reference = torch.nn.BatchNorm1d(3, momentum=0.3, affine=False).double()
    z, log_det = layer.inverse(x)
    expected = reference(x) * layer.log_gamma.exp() + layer.beta
    torch.testing.assert_close(z, expected.detach(), atol=1e-8, rtol=0)
    torch.testing.assert_close(layer.running_mean, reference.running_mean)
    torch.testing.assert_close(layer.running_var, reference.running_var)
    # log-det with the batch statistics held fixed: the per-sample Jacobian's, by autograd
    fixed = _batch_norm().eval()
    with torch.no_grad():
        fixed.running_mean.copy_(x.mean(0))
        fixed.running_var.copy_(x.var(0, unbiased=False))
    torch.testing.assert_close(log_det, log_det_jacobian(Inverse(fixed), x))
    torch.testing.assert_close(z, fixed.inverse(x)[0])


def test_batch_norm_eval_mode_uses_running_statistics_and_passes_the_contract():
    layer, x = _batch_norm(), _data(64)
    layer.inverse(x)
    layer.eval()
    frozen = layer.running_mean.clone()
    z, log_det = layer.inverse(x[:5])
    torch.testing.assert_close(layer.running_mean, frozen)  # no update in eval mode
    var = layer.running_var
    expected = (x[:5] - frozen) / (var + layer.eps).sqrt() * layer.log_gamma.exp() + layer.beta
    torch.testing.assert_close(z, expected)
    per_column = layer.log_gamma - 0.5 * (var + layer.eps).log()
    torch.testing.assert_close(log_det, per_column.sum().expand(5))
    check_flow(layer, x[:5])


def test_batch_norm_gradients_flow_through_the_batch_statistics():
    layer, x = _batch_norm(), _data(32).requires_grad_(True)
    z, log_det = layer.inverse(x)
    (g,) = torch.autograd.grad((z**2).sum() - log_det.sum(), x)
    assert torch.isfinite(g).all()
    # the normalized batch has zero mean whatever x is, so shifting x changes nothing
    assert torch.allclose(g.sum(0), torch.zeros(3, dtype=torch.float64), atol=1e-8)


def test_batch_norm_refuses_single_point_batches_in_training():
    with pytest.raises(ValueError, match="at least 2 points"):
        _batch_norm().inverse(torch.randn(1, 3, dtype=torch.float64))
