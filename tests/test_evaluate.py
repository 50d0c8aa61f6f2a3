import math

import numpy as np
import pytest
import torch

from flowforge import Multivariate, NormalizingFlow, Scale, log_likelihood, mean_nll
from flowforge.evaluate import nll_estimate


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
