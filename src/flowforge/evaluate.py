"""Scoring data under a model: chunked log-likelihoods and NLL with its standard error."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.errors import InputError

# Rows per chunk: small enough that a small flow's intermediate tensors stay in the
# CPU's cache (several times faster than one pass over a million rows), large enough
# that the per-operation overhead is amortized: 32,768 was the fastest for the
# notebook's RealNVP on one thread in a sweep from 4,096 to 131,072 (benchmarks/speed.py
# sweeps every library's chunk size the same way).
DEFAULT_CHUNK = 1 << 15


def _model_device(model: torch.nn.Module, default: torch.device) -> torch.device:
    return next((p.device for p in model.parameters()), default)


def _model_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype of the model's first floating parameter (or buffer); the default dtype
    when it has none."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return next((t.dtype for t in tensors if t.is_floating_point()), torch.get_default_dtype())


def check_scored_points(model: torch.nn.Module, x: Tensor, chunk_size: int = DEFAULT_CHUNK) -> None:
    """Raise a one-line ``InputError`` unless ``x`` is a tensor of floating-point rows,
    every value finite (checked chunk by chunk: no full-size temporary)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"expected a tensor of points, got {type(x).__name__}")
    if not x.is_floating_point():
        dtype = _model_dtype(model)
        raise InputError(
            f"the points are {x.dtype} but the model's weights are {dtype}: convert the "
            f"input (x.to({dtype}))"
        )
    bad, first = 0, None
    for start in range(0, len(x), chunk_size):
        rows = ~torch.isfinite(x[start : start + chunk_size]).flatten(1).all(dim=1)
        count = int(rows.sum())
        if count and first is None:
            first = start + int(rows.nonzero()[0, 0])
        bad += count
    if bad:
        raise InputError(
            f"the points have {bad} row(s) with NaN or infinite values (of {len(x)}, the "
            f"first is row {first}); remove or impute them before scoring"
        )


def _chunks(
    model: torch.nn.Module, x: Tensor, context: tuple[Tensor, ...], chunk_size: int, exact: bool
) -> Iterator[tuple[slice, Tensor]]:
    """``(rows, log-likelihoods)`` chunk by chunk (in eval mode without autograd). With
    ``exact``, in float64: rows whose log-likelihood is ``-inf`` or NaN under a
    lower-precision model are scored again by a float64 copy of it, so a float32
    overflow far from the data (``-|z|²/2`` past 3.4e38) is a finite number, and only
    points outside the support stay ``-inf``."""
    check_scored_points(model, x, chunk_size)
    device, twin = _model_device(model, x.device), None
    with evaluating(model):
        for start in range(0, len(x), chunk_size):
            rows = slice(start, start + chunk_size)
            ctx = tuple(c[rows].to(device) for c in context)
            ll = model.log_prob(x[rows].to(device), *ctx)
            if exact:
                ll = ll.double()
                lost = torch.isneginf(ll) | torch.isnan(ll)  # NaN: an overflow inside
                if _model_dtype(model) != torch.float64 and bool(lost.any()):
                    twin = _float64_copy(model) if twin is None else twin
                    again = tuple(_double(c[lost]) for c in ctx)
                    ll[lost] = twin.log_prob(x[rows].to(device)[lost].double(), *again)
            yield rows, ll


