"""The affine transformer ``x = exp(s) * z + t`` (RealNVP, MAF) and the additive one (NICE)."""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.gradients import owns_handwritten
from flowforge.transformers.base import Params, Transformer
from flowforge.transformers.log_scale import LogScale, LogScaleSpec, resolve_log_scale


class AffineTransformer(Transformer):
    """``x = exp(s) * z + t`` with ``(raw, t) = params`` and ``s = log_scale(raw)``.

    ``log|dx/dz| = s``. ``log_scale`` is ``"soft_clamp"`` (the default, so an exploding
    network cannot overflow), ``"exp"`` (the notebook's), ``"sigmoid"`` (nflows'), or any
    callable (see ``flowforge.transformers.log_scale``). Hand-written gradients for every
    named log-scale.
    """

    params_per_element = 2

    def __init__(self, log_scale: LogScaleSpec = "soft_clamp") -> None:
        super().__init__()
        self.log_scale = resolve_log_scale(log_scale)

    def forward(self, z: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        raw, t = params
        s = self.log_scale(raw)
        return torch.addcmul(t, torch.exp(s), z), s

    def inverse(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        raw, t = params
        minus_s = -self.log_scale(raw)  # shared by the scale and the log-determinant
        return (x - t) * torch.exp(minus_s), minus_s

    def handwritten(self) -> AffineGradients | None:
        supported = owns_handwritten(self, "inverse") and self.log_scale.has_derivative
        return AffineGradients(self.log_scale) if supported else None


class AffineGradients:
    """``AffineTransformer``'s inverse with its hand-written backward (``flowforge.gradients``)."""

    def __init__(self, log_scale: LogScale) -> None:
        self.log_scale = log_scale  # a plain attribute here: no module lookup per step

    def inverse_saving(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor, tuple]:
        raw, t = params
        minus_s, kept = self.log_scale.negated(raw)
        e = minus_s.exp()
        z = torch.sub(x, t).mul_(e)
        return z, minus_s, (e, z, kept)

    def inverse_backward(
        self, saved: tuple, g_z: Tensor, log_det_grad: Tensor
    ) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        e, z, kept = saved
        g_x = g_z * e  # dz/dx = exp(-s), and dz/dt = -exp(-s): -g_t = g_x
        # dz/ds = -z and the log-det is -s: dL/ds = -(g_z z + log_det_grad)
        minus_g_s = torch.addcmul(log_det_grad, g_z, z)
        return g_x, (self.log_scale.times_derivative(minus_g_s, kept), g_x)


class AdditiveTransformer(Transformer):
    """``x = z + t`` with ``(t,) = params`` (NICE). Volume preserving."""

    params_per_element = 1
    volume_preserving = True

    def forward(self, z: Tensor, params: Params) -> tuple[Tensor, None]:
        (t,) = params
        return z + t, None

    def inverse(self, x: Tensor, params: Params) -> tuple[Tensor, None]:
        (t,) = params
        return x - t, None

    def handwritten(self) -> AdditiveGradients | None:
        return AdditiveGradients() if owns_handwritten(self, "inverse") else None


class AdditiveGradients:
    """``AdditiveTransformer``'s inverse with its hand-written backward."""

    def inverse_saving(self, x: Tensor, params: Params) -> tuple[Tensor, None, None]:
        (t,) = params
        return x - t, None, None

    def inverse_backward(
        self, saved: None, g_z: Tensor, log_det_grad: Tensor
    ) -> tuple[Tensor, tuple[Tensor]]:
        return g_z, (g_z,)  # dz/dx = 1 and dz/dt = -1: -g_t = g_z
