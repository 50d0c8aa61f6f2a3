"""Column plans: a ``NormalizingFlow`` of plumbing, MLP couplings, MADE autoregressive
layers (MAF, NSF, IAF) and row-wise layers (``Scale``, ``Translate``, ``ActNorm``,
``LULinear``) evaluated on feature-major chunks without autograd (the no-gradient path
of ``log_prob`` and ``sample``; ``flowforge.evaluate`` explains when it is taken)."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

import flowforge.evaluate as evaluate
from flowforge.gradients import has_hooks
from flowforge.layers import (
    ActNorm,
    Coupling,
    Inverse,
    LULinear,
    MaskedAutoregressive,
    Merge,
    Permute,
    Reverse,
    Scale,
    SequentialFlow,
    Split,
    Swap,
    Translate,
)
from flowforge.nets.columns import ColumnNet
from flowforge.nets.made import MADE, MaskedLinear
from flowforge.nets.mlp import _DIRECT, MLP
from flowforge.transformers import AdditiveTransformer, AffineTransformer, SplineTransformer
from flowforge.transformers.log_scale import LOG_SCALES

FeatureMajor = Tensor | tuple[Tensor, ...]


class ColumnPlan:
    """A ``NormalizingFlow``'s layers as steps on feature-major chunks, for evaluation
    without autograd (``flowforge.evaluate``'s notes on the no-gradient path say when).
    ``column_plan(model)`` makes one, or gives ``None`` for a model with a part the plan
    does not know.

    Example:
        >>> import torch
        >>> from flowforge import realnvp
        >>> from flowforge.columns import column_plan
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
        self.hidden_rows, self.out_rows = hidden + 1, out  # and a row of ones
        self.nets = [step[2] for step in steps if step[0] in ("coupling", "made")]
        self.in_rows = max((net.in_width + 1 for net in self.nets), default=0)

    def accepts(self, context: tuple[Tensor, ...]) -> bool:
        """Whether ``context`` has the columns the conditioners read (none: none)."""
        return sum(math.prod(c.shape[1:]) for c in context) == self.context_width

    def _scratch(self, k: int, like: Tensor) -> Callable[[int], tuple[Tensor, dict]]:
        """Flat buffers for chunks of up to ``k`` rows (the chunk's columns, a network
        input, two hidden activations, a network output), and a function giving, for a
        chunk of ``m`` rows, the columns' view and every network bound to its targets."""
        rows = (self.width, self.in_rows, self.hidden_rows, self.hidden_rows, self.out_rows)
        columns, given, a, b, out = like.new_empty(sum(rows) * k).split([r * k for r in rows])
        bound: dict[int, tuple[Tensor, dict]] = {}

        def views(m: int) -> tuple[Tensor, dict]:
            if m not in bound:
                bound[m] = (
                    columns[: self.width * m].view(self.width, m),
                    {id(net): net.bind(m, given, (a, b), out) for net in self.nets},
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
        if kind == "reverse":
            return value.flip(0)
        if kind == "permute":  # the order that undoes x = z[:, order] going back
            return value.index_select(0, step[2] if inverse else step[1])
        if kind == "rowwise":  # the layer itself, on a (rows, width) view of the columns
            out, ld = (step[1].inverse if inverse else step[1].forward)(value.t())
            log_det.add_(ld)
            return out.t().contiguous()
        if kind == "made":
            own = inverse != step[5]  # the MADE layer's own direction (swapped in IAF's)
            if own:  # data to latent: one pass, every element's parameters at once
                value, ld = _transformed(step, value, value, ctx, nets, own)
            else:  # latent to data: pass i fixes element i, the last one gives all
                z = value
                for _ in range(step[4]):
                    value, ld = _transformed(step, value, z, ctx, nets, own)
            _add_log_det(log_det, ld)
            return value
        if kind != "coupling":  # split or merge: join the parts, or cut them
            if (kind == "split") == inverse:
                return torch.cat(value)
            sizes = step[1]
            return value.chunk(2) if sizes is None else value.split_with_sizes(list(sizes))
        zA, zB = value
        zB, ld = _transformed(step, zA, zB, ctx, nets, inverse)
        _add_log_det(log_det, ld)
        return (zA, zB)

    def log_prob(self, x: Tensor, context: tuple[Tensor, ...], out: Tensor) -> Tensor:
        """``model.log_prob(x, *context)``, written into ``out`` ``(n,)`` chunk by chunk."""
        n = len(x)
        k = min(evaluate.DEFAULT_CHUNK, n)
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
        k = min(evaluate.DEFAULT_CHUNK, n)
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


def _transformed(
    step: tuple, given: Tensor, target: Tensor, ctx: Tensor | None, nets: dict, inverse: bool
) -> tuple[Tensor, Tensor | None]:
    """The transformer of a coupling or MADE ``step`` applied to ``target``, its
    parameters the step's network on ``given`` (and the context): ``(value, log-det)``."""
    transformer, net, n = step[1:4]
    out = net.run(nets[id(net)], (given,) if ctx is None else (given, ctx))
    # parameter-first (n, width of the target, k), as Coupling.parameters_for lays it out
    # (and ColumnNet.of_made orders a MADE's rows): an affine or additive transformer unpacks
    # it, a spline takes it whole
    params = out.view(n, -1, out.shape[-1])
    return (transformer.inverse if inverse else transformer.forward)(target, params)


def _add_log_det(log_det: Tensor, ld: Tensor | None) -> None:
    """Add a transformer's elementwise log-derivatives ``(width, k)`` to ``log_det``."""
    if ld is not None:
        log_det.add_(ld[0] if len(ld) == 1 else ld.sum(0))


def _context_columns(context: tuple[Tensor, ...], rows: slice, dtype: torch.dtype) -> Tensor | None:
    """The context rows of a chunk as feature-major columns ``(c, k)`` (a transposed view)."""
    if not context:
        return None
    parts = [c[rows].reshape(len(c[rows]), -1).to(dtype) for c in context]
    return (parts[0] if len(parts) == 1 else torch.cat(parts, 1)).t()


def column_plan(model: torch.nn.Module) -> ColumnPlan | None:
    """The ``ColumnPlan`` of a ``NormalizingFlow``, or ``None`` when one of its parts is
    not a plain ``Split``, ``Merge``, ``Swap``, ``Reverse``, ``Permute``, ``Scale``,
    ``Translate``, ``ActNorm``, ``LULinear``, affine, additive or spline
    coupling with an ``MLP`` conditioner, or ``MaskedAutoregressive`` layer (or its
    ``Inverse``) with one of those transformers (a subclass that redefines a
    computation, a module with hooks, widths that do not fit: those go through the
    layers, which also give the errors).
    """
    flow, width = getattr(model, "flow", None), getattr(model, "width", None)
    if type(flow) is not SequentialFlow or width is None or has_hooks(flow) or _patched(flow):
        return None
    steps: list[tuple] = []
    value: int | tuple[int, ...] = width  # the widths of the value, checked layer by layer
    hidden = out = 0
    context_width: int | None = None
    for layer in flow.layers:
        if has_hooks(layer) or _patched(layer):
            return None
        unconditioned = _unconditioned_step(layer, value)
        if unconditioned is not None:
            step, value = unconditioned
            steps.append(step)
            continue
        conditioned = _conditioned_step(layer, value)
        if conditioned is None:  # not a part the plan knows, or widths that do not fit
            return None
        step, given, target = conditioned
        net = step[2]  # the conditioner reads `given` columns and the context
        extra = net.in_width - given
        if extra < 0 or (context_width is not None and extra != context_width):
            return None
        context_width = extra
        if net.widths[-1] != step[3] * target:
            return None
        hidden = max([hidden, *net.widths[:-1]])
        out = max(out, net.widths[-1])
        steps.append(step)
    if value != width:
        return None
    return ColumnPlan(model, steps, hidden, out, context_width or 0)


def _unconditioned_step(layer: torch.nn.Module, value: int | tuple[int, ...]) -> tuple | None:
    """``(step, widths after it)`` for a layer without a conditioner network that fits the
    ``value``'s widths: a ``Split``, ``Merge``, ``Swap``, ``Reverse``, ``Permute`` or
    row-wise layer (``_rowwise``); ``None`` otherwise."""
    kind = type(layer)
    if kind in (Split, Merge):
        if layer.dim != 1 or isinstance(value, int) != (kind is Split):
            return None
        if kind is Split:
            sizes = layer.sizes or (value - value // 2, value // 2)
            fits = sum(sizes) == value and min(sizes) >= 1
            return (("split", layer.sizes), tuple(sizes)) if fits else None
        expected = layer.sizes or (sum(value) - sum(value) // 2, sum(value) // 2)
        return (("merge", layer.sizes), sum(value)) if tuple(value) == tuple(expected) else None
    if kind is Swap and isinstance(value, tuple) and len(value) == 2:
        return ("swap",), (value[1], value[0])
    if kind is Reverse and isinstance(value, int):
        return ("reverse",), value
    if kind is Permute and isinstance(value, int) and len(layer.permutation) == value:
        return ("permute", layer.permutation, layer.inverse_permutation), value
    if _rowwise(layer, value):
        return ("rowwise", layer), value
    return None


def _rowwise(layer: torch.nn.Module, value: int | tuple[int, ...]) -> bool:
    """A ``Scale``, ``Translate``, ``ActNorm`` or ``LULinear`` of the value's width: each
    row of its output depends on that row of its input alone, so the plan calls the layer
    itself on a ``(rows, width)`` view of a chunk's columns. (An ``ActNorm`` about to be
    initialized never reaches a plan: ``NormalizingFlow`` then keeps the call in one pass.)"""
    if not isinstance(value, int):
        return False
    kind = type(layer)
    if kind in (Scale, Translate):
        factor = layer.scale if kind is Scale else layer.offset
        return factor.dim() <= 1 and factor.numel() in (1, value)
    if kind is ActNorm:
        return layer.width == value
    return kind is LULinear and len(layer.bias) == value


def _conditioned_step(layer: torch.nn.Module, value: int | tuple[int, ...]) -> tuple | None:
    """``(step, columns its network reads, width it transforms)`` for a plain coupling or
    ``MaskedAutoregressive`` layer on the ``value``'s widths; ``None`` otherwise."""
    if isinstance(layer, Coupling) and _plain_coupling(layer):
        block = layer.block
        plain = _plain_transformer(layer.transformer) and type(block) is MLP
        plain = plain and not has_hooks(block) and _alternating(block, torch.nn.Linear)
        if not plain or not (isinstance(value, tuple) and len(value) == 2):
            return None
        n = layer.transformer.params_per_element
        return ("coupling", layer.transformer, ColumnNet.of_mlp(block), n), value[0], value[1]
    flipped = type(layer) is Inverse  # an IAF layer: the MADE's directions swapped
    if flipped:
        layer = layer.layer
        if has_hooks(layer) or _patched(layer):
            return None
    if isinstance(layer, MaskedAutoregressive) and _plain_autoregressive(layer):
        made = layer.made  # value is an int when it equals the widths
        if not _plain_transformer(layer.transformer) or not made.features == layer.width == value:
            return None
        n = layer.transformer.params_per_element
        step = ("made", layer.transformer, ColumnNet.of_made(made), n, value, flipped)
        return step, value, value
    return None


def _plain_transformer(transformer: torch.nn.Module) -> bool:
    """An affine transformer with a named log-scale, an additive or a spline one."""
    if type(transformer) is AffineTransformer:
        return type(transformer.log_scale) in tuple(LOG_SCALES.values())
    return type(transformer) in (AdditiveTransformer, SplineTransformer)


def _patched(module: torch.nn.Module) -> bool:
    """Whether ``forward`` or ``inverse`` was replaced on the instance (a spy, a patch):
    then the plan, which would skip it, is not used."""
    return "forward" in vars(module) or "inverse" in vars(module)


def _alternating(net: torch.nn.Module, linear: type) -> bool:
    """``linear, activation, ..., linear``, every activation one the ``MLP`` calls
    directly, nothing with hooks."""
    modules = list(net)
    return (
        len(modules) % 2 == 1
        and all(type(m) is linear for m in modules[0::2])
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


def _plain_autoregressive(layer: torch.nn.Module) -> bool:
    """A ``MaskedAutoregressive`` layer whose computation is its class's own, with a plain
    ``MADE`` (``MaskedLinear`` layers and activations the ``MLP`` calls directly)."""
    kind, made = type(layer), layer.made
    return (
        all(
            getattr(kind, name) is getattr(MaskedAutoregressive, name)
            for name in ("forward", "inverse")
        )
        and type(made) is MADE
        and not (has_hooks(made) or has_hooks(made.net) or _patched(made))
        and type(made.net) is torch.nn.Sequential
        and _alternating(made.net, MaskedLinear)
    )
