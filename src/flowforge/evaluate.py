"""Scoring data under a model: chunked log-likelihoods and NLL with its standard error."""

from __future__ import annotations

import copy
import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import Tensor

from flowforge.errors import InputError
from flowforge.gradients import has_hooks
from flowforge.layers import Coupling, Merge, SequentialFlow, Split, Swap
from flowforge.nets.mlp import _DIRECT, MLP
from flowforge.transformers import AdditiveTransformer, AffineTransformer
from flowforge.transformers.log_scale import LOG_SCALES

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
# CPU's cache. A flow made of ``Split``, ``Merge``, ``Swap`` and affine or additive
# couplings conditioned by plain ``MLP``s (the notebook's RealNVP, the ``realnvp`` and
# ``nice``-style stacks) runs through a ``ColumnPlan``: every value feature-major (a
# ``(features, rows)`` tensor, each feature one contiguous row, as the hand-written
# gradients carry them), every network layer one ``addmm`` into a buffer reused chunk
# after chunk, activations in place. The transformers' own ``forward``/``inverse`` do
# the elementwise mathematics (elementwise, the layout is nothing to them). Any other
# flow goes through its own layers, chunk by chunk.

# Whether ``NormalizingFlow`` evaluates in chunks when no gradient is needed, and
# whether it uses a ``ColumnPlan`` when the model has one. Switches:
# ``flowforge.evaluate.CHUNKED_CALLS = False`` (every call in one pass through the
# layers), ``flowforge.evaluate.COLUMN_PLANS = False`` (chunks through the layers).
CHUNKED_CALLS = True
COLUMN_PLANS = True
# Calls of fewer rows go in one pass: there a chunk is the whole call, and preparing a
# plan costs more than it saves (measured by benchmarks/speed.py's small calls).
CHUNKED_FROM_ROWS = 8192

FeatureMajor = Tensor | tuple[Tensor, ...]


class _Net:
    """A plain ``MLP``'s layers on feature-major activations, written into buffers."""

    def __init__(self, net: torch.nn.Module) -> None:
        modules = list(net)
        linears = modules[0::2]
        activations = [(m, _DIRECT[type(m)][1]) for m in modules[1::2]] + [None]
        self.layers = [
            (m.weight, None if m.bias is None else m.bias.unsqueeze(1), act)
            for m, act in zip(linears, activations)
        ]
        self.widths = [m.out_features for m in linears]
        self.in_width = linears[0].in_features

    def bind(self, k: int, hidden: tuple[Tensor, Tensor], out: Tensor) -> list[tuple]:
        """The layers with their targets for ``k`` columns: views of the flat buffers,
        the hidden layers alternating between the two ``hidden``, the last in ``out``."""
        last = len(self.layers) - 1
        bound = []
        for i, (weight, bias, activation) in enumerate(self.layers):
            flat = out if i == last else hidden[i % 2]
            bound.append((weight, bias, flat[: self.widths[i] * k].view(-1, k), activation))
        return bound


def _run(bound: list[tuple], h: Tensor) -> Tensor:
    """A bound ``_Net`` on feature-major ``h``: one ``addmm`` per layer, activations in
    place."""
    for weight, bias, target, activation in bound:
        if bias is None:
            h = torch.mm(weight, h, out=target)
        else:
            h = torch.addmm(bias, weight, h, out=target)
        if activation is not None:
            h = activation[1](activation[0], h)
    return h


