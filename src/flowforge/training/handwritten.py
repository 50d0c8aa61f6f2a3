"""Hand-written gradients of the mean NLL for coupling flows: a training step without autograd.

A training step of a small flow is a few hundred tiny tensor operations, and autograd's
bookkeeping (a graph node per operation, an accumulation node per parameter) costs more
than the arithmetic. For flows built only from the layers below, ``HandwrittenNLL``
computes the mean NLL of a batch and adds its gradient to every parameter's ``.grad``
with the chain rule written out: the numbers of ``(-model(x).mean()).backward()`` up to
floating-point rounding (``tests/training/test_handwritten.py`` compares them over
random shapes), in about half the time.

Supported: a ``NormalizingFlow`` whose base is a ``Multivariate`` normal, with layers
``Split``, ``Merge``, ``Swap``, ``AffineCoupling`` (log-scales ``"exp"``,
``"soft_clamp"``, ``"sigmoid"``) and ``AdditiveCoupling``, whose blocks are ``MLP``s of
``Linear`` layers and ``ReLU``/``Tanh``, with or without context, and no hooks: the
notebook's RealNVP and the ``realnvp``/``nice``-style couplings. ``handwritten_nll``
returns ``None`` for anything else, and ``fit`` then uses autograd.

Convention: values are carried feature-major, a batch of ``n`` points of width ``d`` as
a ``(d, n)`` tensor, so each feature is a contiguous row, a network layer is
``W @ h + b[:, None]`` and a coupling's halves are row blocks. Only the inverse
direction (data to latent) is needed, as ``log_prob`` uses it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor
from torch.distributions import Normal

from flowforge.distributions import Multivariate
from flowforge.flow import NormalizingFlow
from flowforge.layers.base import FlowLayer, SequentialFlow
from flowforge.layers.coupling import (
    AdditiveCoupling,
    AffineCoupling,
    SoftClampLogScale,
    exp_log_scale,
    sigmoid_log_scale,
)
from flowforge.layers.plumbing import Merge, Split, Swap
from flowforge.nets.mlp import MLP, _has_hooks
from flowforge.values import Value  # here feature-major: (d, n) tensors, or tuples of them


@dataclass
class _Batch:
    """Per-step constants shared by every layer's backward pass."""

    ones: Tensor  # (n,): a row sum is ``g @ ones``, one operation (bias gradients)
    minus_inv_n: Tensor  # 0-d, -1/n: minus the derivative of the loss by a sum of log-scales
    context: Tensor | None  # (c, n): the context columns, feature-major, or None


def _add_matmul(p: torch.nn.Parameter, a: Tensor, b: Tensor, alpha: float) -> None:
    """``p.grad += alpha * a @ b`` (made if ``p.grad`` is ``None``); skipped for frozen ``p``."""
    if not p.requires_grad:
        return
    if p.grad is None:
        p.grad = torch.mm(a, b).mul_(alpha)
    else:
        p.grad.addmm_(a, b, alpha=alpha)


def _add_row_sums(p: torch.nn.Parameter | None, g: Tensor, ones: Tensor, alpha: float) -> None:
    """``p.grad += alpha * g.sum(1)`` for a bias ``p`` (``None``: no bias)."""
    if p is None or not p.requires_grad:
        return
    if p.grad is None:
        p.grad = torch.mv(g, ones).mul_(alpha)
    else:
        p.grad.addmv_(g, ones, alpha=alpha)


# --- networks ----------------------------------------------------------------------


