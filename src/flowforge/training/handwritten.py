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
from flowforge.nets import MLP, _has_hooks
from flowforge.values import Value  # here feature-major: (d, n) tensors, or tuples of them


@dataclass
class _Batch:
    """Per-step constants shared by every layer's backward pass."""

    ones: Tensor  # (n,): a row sum is ``g @ ones``, one operation (bias gradients)
    inv_n: Tensor  # 0-d, 1/n: the derivative of the loss by a layer's sum of log-scales
    context: Tensor | None  # (c, n): the context columns, feature-major, or None


def _add_matmul(p: torch.nn.Parameter, a: Tensor, b: Tensor) -> None:
    """``p.grad += a @ b`` (made if ``p.grad`` is ``None``); skipped for frozen ``p``."""
    if not p.requires_grad:
        return
    if p.grad is None:
        p.grad = a @ b
    else:
        p.grad.addmm_(a, b)


def _add_row_sums(p: torch.nn.Parameter | None, g: Tensor, ones: Tensor) -> None:
    """``p.grad += g.sum(1)`` for a bias ``p`` (``None``: no bias)."""
    if p is None or not p.requires_grad:
        return
    if p.grad is None:
        p.grad = g @ ones
    else:
        p.grad.addmv_(g, ones)


# --- networks ----------------------------------------------------------------------


class _MLPGradients:
    """Forward and backward of an ``MLP`` (``Linear``, activation, ..., ``Linear``)."""

    ACTIVATIONS = (torch.nn.ReLU, torch.nn.Tanh)

    def __init__(self, net: MLP) -> None:
        modules = list(net)
        self.linears = [(m.weight, m.bias) for m in modules[0::2]]
        self.tanh = [type(m) is torch.nn.Tanh for m in modules[1::2]]

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

    def forward(self, h: Tensor) -> tuple[Tensor, list[Tensor]]:
        """``(out, inputs)``: the output ``(out_features, n)`` and each Linear's input."""
        inputs = []
        last = len(self.linears) - 1
        for i, (weight, bias) in enumerate(self.linears):
            inputs.append(h)
            h = weight @ h if bias is None else torch.addmm(bias.unsqueeze(1), weight, h)
            if i < last:
                h = h.tanh_() if self.tanh[i] else h.relu_()
        return h, inputs

    def backward(
        self, inputs: list[Tensor], g: Tensor, batch: _Batch, grad_input: Tensor, rows: int
    ) -> Tensor:
        """Add the parameter gradients for output gradient ``g``; return ``grad_input``
        plus the gradient of the first ``rows`` input rows (the rest is context)."""
        for i in range(len(self.linears) - 1, -1, -1):
            weight, bias = self.linears[i]
            h = inputs[i]
            _add_matmul(weight, g, h.t())
            _add_row_sums(bias, g, batch.ones)
            if i == 0:
                w = weight if rows == weight.shape[1] else weight[:, :rows]
                return torch.addmm(grad_input, w.t(), g)
            g = weight.t() @ g
            if self.tanh[i - 1]:  # h = tanh(a): da = dh * (1 - h^2)
                g = g.mul_(torch.addcmul(batch.inv_n.new_ones(()), h, h, value=-1.0))
            else:  # h = relu(a): da = dh where h > 0
                g = torch.ops.aten.threshold_backward(g, h, 0)
        raise AssertionError("an MLP has at least one Linear layer")


# --- log-scales of affine couplings --------------------------------------------------


class _LogScale:
    """``s = f(raw)`` of an affine coupling, as the inverse needs it: ``exp(-s)``, the
    sum of ``s``, and (in the backward pass) ``ds/draw``, from what ``terms`` saved."""

    @staticmethod
    def make(function: Callable) -> _LogScale | None:
        if function is exp_log_scale:
            return _ExpLogScale()
        if function is sigmoid_log_scale:
            return _SigmoidLogScale()
        if type(function) is SoftClampLogScale and not _has_hooks(function):
            return _SoftClampLogScale(function)
        return None

    def terms(self, raw: Tensor) -> tuple[Tensor, Tensor, Any]:
        """``(exp(-s), sum(s), saved)``."""
        raise NotImplementedError

    def times_derivative(self, g: Tensor, saved: Any, out: Tensor) -> None:
        """``out = g * ds/draw``."""
        raise NotImplementedError


class _ExpLogScale(_LogScale):
    def terms(self, raw: Tensor) -> tuple[Tensor, Tensor, Any]:
        return torch.exp(raw.neg()), raw.sum(), None

    def times_derivative(self, g: Tensor, saved: Any, out: Tensor) -> None:
        out.copy_(g)