class ColumnPlan:
    """A ``NormalizingFlow``'s layers as steps on feature-major chunks, for evaluation
    without autograd (see the comment above this class). ``column_plan(model)`` makes
    one, or gives ``None`` for a model with a part the plan does not know.

    Example:
        >>> import torch
        >>> from flowforge import realnvp
        >>> from flowforge.evaluate import column_plan
        >>> _ = torch.manual_seed(0)
        >>> model = realnvp(2, couplings=2, hidden=8)
        >>> x = torch.randn(5, 2)
        >>> with torch.no_grad():
        ...     fast = column_plan(model).log_prob(x, (), torch.empty(5))
        ...     z, log_det = model.flow.inverse(x)
        >>> torch.allclose(fast, model.base_distribution.log_prob(z) + log_det)
        True
    """

    def __init__(
        self, model: torch.nn.Module, steps: list[tuple], hidden: int, out: int, context: int
    ) -> None:
        self.context_width = context
        self.base = model.base_distribution
        self.width = model.width
        self.steps = steps
        self.hidden_rows, self.out_rows = hidden, out

    def accepts(self, context: tuple[Tensor, ...]) -> bool:
        """Whether ``context`` has the columns the conditioners read (none: none)."""
        return sum(math.prod(c.shape[1:]) for c in context) == self.context_width

    def _scratch(self, k: int, like: Tensor) -> Callable[[int], tuple[Tensor, dict]]:
        """Flat buffers for chunks of up to ``k`` rows (the chunk's columns, two hidden
        activations, a network output), and a function giving, for a chunk of ``m``
        rows, the columns' view and every network bound to its targets."""
        sizes = [self.width * k, self.hidden_rows * k, self.hidden_rows * k, self.out_rows * k]
        columns, a, b, out = like.new_empty(sum(sizes)).split(sizes)
        nets = [step[2] for step in self.steps if step[0] == "coupling"]
        bound: dict[int, tuple[Tensor, dict]] = {}

        def views(m: int) -> tuple[Tensor, dict]:
            if m not in bound:
                bound[m] = (
                    columns[: self.width * m].view(self.width, m),
                    {id(net): net.bind(m, (a, b), out) for net in nets},
                )
            return bound[m]

        return views

    def _step(
        self,
        step: tuple,
        value: FeatureMajor,
        ctx: Tensor | None,
        log_det: Tensor,
        nets: dict,
        inverse: bool,
    ) -> FeatureMajor:
        kind = step[0]
        if kind == "swap":
            return (value[1], value[0])
        if kind != "coupling":  # split or merge: join the parts, or cut them
            if (kind == "split") == inverse:
                return torch.cat(value)
            sizes = step[1]
            return value.chunk(2) if sizes is None else value.split_with_sizes(list(sizes))
        _, transformer, net, n = step
        zA, zB = value
        out = _run(nets[id(net)], zA if ctx is None else torch.cat([zA, ctx]))
        params = out.chunk(n) if n > 1 else (out,)
        zB, ld = (transformer.inverse if inverse else transformer.forward)(zB, params)
        if ld is not None:
            log_det.add_(ld[0] if len(ld) == 1 else ld.sum(0))
        return (zA, zB)

    def log_prob(self, x: Tensor, context: tuple[Tensor, ...], out: Tensor) -> Tensor:
        """``model.log_prob(x, *context)``, written into ``out`` ``(n,)`` chunk by chunk."""
        n = len(x)
        k = min(DEFAULT_CHUNK, n)
        if k == 0:
            return out
        views = self._scratch(k, x)
        for start in range(0, n, k):
            rows = slice(start, start + k)
            chunk = x[rows]
            value, nets = views(len(chunk))
            value.copy_(chunk.t())
            ctx = _context_columns(context, rows, x.dtype)
            log_det = out[rows].zero_()
            for step in reversed(self.steps):
                value = self._step(step, value, ctx, log_det, nets, inverse=True)
            log_det.add_(self.base.log_prob(value.t()))
        return out

    def transform(self, z: Tensor, context: tuple[Tensor, ...], lp: Tensor | None) -> Tensor:
        """``flow.forward`` of the base draws ``z`` ``(n, width)``, in place, chunk by
        chunk; with ``lp`` ``(n,)``, also the samples' log-densities written there."""
        n = len(z)
        k = min(DEFAULT_CHUNK, n)
        if k == 0:
            return z
        views = self._scratch(k, z)
        log_det = z.new_empty(k)
        for start in range(0, n, k):
            rows = slice(start, start + k)
            chunk = z[rows]
            value, nets = views(len(chunk))
            value.copy_(chunk.t())
            ctx = _context_columns(context, rows, z.dtype)
            ld = log_det[: len(chunk)].zero_()
            if lp is not None:
                lp[rows] = self.base.log_prob(chunk)
            for step in self.steps:
                value = self._step(step, value, ctx, ld, nets, inverse=False)
            chunk.copy_(value.t())
            if lp is not None:
                lp[rows] -= ld
        return z