class _MLPGradients:
    """Forward and backward of an ``MLP`` (``Linear``, activation, ..., ``Linear``).

    Keeps views of the weights' data (``W``, ``W.T``, the bias as a column) so a step
    does not remake them; ``refresh()`` rebuilds them after the storage changed.
    """

    ACTIVATIONS = (torch.nn.ReLU, torch.nn.Tanh)

    def __init__(self, net: MLP) -> None:
        modules = list(net)
        self.linears = [(m.weight, m.bias) for m in modules[0::2]]
        self.tanh = [type(m) is torch.nn.Tanh for m in modules[1::2]]
        self.refresh()

    @classmethod
    def supports(cls, net: torch.nn.Module) -> bool:
        if type(net) is not MLP or _has_hooks(net):
            return False
        modules = list(net)
        return (
            all(type(m) is torch.nn.Linear and not _has_hooks(m) for m in modules[0::2])
            and all(type(m) in cls.ACTIVATIONS and not _has_hooks(m) for m in modules[1::2])
            and len(modules) % 2 == 1
        )

    def refresh(self) -> None:
        self.views = []
        for weight, bias in self.linears:
            w = weight.detach()
            column = None if bias is None else bias.detach().unsqueeze(1)
            self.views.append((w, w.t(), column))
        self.first_columns: dict[int, Tensor] = {}  # rows -> W_1[:, :rows].T

    def forward(self, h: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(out, inputs)``: the output ``(out_features, n)`` and each Linear's input."""
        inputs = []
        last = len(self.views) - 1
        for i, (w, _, column) in enumerate(self.views):
            inputs.append(h)
            h = torch.mm(w, h) if column is None else torch.addmm(column, w, h)
            if i < last:
                h = h.tanh_() if self.tanh[i] else h.relu_()
        return h, inputs

    def backward(
        self,
        inputs: list[Tensor],
        g: Tensor,
        batch: _Batch,
        grad_input: Tensor,
        rows: int,
        sign: float = 1.0,
    ) -> Tensor:
        """Add the parameter gradients for output gradient ``sign * g``; return
        ``grad_input`` plus the gradient of the first ``rows`` input rows (the rest is
        context). ``sign = -1`` spares the caller a negation."""
        for i in range(len(self.linears) - 1, -1, -1):
            weight, bias = self.linears[i]
            h = inputs[i]
            _add_matmul(weight, g, h.t(), sign)
            _add_row_sums(bias, g, batch.ones, sign)
            if i == 0:
                return torch.addmm(grad_input, self._first_columns(rows), g, alpha=sign)
            g = torch.mm(self.views[i][1], g)
            if self.tanh[i - 1]:  # h = tanh(a): da = dh * (1 - h^2)
                g = torch.addcmul(g, g * h, h, value=-1.0)
            else:  # h = relu(a): da = dh where h > 0
                g = torch.ops.aten.threshold_backward(g, h, 0)
        raise AssertionError("an MLP has at least one Linear layer")

    def _first_columns(self, rows: int) -> Tensor:
        columns = self.first_columns.get(rows)
        if columns is None:
            w, wt, _ = self.views[0]
            columns = wt if rows == w.shape[1] else w[:, :rows].t()
            self.first_columns[rows] = columns
        return columns


# --- log-scales of affine couplings --------------------------------------------------


class _LogScale:
    """``s = f(raw)`` of an affine coupling, as the inverse needs it: ``exp(-s)`` and the
    sum of ``s`` (as ``factor * total``), and in the backward pass ``ds/draw``."""

    factor = 1.0  # sum(s) = factor * the total that ``terms`` returns

    @staticmethod
    def make(function: Callable) -> _LogScale | None:
        if function is exp_log_scale:
            return _ExpLogScale()
        if function is sigmoid_log_scale:
            return _SigmoidLogScale()
        if type(function) is SoftClampLogScale and not _has_hooks(function):
            return _SoftClampLogScale(function.bound)
        return None

    def terms(self, raw: Tensor) -> tuple[Tensor, Tensor, Any]:
        """``(exp(-s), sum(s) / factor, saved)``."""
        raise NotImplementedError

    def times_derivative(self, g: Tensor, saved: Any) -> Tensor:
        """``g * ds/draw`` (``g`` may be overwritten)."""
        raise NotImplementedError


class _ExpLogScale(_LogScale):
    def terms(self, raw: Tensor) -> tuple[Tensor, Tensor, Any]:
        return raw.neg().exp_(), raw.sum(), None

    def times_derivative(self, g: Tensor, saved: Any) -> Tensor:
        return g


class _SoftClampLogScale(_LogScale):
    """``s = bound * tanh(raw / bound)``: ``ds/draw = 1 - tanh^2``."""

    def __init__(self, bound: float) -> None:
        self.factor = bound

    def terms(self, raw: Tensor) -> tuple[Tensor, Tensor, Any]:
        th = torch.div(raw, self.factor).tanh_()
        return th.mul(-self.factor).exp_(), th.sum(), th

    def times_derivative(self, g: Tensor, th: Tensor) -> Tensor:
        return g.addcmul_(g * th, th, value=-1.0)


class _SigmoidLogScale(_LogScale):
    """nflows' ``s = log(sigmoid(raw + 2) + 1e-3)``: ``ds/draw = sg (1 - sg) / (sg + 1e-3)``."""

    def terms(self, raw: Tensor) -> tuple[Tensor, Tensor, Any]:
        sg = torch.sigmoid(raw + 2.0)
        q = sg + 1e-3
        return q.reciprocal(), q.log().sum(), (sg, q)

    def times_derivative(self, g: Tensor, saved: Any) -> Tensor:
        sg, q = saved
        return g.mul_(sg * (1.0 - sg) / q)


# --- layers -----------------------------------------------------------------------


class _LayerGradients:
    """One layer's inverse, saving what its backward needs."""

    log_scale: _LogScale | None = None  # set by layers that add a log-determinant

    def inverse(self, z: Value, batch: _Batch) -> tuple[Value, Tensor | None, Any]:
        """``(z', the batch's sum of log-scales / log_scale.factor or None, saved)``."""
        raise NotImplementedError

    def backward(self, saved: Any, g: Value, batch: _Batch) -> Value:
        """The gradient with respect to the input, given the output's ``g``."""
        raise NotImplementedError

    def refresh(self) -> None:
        """Rebuild views of parameter data after the parameters' storage changed."""


class _SwapGradients(_LayerGradients):
    def inverse(self, z: Value, batch: _Batch) -> tuple[Value, None, None]:
        return (z[1], z[0]), None, None

    def backward(self, saved: None, g: Value, batch: _Batch) -> Value:
        return (g[1], g[0])


class _PartsGradients(_LayerGradients):
    """``Split`` (whose inverse joins the parts) and ``Merge`` (whose inverse splits)."""

    def __init__(self, layer: Split | Merge) -> None:
        self.sizes = list(layer.sizes) if layer.sizes is not None else None
        self.joins = isinstance(layer, Split)

    def _split(self, z: Tensor) -> tuple[Tensor, ...]:
        if self.sizes is None:
            return z.chunk(2)
        return z.split_with_sizes(self.sizes)

    def inverse(self, z: Value, batch: _Batch) -> tuple[Value, None, None]:
        return (torch.cat(z) if self.joins else self._split(z)), None, None

    def backward(self, saved: None, g: Value, batch: _Batch) -> Value:
        return self._split(g) if self.joins else torch.cat(g)


class _CouplingGradients(_LayerGradients):
    """Affine (``log_scale`` given) or additive coupling of a pair ``(z_A, z_B)``."""

    def __init__(self, layer: AffineCoupling | AdditiveCoupling, log_scale: _LogScale | None):
        self.net = _MLPGradients(layer.block)
        self.log_scale = log_scale

    def refresh(self) -> None:
        self.net.refresh()

    def inverse(self, z: Value, batch: _Batch) -> tuple[Value, Tensor | None, Any]:
        zA, zB = z
        h = zA if batch.context is None else torch.cat([zA, batch.context])
        out, inputs = self.net.forward(h)
        if self.log_scale is None:  # additive: z_B' = z_B - t
            return (zA, zB - out), None, (inputs, len(zA))
        raw, t = out.chunk(2)
        e, total, scale_saved = self.log_scale.terms(raw)
        zB = torch.sub(zB, t).mul_(e)  # z_B' = (z_B - t) exp(-s), log|det| = -sum(s)
        return (zA, zB), total, (inputs, len(zA), e, zB, scale_saved)

    def backward(self, saved: Any, g: Value, batch: _Batch) -> Value:
        # The MLP gets minus its output's gradient (sign -1): for an additive coupling
        # that is g_B itself (dz_B'/dt = -1), and it spares a negation below.
        gA, gB = g
        if self.log_scale is None:
            inputs, rows = saved
            return self.net.backward(inputs, gB, batch, gA, rows, -1.0), gB
        inputs, rows, e, zB, scale_saved = saved
        g_in = gB * e  # dz_B'/dz_B = exp(-s); dz_B'/dt = -exp(-s)
        # d loss / ds = 1/n (from -log|det| / n) - g_B' * z_B'  (as dz_B'/ds = -z_B')
        minus_g_s = torch.addcmul(batch.minus_inv_n, gB, zB)
        minus_g_raw = self.log_scale.times_derivative(minus_g_s, scale_saved)
        g_out = torch.cat([minus_g_raw, g_in])
        return self.net.backward(inputs, g_out, batch, gA, rows, -1.0), g_in


def _layer_gradients(layer: FlowLayer) -> _LayerGradients | None:
    if _has_hooks(layer):
        return None
    kind = type(layer)
    if kind is Swap:
        return _SwapGradients()
    if kind in (Split, Merge):
        return _PartsGradients(layer) if layer.dim == 1 else None
    if kind in (AffineCoupling, AdditiveCoupling) and _MLPGradients.supports(layer.block):
        if kind is AdditiveCoupling:
            return _CouplingGradients(layer, None)
        log_scale = _LogScale.make(layer.log_scale)
        return None if log_scale is None else _CouplingGradients(layer, log_scale)
    return None


def _flat_layers(flow: SequentialFlow) -> list[FlowLayer]:
    layers = []
    for layer in flow:
        if type(layer) is SequentialFlow and not _has_hooks(layer):
            layers += _flat_layers(layer)
        else:
            layers.append(layer)
    return layers


# --- the model ----------------------------------------------------------------------


class HandwrittenNLL:
    """The mean NLL of a batch and its gradient, for a supported ``NormalizingFlow``.

    ``nll(x, *context)`` returns the mean negative log-likelihood of the rows of ``x``
    (a detached 0-d tensor) and adds its gradient to every trainable parameter's
    ``.grad``, as ``loss = -model(x, *context).mean(); loss.backward()`` would. Make one
    with ``handwritten_nll(model)``; it reads the model's parameters at every call, so
    it follows training, ``load_state_dict`` and ``FlatAdam``'s buffers.
    """

    def __init__(self, model: NormalizingFlow, layers: list[_LayerGradients]) -> None:
        self.model = model
        self.layers = layers
        self._checked = False
        self._parameters = list(model.parameters())
        self._storage: tuple[int, ...] = ()  # where the parameters' data lived last call
        self._batch_key: tuple = ()
        self._batch: _Batch | None = None
        # each log-determinant total's factor, in the order of the inverse pass
        self._factor_list = [layer.log_scale.factor for layer in layers if layer.log_scale][::-1]
        self._factors: Tensor | None = None  # the same, as a tensor of the batch's dtype

    def __call__(self, x: Tensor, *context: Tensor) -> Tensor:
        with torch.no_grad():
            if not self._checked:  # once through the layers themselves, for their clear errors
                self.model(x[:2], *(c[:2] for c in context))
                self._checked = True
            storage = tuple(map(Tensor.data_ptr, self._parameters))
            if storage != self._storage:  # moved, converted, or put in FlatAdam's buffer
                for layer in self.layers:
                    layer.refresh()
                self._storage = storage
            return self._nll(x, context)

    def _constants(self, x: Tensor, context: tuple[Tensor, ...]) -> _Batch:
        """The batch's ``_Batch``, reused while the batch size, dtype and device stay."""
        n = x.shape[0]
        key = (n, x.dtype, x.device)
        if key != self._batch_key:
            self._batch = _Batch(x.new_ones(n), x.new_tensor(-1.0 / n), None)
            self._factors = x.new_tensor(self._factor_list)
            self._batch_key = key
        if not context:
            return self._batch
        parts = [c.reshape(n, -1).to(x.dtype) for c in context]
        columns = (parts[0] if len(parts) == 1 else torch.cat(parts, 1)).t().contiguous()
        return _Batch(self._batch.ones, self._batch.minus_inv_n, columns)

    def _nll(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        n = x.shape[0]
        batch = self._constants(x, context)
        z = x.t().contiguous()
        saved, totals = [], []
        for layer in reversed(self.layers):
            z, total, kept = layer.inverse(z, batch)
            saved.append(kept)
            if total is not None:
                totals.append(total)
        loss, g = self._base(z, n)
        if totals:  # the loss has + sum(s) / n for each coupling's log-scales s
            loss = loss.add_(torch.dot(torch.stack(totals), self._factors), alpha=1.0 / n)
        for layer, kept in zip(self.layers, reversed(saved)):
            g = layer.backward(kept, g, batch)
        return loss

    def _base(self, z: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """The mean NLL of ``z`` under the base, and its gradient by ``z`` (``(d, n)``)."""
        base = self.model.base_distribution
        loc, scale, minus_log_norm, _, standard = base._normal_constants(z.dtype)
        if standard:
            u, g = z, z / n
        else:
            scale = scale.expand(base.width).unsqueeze(1)
            u = (z - loc.expand(base.width).unsqueeze(1)) / scale
            g = u / (scale * n)
        flat = u.reshape(-1)
        return torch.dot(flat, flat).mul_(0.5 / n).sub_(minus_log_norm), g


def _build(model: torch.nn.Module) -> tuple[HandwrittenNLL | None, str | None]:
    """``(HandwrittenNLL, None)``, or ``(None, why not)`` naming the first unsupported part."""
    if type(model) is not NormalizingFlow or _has_hooks(model):
        return None, f"the model is a {type(model).__name__}, not a plain NormalizingFlow"
    base = model.base_distribution
    if type(base) is not Multivariate or base._dist_type is not Normal or _has_hooks(base):
        return None, f"the base distribution {base!r} is not a Multivariate normal"
    layers = []
    for layer in _flat_layers(model.flow):
        gradients = _layer_gradients(layer)
        if gradients is None:
            return None, f"layer {type(layer).__name__} has no hand-written gradient"
        layers.append(gradients)
    return HandwrittenNLL(model, layers), None


def handwritten_nll(model: torch.nn.Module) -> HandwrittenNLL | None:
    """``HandwrittenNLL`` for ``model``, or ``None`` if some part of it is not supported."""
    return _build(model)[0]


def unsupported_part(model: torch.nn.Module) -> str | None:
    """Why ``model`` has no hand-written gradients, or ``None`` when it has them."""
    return _build(model)[1]