class _SoftClampLogScale(_LogScale):
    """``s = bound * tanh(raw / bound)``: ``ds/draw = 1 - tanh^2``. Reads the module's
    own constants (buffers in the model's dtype), so the numbers match its forward."""

    def __init__(self, module: SoftClampLogScale) -> None:
        self.module = module

    def terms(self, raw: Tensor) -> tuple[Tensor, Tensor, Any]:
        bound = self.module._bound
        th = torch.tanh(raw * self.module._inverse_bound)
        s = th * bound
        return torch.exp(s.neg()), s.sum(), th

    def times_derivative(self, g: Tensor, th: Tensor, out: Tensor) -> None:
        # bound * inverse_bound is 1 up to the rounding of the stored constants
        slope = self.module._bound * self.module._inverse_bound
        torch.mul(g, torch.addcmul(slope, th * slope, th, value=-1.0), out=out)


class _SigmoidLogScale(_LogScale):
    """nflows' ``s = log(sigmoid(raw + 2) + 1e-3)``: ``ds/draw = sg (1 - sg) / (sg + 1e-3)``."""

    def terms(self, raw: Tensor) -> tuple[Tensor, Tensor, Any]:
        sg = torch.sigmoid(raw + 2.0)
        q = sg + 1e-3
        return q.reciprocal(), q.log().sum(), (sg, q)

    def times_derivative(self, g: Tensor, saved: Any, out: Tensor) -> None:
        sg, q = saved
        torch.mul(g, sg * (1.0 - sg) / q, out=out)


# --- layers -----------------------------------------------------------------------


class _LayerGradients:
    """One layer's inverse, saving what its backward needs."""

    def inverse(self, z: Value, batch: _Batch) -> tuple[Value, Tensor | None, Any]:
        """``(z', sum of log|det| over the batch or None, saved)``."""
        raise NotImplementedError

    def backward(self, saved: Any, g: Value, batch: _Batch) -> Value:
        """The gradient with respect to the input, given the output's ``g``."""
        raise NotImplementedError


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
            return torch.chunk(z, 2, dim=0)
        return torch.split(z, self.sizes, dim=0)

    def inverse(self, z: Value, batch: _Batch) -> tuple[Value, None, None]:
        return (torch.cat(z) if self.joins else self._split(z)), None, None

    def backward(self, saved: None, g: Value, batch: _Batch) -> Value:
        return self._split(g) if self.joins else torch.cat(g)


class _CouplingGradients(_LayerGradients):
    """Affine (``log_scale`` given) or additive coupling of a pair ``(z_A, z_B)``."""

    def __init__(self, layer: AffineCoupling | AdditiveCoupling, log_scale: _LogScale | None):
        self.net = _MLPGradients(layer.block)
        self.log_scale = log_scale

    def inverse(self, z: Value, batch: _Batch) -> tuple[Value, Tensor | None, Any]:
        zA, zB = z
        h = zA if batch.context is None else torch.cat([zA, batch.context])
        out, inputs = self.net.forward(h)
        if self.log_scale is None:  # additive: z_B' = z_B - t
            return (zA, zB - out), None, (inputs, len(zA))
        width = len(zB)
        raw, t = out[:width], out[width:]
        e, s_sum, scale_saved = self.log_scale.terms(raw)
        zB = (zB - t).mul_(e)  # z_B' = (z_B - t) exp(-s), log|det| = -sum(s)
        return (zA, zB), s_sum.neg(), (inputs, len(zA), out, e, zB, scale_saved)

    def backward(self, saved: Any, g: Value, batch: _Batch) -> Value:
        gA, gB = g
        if self.log_scale is None:
            inputs, rows = saved
            return self.net.backward(inputs, gB.neg(), batch, gA, rows), gB
        inputs, rows, out, e, zB, scale_saved = saved
        width = len(zB)
        g_in = gB * e
        g_out = torch.empty_like(out)
        # d loss / ds = 1/n (from -log|det| / n) - g_B' * z_B'  (as dz_B'/ds = -z_B')
        g_s = torch.addcmul(batch.inv_n, gB, zB, value=-1.0)
        self.log_scale.times_derivative(g_s, scale_saved, g_out[:width])
        torch.neg(g_in, out=g_out[width:])  # dz_B'/dt = -exp(-s)
        return self.net.backward(inputs, g_out, batch, gA, rows), g_in


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

    def __call__(self, x: Tensor, *context: Tensor) -> Tensor:
        with torch.no_grad():
            if not self._checked:  # once through the layers themselves, for their clear errors
                self.model(x[:2], *(c[:2] for c in context))
                self._checked = True
            return self._nll(x, context)

    def _nll(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        n = x.shape[0]
        columns = None
        if context:
            parts = [c.reshape(n, -1).to(x.dtype) for c in context]
            columns = (parts[0] if len(parts) == 1 else torch.cat(parts, 1)).t().contiguous()
        batch = _Batch(x.new_ones(n), x.new_tensor(1.0 / n), columns)
        z = x.t().contiguous()
        saved, log_det = [], None
        for layer in reversed(self.layers):
            z, layer_log_det, kept = layer.inverse(z, batch)
            saved.append(kept)
            if layer_log_det is not None:
                log_det = layer_log_det if log_det is None else log_det + layer_log_det
        loss, g = self._base(z, n)
        if log_det is not None:
            loss = loss - log_det / n
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
        return torch.dot(flat, flat) * (0.5 / n) - minus_log_norm, g


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
