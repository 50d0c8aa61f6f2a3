"""Normalization layers: ``ActNorm`` (Glow) and ``BatchNormFlow`` (MAF's batch norm).

``ActNorm`` is from Kingma and Dhariwal, Glow: Generative flow with invertible 1x1
convolutions, NeurIPS 2018; ``BatchNormFlow`` from Papamakarios et al., Masked
autoregressive flow for density estimation, NeurIPS 2017 (after Dinh et al., Density
estimation using Real NVP, ICLR 2017).

Both normalize in the data-to-latent direction (``inverse``), where the data are.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.layers.base import FlowLayer, require_matrix
from flowforge.values import Value


class ActNorm(FlowLayer):
    """``x = z * exp(log_scale) + shift`` per column, with data-dependent initialization.

    ``initialize_actnorm(model, data)`` sets ``shift`` and ``log_scale`` so that the
    data reaching this layer come out of ``inverse`` with zero mean and unit variance
    per column. It is an explicit step, run once before training (and before wrapping
    in DistributedDataParallel, which then broadcasts rank 0's values); nothing
    happens behind the scenes in ``forward``. The ``initialized`` buffer records it,
    so a model loaded from a ``state_dict`` is never initialized again. An
    uninitialized ``ActNorm`` is the identity (Kingma and Dhariwal, Glow: Generative
    flow with invertible 1x1 convolutions, NeurIPS 2018).

    Args:
        width: The number of dimensions.

    Example:
        >>> import torch
        >>> from flowforge import Multivariate, NormalizingFlow
        >>> from flowforge.layers import ActNorm, initialize_actnorm
        >>> _ = torch.manual_seed(0)
        >>> model = NormalizingFlow(Multivariate(2), ActNorm(2))
        >>> data = torch.randn(1000, 2) * torch.tensor([3.0, 0.5]) + 4.0
        >>> initialize_actnorm(model, data)  # how many layers it initialized
        1
        >>> with torch.no_grad():
        ...     z, _ = model.flow.inverse(data)
        >>> z.mean(dim=0).abs().max() < 1e-4, z.std(dim=0, unbiased=False).round(decimals=3)
        (tensor(True), tensor([1., 1.]))
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.width = width
        self.shift = torch.nn.Parameter(torch.zeros(width))
        self.log_scale = torch.nn.Parameter(torch.zeros(width))
        self.register_buffer("initialized", torch.tensor(False))
        self._pending = False

    @property
    def pending(self) -> bool:
        """Whether the next data-to-latent pass initializes the layer (inside
        ``initialize_actnorm``): that pass must see all the data at once."""
        return self._pending

    def _log_det(self, z: Tensor) -> Tensor:
        return self.log_scale.to(z.dtype).sum().expand(z.shape[0])

    @torch.no_grad()
    def _initialize(self, data_side: Tensor, eps: float = 1e-6) -> None:
        std = data_side.std(dim=0, unbiased=False) if len(data_side) > 1 else None
        std = torch.ones_like(data_side[0]) if std is None else std.clamp(min=eps)
        self.shift.copy_(data_side.mean(dim=0))
        self.log_scale.copy_(std.log())
        self.initialized.fill_(True)
        self._pending = False

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_matrix(self, z, self.width)
        x = z * self.log_scale.to(z.dtype).exp() + self.shift.to(z.dtype)
        return x, self._log_det(z)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = require_matrix(self, x, self.width)
        if self._pending:
            self._initialize(x)
        z = (x - self.shift.to(x.dtype)) * (-self.log_scale.to(x.dtype)).exp()
        return z, -self._log_det(x)

    def extra_repr(self) -> str:
        return f"width={self.width}, initialized={bool(self.initialized)}"


@torch.no_grad()
def initialize_actnorm(model: torch.nn.Module, data: Tensor, *context: Tensor) -> int:
    """Initialize every uninitialized ``ActNorm`` in ``model`` from ``data`` ``(n, width)``.

    Runs one data-to-latent pass (``model.log_prob``, or ``inverse`` for a bare layer)
    in eval mode; each ``ActNorm`` takes its statistics from the values that reach
    it, after the layers nearer the data have been initialized. Layers already
    initialized (for instance loaded from a checkpoint) are left alone. Returns how
    many layers were initialized. Run it before training and before DDP wrapping.
    """
    layers = [m for m in model.modules() if isinstance(m, ActNorm) and not m.initialized]
    if not layers:
        return 0
    was_training = model.training
    for layer in layers:
        layer._pending = True
    try:
        model.eval()
        run = model.log_prob if hasattr(model, "log_prob") else model.inverse
        run(data, *context)
    finally:
        model.train(was_training)
        for layer in layers:
            layer._pending = False
    missed = sum(not layer.initialized for layer in layers)
    if missed:
        raise RuntimeError(
            f"{missed} ActNorm layer(s) saw no data in the data-to-latent pass (an ActNorm "
            "inside Inverse(...) runs the other way); initialize those before wrapping them"
        )
    return len(layers)


class BatchNormFlow(FlowLayer):
    """Batch normalization as a flow layer, per column (Papamakarios et al., NeurIPS 2017).

    ``inverse`` (data to latent): ``z = (x - m) / sqrt(v + eps) * exp(log_gamma) + beta``,
    with ``log|dz/dx| = sum(log_gamma - log(v + eps) / 2)``. In training mode ``m, v``
    are the batch's mean and (biased) variance, and the running averages are updated;
    in eval mode they are the running averages. ``forward`` (sampling) always uses the
    running averages, so it undoes ``inverse`` exactly in eval mode. Training needs
    batches of at least 2 points.
    """

    def __init__(self, width: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.width, self.momentum, self.eps = width, momentum, eps
        self.log_gamma = torch.nn.Parameter(torch.zeros(width))
        self.beta = torch.nn.Parameter(torch.zeros(width))
        self.register_buffer("running_mean", torch.zeros(width))
        self.register_buffer("running_var", torch.ones(width))

    def _batch_statistics(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if len(x) < 2:
            raise ValueError(
                f"BatchNormFlow needs at least 2 points per batch in training mode, got "
                f"{len(x)}; use larger batches or call model.eval()"
            )
        mean, var = x.mean(dim=0), x.var(dim=0, unbiased=False)
        with torch.no_grad():
            unbiased = var * len(x) / (len(x) - 1)
            self.running_mean.lerp_(mean.to(self.running_mean.dtype), self.momentum)
            self.running_var.lerp_(unbiased.to(self.running_var.dtype), self.momentum)
        return mean, var

    def _log_det(self, var: Tensor, like: Tensor) -> Tensor:
        per_column = self.log_gamma.to(like.dtype) - 0.5 * torch.log(var + self.eps)
        return per_column.sum().expand(like.shape[0])

    def forward(self, z: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        z = require_matrix(self, z, self.width)
        mean, var = self.running_mean.to(z.dtype), self.running_var.to(z.dtype)
        gamma, beta = self.log_gamma.to(z.dtype).exp(), self.beta.to(z.dtype)
        x = (z - beta) / gamma * torch.sqrt(var + self.eps) + mean
        return x, -self._log_det(var, z)

    def inverse(self, x: Value, *context: Tensor) -> tuple[Tensor, Tensor]:
        x = require_matrix(self, x, self.width)
        if self.training:
            mean, var = self._batch_statistics(x)
        else:
            mean, var = self.running_mean.to(x.dtype), self.running_var.to(x.dtype)
        gamma, beta = self.log_gamma.to(x.dtype).exp(), self.beta.to(x.dtype)
        z = (x - mean) / torch.sqrt(var + self.eps) * gamma + beta
        return z, self._log_det(var, x)

    def extra_repr(self) -> str:
        return f"width={self.width}, momentum={self.momentum}, eps={self.eps}"
