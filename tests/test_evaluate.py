import math

import numpy as np
import pytest
import torch

from flowforge import Multivariate, NormalizingFlow, Scale, mean_nll, realnvp
from flowforge.evaluate import log_likelihood, nll_estimate, sample_points


def test_chunked_log_likelihood_equals_one_pass():
    model = NormalizingFlow(Multivariate(2), Scale([2.0, 0.5]))
    x = torch.randn(1000, 2)
    torch.testing.assert_close(log_likelihood(model, x, chunk_size=7), model.log_prob(x).detach())


def test_nll_and_standard_error_match_numpy():
    ll = torch.randn(500).double()
    est = nll_estimate(ll)
    assert est.mean == pytest.approx(-ll.numpy().mean())
    assert est.stderr == pytest.approx(ll.numpy().std(ddof=1) / math.sqrt(500))
    assert est.n == 500


def test_points_outside_the_support_make_the_nll_infinite():
    est = nll_estimate(torch.tensor([-1.0, -float("inf"), -2.0]))
    assert est.mean == math.inf and est.n_outside == 1


def test_mean_nll_of_a_standard_normal():
    x = torch.randn(200_000, 2).double()
    est = mean_nll(NormalizingFlow(Multivariate(2)).double(), x)
    entropy = math.log(2 * math.pi) + 1.0  # of a 2-D standard normal
    assert abs(est.mean - entropy) < 4 * est.stderr
    assert np.isfinite(est.stderr)


@pytest.mark.parametrize("n", [1, 300, 5000], ids=lambda n: f"{n}-points")
@pytest.mark.parametrize("chunk_size", [1, 256, 4096, 1 << 20], ids=lambda c: f"chunk-{c}")
def test_chunked_log_likelihood_of_a_flow_equals_one_pass(n, chunk_size):
    """Chunks of any size (and the transposed fast paths for many rows) give the same values."""
    torch.manual_seed(0)
    model = realnvp().double()
    x = torch.randn(n, 2, dtype=torch.float64) * 1.5
    expected = model.log_prob(x).detach()
    torch.testing.assert_close(log_likelihood(model, x, chunk_size=chunk_size), expected)


def test_sample_points_draws_what_sample_draws_chunk_by_chunk():
    model = realnvp()
    torch.manual_seed(3)
    expected = torch.cat([model.sample(400), model.sample(400), model.sample(200)]).detach()
    torch.manual_seed(3)
    x = sample_points(model, 1000, chunk_size=400)
    torch.testing.assert_close(x, expected)
    assert x.shape == (1000, 2) and not torch.is_inference(x)
    assert sample_points(model, 0).shape == (0, 2)


def test_evaluation_restores_the_training_mode():
    model = realnvp()
    model.train()
    log_likelihood(model, torch.randn(10, 2))
    sample_points(model, 10)
    assert model.training
    model.eval()
    log_likelihood(model, torch.randn(10, 2))
    assert not model.training


def test_a_hundred_thousand_rows_in_bounded_chunks():
    """Scoring in chunks never builds a full-size intermediate: the peak stays small."""
    model = realnvp()
    x = torch.randn(100_000, 2)
    seen = []
    original = model.flow.inverse

    def spy(z, *context):
        seen.append(len(z))
        return original(z, *context)

    model.flow.inverse = spy
    log_likelihood(model, x, chunk_size=8192)
    assert max(seen) == 8192 and sum(seen) == 100_000
