"""Scoring data under a model: chunked log-likelihoods and NLL with its standard error."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

# Rows per chunk: small enough that a small flow's intermediate tensors stay in the
# CPU's cache (several times faster than one pass over a million rows), large enough
# that the per-operation overhead is amortized. Chosen by benchmarks/speed.py.
DEFAULT_CHUNK = 1 << 14


def _model_device(model: torch.nn.Module, default: torch.device) -> torch.device:
    return next((p.device for p in model.parameters()), default)


def log_likelihood(
    model: torch.nn.Module, x: Tensor, *context: Tensor, chunk_size: int = DEFAULT_CHUNK
) -> Tensor:
    """``model.log_prob`` of every row of ``x`` in chunks, in eval mode without autograd.

    Returns ``(n,)`` log-likelihoods in nats, the same values as one call of
    ``model.log_prob(x)``. Memory is bounded by ``chunk_size`` rows at a time, whatever
    ``n``; each chunk is moved to the model's device and the result is returned on the
    device of ``x``.
    """
    device = _model_device(model, x.device)
    out = torch.empty(len(x), dtype=x.dtype, device=x.device)
    with evaluating(model):
        for start in range(0, len(x), chunk_size):
            sl = slice(start, start + chunk_size)
            ctx = tuple(c[sl].to(device) for c in context)
            out[sl] = model.log_prob(x[sl].to(device), *ctx).to(out.device)
    return out


def sample_points(model: torch.nn.Module, n: int, *, chunk_size: int = DEFAULT_CHUNK) -> Tensor:
    """``n`` samples of an unconditional ``model``, drawn in chunks without autograd.

    Returns ``(n, width)`` on the model's device: ``model.sample`` called for chunks
    of ``chunk_size`` rows, so memory beyond the result is bounded by one chunk. For
    conditional flows use ``model.sample(n, context)``.
    """
    if not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    with evaluating(model):
        first = model.sample(min(chunk_size, n))
        with torch.inference_mode(False):  # a result usable with autograd later
            out = first.new_empty((n, *first.shape[1:]))
        out[: len(first)] = first
        for start in range(len(first), n, chunk_size):
            x = model.sample(min(chunk_size, n - start))
            out[start : start + len(x)] = x
    return out


@contextmanager
def evaluating(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode and ``inference_mode`` for a block; restores the training mode after."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        model.train(was_training)


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
