"""The transformer protocol: an elementwise monotone map whose parameters come from a network.

Coupling and autoregressive layers compute, for every transformed element, a few
unconstrained numbers and hand them to a transformer as ``params``: a sequence of
``params_per_element`` tensors, each shaped like the elements (a coupling's conditioner
output cut into chunks, a MADE's output unbound along its last dimension).
``forward(z, params) -> (x, log|dx/dz|)`` and ``inverse(x, params) -> (z, log|dz/dx|)``
act elementwise, so every returned tensor is shaped like the input; the log-derivative is
``None`` for a volume-preserving transformer (it is zero). The layer sums it per sample.

A transformer has no parameters: it says how numbers become a monotone map. Any constants
it keeps (a log-scale's, say) are non-persistent buffers, so they follow ``.to(device)``
and ``.double()`` without entering the ``state_dict``.

Optionally a transformer offers hand-written gradients of its inverse (see
``flowforge.gradients``): ``handwritten()`` returns an object (``HandwrittenTransformer``)
with ``inverse_saving(x, params) -> (z, log|dz/dx| or None, saved)`` and
``inverse_backward(saved, g_z, log_det_grad) -> (g_x, minus_g_params)``, where
``log_det_grad`` is the loss's derivative by each element's log-derivative (broadcastable)
and ``minus_g_params`` holds the *negated* gradient by each of the ``params`` (the sign
spares a negation in the usual maps; the network's backward takes it back). The object
sits next to its transformer, in the same module.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import torch
from torch import Tensor

Params = Sequence[Tensor]


class HandwrittenTransformer(Protocol):
    """A transformer's inverse with its hand-written backward (see the module docstring)."""

    def inverse_saving(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor | None, Any]: ...

    def inverse_backward(
        self, saved: Any, g_z: Tensor, log_det_grad: Tensor
    ) -> tuple[Tensor, tuple[Tensor, ...]]: ...


class Transformer(torch.nn.Module):
    """A family of elementwise monotone maps indexed by ``params_per_element`` numbers."""

    params_per_element: int
    volume_preserving: bool = False

    def forward(self, z: Tensor, params: Params) -> tuple[Tensor, Tensor | None]:
        """Latent ``z`` to data; returns ``(x, log|dx/dz|)`` shaped like ``z``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def inverse(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor | None]:
        """Data ``x`` to latent; returns ``(z, log|dz/dx|)`` shaped like ``x``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement inverse()")

    def handwritten(self) -> HandwrittenTransformer | None:
        """The inverse with hand-written gradients, or ``None`` (the default: autograd)."""
        return None