def _context_columns(context: tuple[Tensor, ...], rows: slice, dtype: torch.dtype) -> Tensor | None:
    """The context rows of a chunk as feature-major columns ``(c, k)`` (a transposed view)."""
    if not context:
        return None
    parts = [c[rows].reshape(len(c[rows]), -1).to(dtype) for c in context]
    return (parts[0] if len(parts) == 1 else torch.cat(parts, 1)).t()


def column_plan(model: torch.nn.Module) -> ColumnPlan | None:
    """The ``ColumnPlan`` of a ``NormalizingFlow``, or ``None`` when one of its parts is
    not a plain ``Split``, ``Merge``, ``Swap`` or affine/additive coupling with an
    ``MLP`` conditioner (a subclass that redefines a computation, a module with hooks,
    widths that do not fit: those go through the layers, which also give the errors).
    """
    flow, width = getattr(model, "flow", None), getattr(model, "width", None)
    if type(flow) is not SequentialFlow or width is None or has_hooks(flow) or _patched(flow):
        return None
    named_scales = tuple(LOG_SCALES.values())
    steps: list[tuple] = []
    value: int | tuple[int, ...] = width  # the widths of the value, checked layer by layer
    hidden = out = 0
    context_width: int | None = None
    for layer in flow.layers:
        if has_hooks(layer) or _patched(layer):
            return None
        kind = type(layer)
        if kind in (Split, Merge):
            if layer.dim != 1 or isinstance(value, int) != (kind is Split):
                return None
            if kind is Split:
                sizes = layer.sizes or (value - value // 2, value // 2)
                if sum(sizes) != value or min(sizes) < 1:
                    return None
                value = tuple(sizes)
            else:
                expected = layer.sizes or (sum(value) - sum(value) // 2, sum(value) // 2)
                if tuple(value) != tuple(expected):
                    return None
                value = sum(value)
            steps.append(("split" if kind is Split else "merge", layer.sizes))
        elif kind is Swap:
            if not (isinstance(value, tuple) and len(value) == 2):
                return None
            value = (value[1], value[0])
            steps.append(("swap",))
        elif isinstance(layer, Coupling) and _plain_coupling(layer):
            transformer, block = layer.transformer, layer.block
            if type(transformer) is AffineTransformer:
                if type(transformer.log_scale) not in named_scales:
                    return None
            elif type(transformer) is not AdditiveTransformer:
                return None
            if type(block) is not MLP or type(block).forward is not MLP.forward:
                return None
            if has_hooks(block) or not _alternating(block) or not isinstance(value, tuple):
                return None
            if len(value) != 2:
                return None
            net, n = _Net(block), transformer.params_per_element
            extra = net.in_width - value[0]
            if extra < 0 or (context_width is not None and extra != context_width):
                return None
            context_width = extra
            if net.widths[-1] != n * value[1]:
                return None
            hidden = max([hidden, *net.widths[:-1]])
            out = max(out, net.widths[-1])
            steps.append(("coupling", transformer, net, n))
        else:
            return None
    if value != width:
        return None
    return ColumnPlan(model, steps, hidden, out, context_width or 0)


def _patched(module: torch.nn.Module) -> bool:
    """Whether ``forward`` or ``inverse`` was replaced on the instance (a spy, a patch):
    then the plan, which would skip it, is not used."""
    return "forward" in vars(module) or "inverse" in vars(module)


def _alternating(net: torch.nn.Module) -> bool:
    """``Linear, activation, ..., Linear``, every activation one the ``MLP`` calls
    directly, nothing with hooks."""
    modules = list(net)
    return (
        len(modules) % 2 == 1
        and all(type(m) is torch.nn.Linear for m in modules[0::2])
        and all(type(m) in _DIRECT for m in modules[1::2])
        and not any(has_hooks(m) for m in modules)
    )


def _plain_coupling(layer: torch.nn.Module) -> bool:
    """A coupling whose computation is ``Coupling``'s own."""
    kind = type(layer)
    return all(
        getattr(kind, name) is getattr(Coupling, name)
        for name in ("forward", "inverse", "parameters_for")
    )