def _float64_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A float64 copy of ``model`` in eval mode, made outside inference mode (its buffers
    must stay ordinary tensors)."""
    with torch.inference_mode(False):
        return copy.deepcopy(model).double().eval()


def _double(t: Tensor) -> Tensor:
    return t.double() if t.is_floating_point() else t


def log_likelihood(
    model: torch.nn.Module,
    x: Tensor,
    *context: Tensor,
    chunk_size: int = DEFAULT_CHUNK,
    exact: bool = False,
) -> Tensor:
    """``model.log_prob`` of every row of ``x`` in chunks, in eval mode without autograd.

    Returns ``(n,)`` log-likelihoods in nats, the same values as one call of
    ``model.log_prob(x)``. Memory is bounded by ``chunk_size`` rows at a time, whatever
    ``n``; each chunk is moved to the model's device and the result is returned on the
    device of ``x``. ``exact=True`` returns float64 values in which a lower-precision
    model's overflow to ``-inf`` far from the data is scored again in float64 (see
    ``mean_nll``).

    Args:
        model: A model with ``log_prob`` (a ``NormalizingFlow``, say).
        x: The points, ``(n, width)``.
        *context: For a conditional model, context tensors with one row per point.
        chunk_size: Rows scored at a time.
        exact: Return float64 values, rescoring in float64 the rows a lower-precision
            model overflows on.

    Returns:
        The log-likelihoods, shape ``(n,)``, on the device of ``x``.

    Raises:
        InputError: For rows with NaN or infinite values, and integer points
            (``check_scored_points``).

    Example:
        >>> import torch
        >>> from flowforge import Multivariate, NormalizingFlow
        >>> from flowforge.evaluate import log_likelihood
        >>> model = NormalizingFlow(Multivariate(2))
        >>> log_likelihood(model, torch.zeros(5, 2), chunk_size=2).round(decimals=4)
        tensor([-1.8379, -1.8379, -1.8379, -1.8379, -1.8379])
    """
    out = torch.empty(len(x), dtype=torch.float64 if exact else x.dtype, device=x.device)
    for rows, ll in _chunks(model, x, context, chunk_size, exact):
        out[rows] = ll.to(out.device)
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
    """Held-out NLL of ``x`` under ``model`` in nats per point, with its standard error.

    Streams: the sums are kept in float64 chunk by chunk (merged as Chan et al.'s
    parallel variance), so memory beyond the input is one chunk's, whatever ``n``. Rows
    whose log-likelihood overflows to ``-inf`` under a float32 (or half) model are
    scored again in float64, so ``n_outside`` counts only points outside the support.

    Args:
        model: A model with ``log_prob`` (a ``NormalizingFlow``, say).
        x: The held-out points, ``(n, width)``.
        *context: For a conditional model, context tensors with one row per point.
        chunk_size: Rows scored at a time.

    Returns:
        An ``NLLEstimate``: ``mean`` (nats per point), ``stderr``, ``n`` and
        ``n_outside``; ``mean`` is infinite when a point lies outside the support.

    Raises:
        InputError: For NaN or infinite rows and integer points.
        ValueError: For zero points.

    Example:
        >>> import torch
        >>> from flowforge import Multivariate, NormalizingFlow, mean_nll
        >>> model = NormalizingFlow(Multivariate(2))
        >>> print(mean_nll(model, torch.zeros(10, 2)))
        1.8379 ± 0.0000 nats (n=10)
        >>> _ = torch.manual_seed(0)
        >>> estimate = mean_nll(model, torch.randn(10_000, 2))
        >>> round(estimate.mean, 1), estimate.n  # the normal's entropy: 1 + log(2 pi)
        (2.8, 10000)
    """
    n, mean, m2, outside = 0, 0.0, 0.0, 0
    for _, ll in _chunks(model, x, context, chunk_size, exact=True):
        k = len(ll)
        if k == 0:
            continue
        lost = int(torch.isneginf(ll).sum())
        outside += lost
        if outside:
            n += k
            continue
        chunk_mean = float(ll.mean())
        chunk_m2 = float(((ll - chunk_mean) ** 2).sum())
        if n == 0:
            n, mean, m2 = k, chunk_mean, chunk_m2
            continue
        delta, total = chunk_mean - mean, n + k
        mean += delta * k / total
        m2 += chunk_m2 + delta * delta * n * k / total
        n = total
    if n == 0:
        raise ValueError("cannot estimate an NLL from zero points")
    if outside:
        return NLLEstimate(math.inf, math.nan, n, outside)
    stderr = math.sqrt(m2 / (n - 1)) / math.sqrt(n) if n > 1 else math.nan
    return NLLEstimate(-mean, stderr, n, 0)


# --- the no-gradient path of NormalizingFlow.log_prob and sample -------------------
#
# ``NormalizingFlow.log_prob`` (and ``sample``, ``sample_and_log_prob``) take this path
# whenever no autograd graph is being recorded: the points go through the flow in chunks
# of ``DEFAULT_CHUNK`` rows into a preallocated result, so memory beyond the result is
# one chunk's whatever the number of points, and a chunk's intermediates stay in the
# CPU's cache. A flow made of ``Split``, ``Merge``, ``Swap``, ``Reverse``, ``Permute``,
# ``Scale``, ``Translate``, ``ActNorm``, ``LULinear``, affine, additive or spline
# couplings conditioned by plain ``MLP``s and ``MaskedAutoregressive`` layers (or their
# ``Inverse``) with those transformers (the notebook's RealNVP and every vector family:
# ``realnvp``, ``nice``, ``glow``, ``maf``, ``iaf``, ``nsf``) runs through a ``ColumnPlan``
# (``flowforge.columns``): every value feature-major (a ``(features, rows)`` tensor,
# each feature one contiguous row, as the hand-written gradients carry them), every
# network layer one ``mm`` into a buffer reused chunk after chunk (the bias a column of
# the weight, times a row of ones), activations in place, a wide network in blocks of
# columns that stay in cache (``flowforge.nets.columns``); a MADE's weights are masked
# once per call. The transformers' own ``forward``/``inverse`` do the elementwise mathematics
# (elementwise, the layout is nothing to them). Any other flow goes through its own
# layers, chunk by chunk, in eval mode (in training mode, layers with batch statistics
# must see the whole batch).

# Whether ``NormalizingFlow`` evaluates in chunks when no gradient is needed, and
# whether it uses a ``ColumnPlan`` when the model has one. Switches:
# ``flowforge.evaluate.CHUNKED_CALLS = False`` (every call in one pass through the
# layers), ``flowforge.evaluate.COLUMN_PLANS = False`` (chunks through the layers).
CHUNKED_CALLS = True
COLUMN_PLANS = True
# Calls of fewer rows go in one pass: there a chunk is the whole call, and preparing a
# plan costs more than it saves (measured side by side: below about 8,192 rows the one
# pass was as fast or faster).
CHUNKED_FROM_ROWS = 8192
