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


def test_streamed_mean_nll_equals_the_estimate_of_all_log_likelihoods():
    torch.manual_seed(0)
    model = realnvp().double()
    x = torch.randn(1000, 2, dtype=torch.float64) * 2
    whole = nll_estimate(model.log_prob(x).detach())
    for chunk_size in (1, 7, 100, 1000, 1 << 14):
        est = mean_nll(model, x, chunk_size=chunk_size)
        assert est.mean == pytest.approx(whole.mean, rel=1e-12)
        assert est.stderr == pytest.approx(whole.stderr, rel=1e-9)
        assert est.n == 1000 and est.n_outside == 0


def test_points_outside_a_bounded_support_are_counted_by_the_stream():
    model = NormalizingFlow(Multivariate(2, torch.distributions.Uniform(-1.0, 1.0)))
    x = torch.zeros(10, 2)
    x[[2, 7], 1] = 3.0
    est = mean_nll(model, x, chunk_size=3)
    assert est.mean == math.inf and est.n_outside == 2 and est.n == 10


@pytest.mark.parametrize("score", ["mean_nll", "log_likelihood"])
def test_nan_or_infinite_rows_are_one_line_input_errors(score):
    """Issue 15, item 10: NaN and inf rows were scored (a NaN NLL, or 'outside')."""
    from flowforge.errors import InputError

    x = torch.randn(50, 2)
    x[[4, 30], 0] = float("nan")
    x[31, 1] = -float("inf")
    function = mean_nll if score == "mean_nll" else log_likelihood
    with pytest.raises(InputError, match=r"3 row\(s\) with NaN or infinite .*first is row 4\)"):
        function(realnvp(), x, chunk_size=16)


def test_integer_points_are_told_to_convert():
    """Issue 15, item 10: integer points gave torch's dtype error from inside a layer."""
    from flowforge.errors import InputError

    model, x = realnvp(), torch.zeros(5, 2, dtype=torch.int64)
    expected = r"^the points are torch.int64 .* convert the input \(x.to\(torch.float32\)\)$"
    for score in (model.log_prob, lambda x: log_likelihood(model, x), lambda x: mean_nll(model, x)):
        with pytest.raises(InputError, match=expected):
            score(x)


def test_a_float32_overflow_far_from_the_data_is_not_outside_a_normal_base():
    """Issue 15, item 10: ``-|z|²/2`` overflows float32 at |z| ~ 1.8e19; the row was
    reported "outside the model's support", which a normal base does not have."""
    torch.manual_seed(0)
    model = realnvp()
    x = torch.tensor([[1e20, 0.0], [0.0, 1.0], [-3e25, 2e30]])
    assert torch.isneginf(log_likelihood(model, x)).sum() >= 1  # float32 values
    exact = log_likelihood(model, x, exact=True)
    assert exact.dtype == torch.float64 and torch.isfinite(exact).all()
    est = mean_nll(model, x)
    assert est.n_outside == 0 and math.isfinite(est.mean) and est.mean > 1e38
    assert exact[1] == pytest.approx(float(model.log_prob(x[1:2]).detach()), rel=1e-5)


MEMORY_PROBE = """
import resource, sys, torch
from flowforge import mean_nll, realnvp
torch.manual_seed(0)
model, n = realnvp(), int(sys.argv[1])
x = torch.randn(n, 2)
mean_nll(model, x[:20_000])  # warm up
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # MiB (Linux)
before = peak()
mean_nll(model, x)
print(peak() - before)
"""


def test_mean_nll_memory_grows_with_the_chunk_not_with_n():
    """Issue 15, item 7: mean_nll took 2 GB over its 10^8 points (float64 copies of all
    the log-likelihoods, and temporaries of their size); now one chunk's worth. With
    8e6 points a full float64 copy alone is 61 MiB; the growth stays under 16 MiB."""
    import subprocess
    import sys

    grown = float(
        subprocess.run(
            [sys.executable, "-c", MEMORY_PROBE, "8000000"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    assert grown < 16, f"mean_nll grew the peak memory by {grown:.1f} MiB over 8e6 points"
