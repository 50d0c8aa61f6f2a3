"""Elementwise monotone maps whose parameters come from a network (a "transformer").

Coupling and autoregressive layers compute, for every transformed element, a few
unconstrained numbers ``params`` (shape ``(..., params_per_element)``) and hand them to
a transformer. ``forward(z, params) -> (x, log|dx/dz|)`` and
``inverse(x, params) -> (z, log|dz/dx|)`` act elementwise, so every returned tensor is
shaped like the input; the layer sums the log-derivatives per sample.

A transformer is a module with no parameters: it says how numbers become a monotone
map. Any constants it keeps (a log-scale function's, say) are buffers of the layer that
holds it, so they follow ``.to(device)`` and ``.double()``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from flowforge.layers.coupling import LogScaleFunction, log_scale_function
from flowforge.transformers.spline import (
    DEFAULT_BOUND,
    inverse_rational_quadratic_spline,
    parameter_count,
    rational_quadratic_spline,
)


class Transformer(torch.nn.Module):
    """A family of elementwise monotone maps indexed by ``params_per_element`` numbers."""

    params_per_element: int

    def forward(self, z: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        """Latent ``z`` to data; returns ``(x, log|dx/dz|)`` shaped like ``z``."""
        raise NotImplementedError

    def inverse(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        """Data ``x`` to latent; returns ``(z, log|dz/dx|)`` shaped like ``x``."""
        raise NotImplementedError


class AffineTransformer(Transformer):
    """``x = exp(s) * z + t`` with ``s = log_scale(params[..., 0])``, ``t = params[..., 1]``.

    ``log_scale`` is one of ``AffineCoupling``'s choices (``"soft_clamp"`` by default,
    so an exploding network cannot overflow), or a callable.
    """

    params_per_element = 2

    def __init__(self, log_scale: str | LogScaleFunction = "soft_clamp") -> None:
        super().__init__()
        self.log_scale = log_scale_function(log_scale)

    def _split(self, params: Tensor) -> tuple[Tensor, Tensor]:
        return self.log_scale(params[..., 0]), params[..., 1]

    def forward(self, z: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._split(params)
        return torch.exp(s) * z + t, s

    def inverse(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        s, t = self._split(params)
        return (x - t) * torch.exp(-s), -s

    def extra_repr(self) -> str:
        if isinstance(self.log_scale, torch.nn.Module):
            return ""  # printed as a child module
        return f"log_scale={getattr(self.log_scale, '__name__', repr(self.log_scale))}"


class SplineTransformer(Transformer):
    """A monotone rational-quadratic spline with ``bins`` bins on ``[-bound, bound]``,
    the identity outside (see ``flowforge.transformers.spline``)."""

    def __init__(self, bins: int = 8, bound: float = DEFAULT_BOUND) -> None:
        super().__init__()
        if bins < 2 or not bound > 0:
            # One bin with unit slopes at both ends is always the identity.
            raise ValueError(f"need bins >= 2 and bound > 0, got bins={bins}, bound={bound}")
        self.bins, self.bound = int(bins), float(bound)
        self.params_per_element = parameter_count(self.bins)

    def forward(self, z: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return rational_quadratic_spline(z, params, self.bound)

    def inverse(self, x: Tensor, params: Tensor) -> tuple[Tensor, Tensor]:
        return inverse_rational_quadratic_spline(x, params, self.bound)

    def extra_repr(self) -> str:
        return f"bins={self.bins}, bound={self.bound}"


def resolve_transformer(spec: str | Transformer) -> Transformer:
    """``"affine"``, ``"spline"`` (defaults) or a ready ``Transformer``."""
    if isinstance(spec, Transformer):
        return spec
    if spec == "affine":
        return AffineTransformer()
    if spec == "spline":
        return SplineTransformer()
    raise ValueError(
        f"unknown transformer {spec!r}; use 'affine', 'spline', or an AffineTransformer(...) "
        "/ SplineTransformer(...) instance"
    )
