"""Scoring data under a model: chunked log-likelihoods and NLL with its standard error."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

DEFAULT_CHUNK = 1 << 16


def log_likelihood(
    model: torch.nn.Module, x: Tensor, *context: Tensor, chunk_size: int = DEFAULT_CHUNK
) -> Tensor:
    """``model.log_prob`` of every row of ``x`` in chunks, in eval mode without autograd.

    Returns ``(n,)`` log-likelihoods in nats.
    Memory is bounded by ``chunk_size`` rows at a time, whatever ``n``; each chunk is
    moved to the model's device and the result is returned on the device of ``x``.
    """
    device = next((p.device for p in model.parameters()), x.device)
    out = torch.empty(len(x), dtype=x.dtype, device=x.device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(x), chunk_size):
                sl = slice(start, start + chunk_size)
                ctx = tuple(c[sl].to(device) for c in context)
                out[sl] = model.log_prob(x[sl].to(device), *ctx).to(out.device)
    finally:
        model.train(was_training)
    return out


@dataclass(frozen=True)
class NLLEstimate:
    """A mean negative log-likelihood in nats per point, its standard error and ``n``.

    Points with log-likelihood ``-inf`` (outside the model's support) make ``mean``
    infinite; ``n_outside`` counts them.
    """

    mean: float
    stderr: float
    n: int
    n_outside: int = 0

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.stderr:.4f} nats (n={self.n})"


def nll_estimate(log_likelihoods: Tensor) -> NLLEstimate:
    """Mean NLL and standard error of the mean from per-point log-likelihoods."""
    ll = log_likelihoods.detach().double().flatten()
    n = ll.numel()
    if n == 0:
        raise ValueError("cannot estimate an NLL from zero points")
    outside = int(torch.isneginf(ll).sum())
    if outside:
        return NLLEstimate(math.inf, math.nan, n, outside)
    mean = float(-ll.mean())
    stderr = float(ll.std(unbiased=True) / math.sqrt(n)) if n > 1 else math.nan
    return NLLEstimate(mean, stderr, n, 0)


def mean_nll(
    model: torch.nn.Module, x: Tensor, *context: Tensor, chunk_size: int = DEFAULT_CHUNK
) -> NLLEstimate:
    """Held-out NLL of ``x`` under ``model`` in nats per point, with its standard error."""
    return nll_estimate(log_likelihood(model, x, *context, chunk_size=chunk_size))
