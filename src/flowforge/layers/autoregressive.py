"""``MaskedAutoregressive``: MAF's layer, one MADE pass from data to latent, D passes back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from flowforge.gradients import Batch, has_hooks, owns_handwritten
from flowforge.gradients import Value as FeatureMajor
from flowforge.layers.base import FlowLayer, require_matrix
from flowforge.layers.coupling import total_log_det
from flowforge.nets.made import MADE
from flowforge.transformers import HandwrittenTransformer, Transformer, resolve_transformer
from flowforge.values import Value, per_sample


class MaskedAutoregressive(FlowLayer):
    """A masked autoregressive layer, affine or spline.

    Element ``i`` of the data ``x`` is a monotone map of latent ``z_i`` whose parameters
    come from ``x[:, :i]`` and the context, through a ``MADE`` network (Papamakarios et
    al., Masked autoregressive flow for density estimation, NeurIPS 2017). So
    ``inverse`` (data to latent, the density direction) is one network pass, while
    ``forward`` (latent to data, sampling) takes ``width`` passes. Wrap it in
    ``Inverse`` to swap the two speeds (IAF: Kingma et al., Improved variational
    inference with inverse autoregressive flow, NeurIPS 2016). The Jacobian is lower
    triangular in either direction.

    Args:
        width: The number of dimensions.
        hidden: The width of the ``MADE``'s hidden layers.
        transformer: ``"affine"`` (default), ``"spline"``, or a ``Transformer``
            instance (``flowforge.transformers``).
        context_width: The number of context columns (0: unconditional).
        num_hidden_layers: The ``MADE``'s hidden layers.
        activation: The hidden layers' activation (a module class).
        zero_init: Zero the ``MADE``'s output layer, so that the layer starts as the
            identity (for the affine and spline transformers).

    Example:
        >>> import torch
        >>> from flowforge import check_flow
        >>> from flowforge.layers import MaskedAutoregressive
        >>> _ = torch.manual_seed(0)
        >>> layer = MaskedAutoregressive(3, hidden=16)
        >>> z, log_det = layer.inverse(torch.randn(5, 3))  # one pass: the density side
        >>> z.shape, log_det.shape
        (torch.Size([5, 3]), torch.Size([5]))
        >>> check_flow(layer, torch.randn(5, 3))
    """

    def __init__(
        self,
        width: int,
        hidden: int = 32,
        *,
        transformer: str | Transformer = "affine",
        context_width: int = 0,
        num_hidden_layers: int = 2,
        activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        self.width = width
        self.transformer = resolve_transformer(transformer)
        self.made = MADE(
            width,
            hidden,
            self.transformer.params_per_element,
            context_width=context_width,
            num_hidden_layers=num_hidden_layers,
            activation=activation,
            zero_init=zero_init,
        )

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_matrix(self, z, self.width)
        x = z
        for _ in range(self.width):
            x, log_det = self.transformer.forward(z, self.made(x, *context).unbind(-1))
        return x, total_log_det(log_det, x)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = require_matrix(self, x, self.width)
        if not torch.is_grad_enabled():
            fast = self._inverse_feature_major(x, context)
            if fast is not None:
                return fast
        z, log_det = self.transformer.inverse(x, self.made(x, *context).unbind(-1))
        return z, total_log_det(log_det, z)

    def _inverse_feature_major(self, x: Tensor, context: tuple[Tensor, ...]) -> tuple | None:
        """``inverse`` without gradients, through the hand-written forms' feature-major
        pieces (``(width, n)`` values; the parameters, parameter-first, are views of the
        ``MADE``'s output, not copies): the same numbers, faster on many points. ``None``
        where a piece has no such form (or the context is not what the MADE expects)."""
        made = self.made.handwritten()
        columns = sum(per_sample(c).shape[1] for c in context)
        if made is None or has_hooks(self) or columns != self.made.context_width:
            return None
        h = x.t()
        if context:
            h = torch.cat([h, *(per_sample(c).to(x.dtype).t() for c in context)])
        out, _ = made.forward(h)
        n = self.transformer.params_per_element
        z, log_det = self.transformer.inverse(x.t(), out.view(self.width, n, -1).transpose(0, 1))
        return z.t(), total_log_det(None if log_det is None else log_det.t(), z.t())

    def extra_repr(self) -> str:
        return f"width={self.width}"

    def handwritten(self) -> AutoregressiveGradients | None:
        """The hand-written form: when the ``MADE`` and the transformer have one."""
        made = self.made.handwritten()
        transformer = self.transformer.handwritten()
        if has_hooks(self) or not owns_handwritten(self, "inverse") or None in (made, transformer):
            return None
        return AutoregressiveGradients(made, transformer, self.transformer.params_per_element)


class AutoregressiveGradients:
    """A ``MaskedAutoregressive`` layer's inverse (one ``MADE`` pass) and its hand-written
    backward (``flowforge.gradients``): the ``MADE``'s hand-written form, then the
    transformer's, on feature-major ``(width, n)`` values."""

    def __init__(self, made: Any, transformer: HandwrittenTransformer, n: int) -> None:
        self.made, self.transformer, self.n = made, transformer, n

    def refresh(self) -> None:
        self.made.refresh()

    def inverse(self, x: FeatureMajor, batch: Batch) -> tuple[FeatureMajor, Tensor | None, Any]:
        h = x if batch.context is None else torch.cat([x, batch.context])
        out, kept_made = self.made.forward(h)
        # The MADE's rows are element-major (element i's parameters together): a view
        # with the parameters first, as the transformers take them.
        params = out.view(len(x), self.n, -1).transpose(0, 1)
        z, log_det, kept = self.transformer.inverse_saving(x, params)
        return z, None if log_det is None else log_det.sum(), (kept_made, len(x), kept)

    def backward(self, saved: Any, g: FeatureMajor, batch: Batch) -> FeatureMajor:
        kept_made, width, kept = saved
        g_in, minus_g = self.transformer.inverse_backward(kept, g, batch.log_det_grad)
        if not isinstance(minus_g, Tensor):
            minus_g = torch.stack(minus_g)
        g_out = minus_g.transpose(0, 1).reshape(width * self.n, -1)
        # The network gets minus its output's gradient (sign -1), as the transformer gives it.
        return self.made.backward(kept_made, g_out, batch, g_in, width, -1.0)
