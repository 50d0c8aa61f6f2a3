"""Hand-written gradients of the mean NLL: a training step without autograd's bookkeeping.

A training step of a small flow is a few hundred tiny tensor operations, and autograd's
bookkeeping costs more than the arithmetic. ``HandwrittenNLL`` computes the mean NLL of a
batch and adds its gradient to every parameter's ``.grad`` with the chain rule written
out, from the hand-written forms the model's own pieces offer (``handwritten()`` on the
flow, its layers, their networks and transformers, and the base; the conventions are in
``flowforge.gradients``): the numbers of ``(-model(x).mean()).backward()`` up to
floating-point rounding (``tests/training/test_handwritten.py`` compares them over
random shapes), in about half the time. This module only composes those pieces: it holds
no mathematics of any layer.

Supported today: a ``NormalizingFlow`` on a ``Multivariate`` normal or a
``GaussianMixture`` base whose layers are ``Split``, ``Merge``, ``Swap``, ``Reverse``,
couplings (affine with a named log-scale, additive, rational-quadratic spline)
conditioned by ``MLP``s of ``Linear`` layers and ReLU/Tanh, and ``MaskedAutoregressive``
layers (affine or spline) on a ``MADE``, with or without context, and no hooks: the
notebook's RealNVP and the ``realnvp``, ``maf`` and ``nsf`` families (coupling or
autoregressive, normal or mixture base). (The ``nice`` family ends in a learned
``Scale``, which has no hand-written form, so it trains through autograd.)
``handwritten_nll`` returns ``None`` for anything else (``unsupported_part`` says which
part), and ``fit`` then uses autograd.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from flowforge.gradients import Batch, HandwrittenLayer


class HandwrittenNLL:
    """The mean NLL of a batch and its gradient, for a model with hand-written forms.

    ``nll(x, *context)`` returns the mean negative log-likelihood of the rows of ``x``
    (a detached 0-d tensor) and adds its gradient to every trainable parameter's
    ``.grad``, as ``loss = -model(x, *context).mean(); loss.backward()`` would. Make one
    with ``handwritten_nll(model)``. The pieces cache views of the weights; they are
    rebuilt when a parameter's storage changed since the last call (a ``.to()``, a
    ``FlatParameters`` block), so one instance follows the model wherever it goes.
    """

    def __init__(self, model: torch.nn.Module, layers: HandwrittenLayer, base: Any) -> None:
        self.model = model
        self.layers, self.base = layers, base
        self._checked = False
        self._parameters = list(model.parameters())
        self._storage: tuple[int, ...] = ()  # where the parameters' data lived last call
        self._batch_key: tuple = ()
        self._batch: Batch | None = None

    def __call__(self, x: Tensor, *context: Tensor) -> Tensor:
        with torch.no_grad():
            if not self._checked:  # once through the layers themselves, for their clear errors
                self.model(x[:2], *(c[:2] for c in context))
                self._checked = True
            storage = tuple(map(Tensor.data_ptr, self._parameters))
            if storage != self._storage:
                self.layers.refresh()
                self._storage = storage
            return self._nll(x, context)

    def _constants(self, x: Tensor, context: tuple[Tensor, ...]) -> Batch:
        """The batch's ``Batch``, reused while the batch size, dtype and device stay."""
        n = x.shape[0]
        key = (n, x.dtype, x.device)
        if key != self._batch_key:
            self._batch = Batch(x.new_ones(n), x.new_tensor(-1.0 / n), None)
            self._batch_key = key
        if not context:
            return self._batch
        parts = [c.reshape(n, -1).to(x.dtype) for c in context]
        columns = (parts[0] if len(parts) == 1 else torch.cat(parts, 1)).t().contiguous()
        return Batch(self._batch.ones, self._batch.log_det_grad, columns)

    def _nll(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        n = x.shape[0]
        batch = self._constants(x, context)
        z, log_det, saved = self.layers.inverse(x.t().contiguous(), batch)
        loss, g = self.base.nll(z, n)
        if log_det is not None:  # log p = base + the inverse's log-det: loss -= sum / n
            loss = loss.sub_(log_det, alpha=1.0 / n)
        self.layers.backward(saved, g, batch)
        return loss


def _first_unsupported(flow: torch.nn.Module) -> str:
    """The type name of the first layer of ``flow`` (depth first) without a hand-written form."""
    for layer in getattr(flow, "layers", ()):
        if layer.handwritten() is None:
            inner = _first_unsupported(layer)
            return inner or type(layer).__name__
    return ""


def _build(model: torch.nn.Module) -> tuple[HandwrittenNLL | None, str | None]:
    """``(HandwrittenNLL, None)``, or ``(None, why not)`` naming the first unsupported part."""
    make = getattr(model, "handwritten", None)
    parts = make() if callable(make) else None
    if parts is not None:
        return HandwrittenNLL(model, *parts), None
    if not callable(make):
        return None, f"the model is a {type(model).__name__}, not a NormalizingFlow"
    base = model.base_distribution
    make_base = getattr(base, "handwritten", None)
    if not callable(make_base) or make_base() is None:
        return None, f"the base distribution {base!r} has no hand-written gradient (a normal has)"
    layer = _first_unsupported(model.flow)
    if layer:
        return None, f"layer {layer} has no hand-written gradient"
    return None, f"the model {type(model).__name__} has no hand-written gradient (hooks?)"


def handwritten_nll(model: torch.nn.Module) -> HandwrittenNLL | None:
    """``HandwrittenNLL`` for ``model``, or ``None`` if some part of it is not supported."""
    return _build(model)[0]


def unsupported_part(model: torch.nn.Module) -> str | None:
    """Why ``model`` has no hand-written gradients, or ``None`` when it has them."""
    return _build(model)[1]
