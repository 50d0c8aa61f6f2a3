"""The monotone rational-quadratic spline of Durkan et al. (2019), with identity tails.

On ``[-bound, bound]`` the map is a monotone rational-quadratic spline through
``bins + 1`` knots (Gregory and Delbourgo, 1982); outside it is the identity. The
derivative at both end knots is 1, so value and slope are continuous at the bound.

Unconstrained parameters, one set per element, are laid out along the last dimension:
``bins`` widths, ``bins`` heights, then ``bins - 1`` interior derivatives, so
``3 * bins - 1`` numbers in all. All zeros give the identity.

Every element is evaluated on its input clamped into the bound and then replaced by the
identity where it lies outside, so values on or beyond the bound, and their gradients,
stay finite in float32 as well as float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.transformers.base import Params, Transformer

# The one default bound of every spline in flowforge: standardized data lie well inside
# [-4, 4], and a pixel's logit (alpha 0.05) lies within +-2.95.
DEFAULT_BOUND = 4.0


def parameter_count(bins: int) -> int:
    """How many unconstrained numbers one element's spline takes: ``3 * bins - 1``."""
    return 3 * bins - 1


@dataclass(frozen=True)
class Knots:
    """Knot positions and derivatives: ``xs`` and ``ys`` ``(..., bins + 1)``, ``ds`` too."""

    xs: Tensor
    ys: Tensor
    ds: Tensor


def _positions(raw: Tensor, bound: float, min_size: float) -> Tensor:
    """Knot positions from ``-bound`` to ``bound`` with every gap at least ``min_size`` wide."""
    bins = raw.shape[-1]
    sizes = min_size + (1 - min_size * bins) * torch.softmax(raw, dim=-1)
    inner = (2 * bound) * torch.cumsum(sizes[..., :-1], dim=-1) - bound
    ends = raw.new_full((*raw.shape[:-1], 1), bound)
    return torch.cat([-ends, inner, ends], dim=-1)


def _derivatives(raw: Tensor, min_derivative: float) -> Tensor:
    """Positive knot derivatives: 1 at both ends, 1 inside when ``raw`` is 0."""
    shift = math.log(math.expm1(1 - min_derivative))
    inner = min_derivative + F.softplus(raw + shift)
    ones = raw.new_ones((*raw.shape[:-1], 1))
    return torch.cat([ones, inner, ones], dim=-1)


def knots(
    raw: Tensor,
    bound: float,
    min_bin_size: float = 1e-3,
    min_derivative: float = 1e-3,
) -> Knots:
    """Turn unconstrained parameters ``(..., 3 * bins - 1)`` into the spline's knots."""
    bins = (raw.shape[-1] + 1) // 3
    if raw.shape[-1] != parameter_count(bins) or bins < 1:
        raise ValueError(
            f"a rational-quadratic spline takes 3 * bins - 1 parameters per element; "
            f"got {raw.shape[-1]}, which fits no number of bins"
        )
    if not min_bin_size * bins < 1:
        raise ValueError(f"min_bin_size {min_bin_size} is too large for {bins} bins")
    widths, heights, slopes = raw.split([bins, bins, bins - 1], dim=-1)
    return Knots(
        _positions(widths, bound, min_bin_size),
        _positions(heights, bound, min_bin_size),
        _derivatives(slopes, min_derivative),
    )


def _bin_index(positions: Tensor, values: Tensor) -> Tensor:
    """The bin of each value, in ``[0, bins - 1]`` (values are already inside the bound)."""
    interior = positions[..., 1:-1]
    return (values.unsqueeze(-1) >= interior).sum(dim=-1, keepdim=True)


def _gather(t: Tensor, index: Tensor) -> Tensor:
    return t.gather(-1, index).squeeze(-1)


@dataclass(frozen=True)
class Bin:
    """One bin per element: left knot ``(x0, y0)``, size ``(w, h)``, end slopes ``d0, d1``."""

    x0: Tensor
    y0: Tensor
    w: Tensor
    h: Tensor
    d0: Tensor
    d1: Tensor

    @classmethod
    def select(cls, k: Knots, index: Tensor) -> Bin:
        x0, x1 = _gather(k.xs, index), _gather(k.xs, index + 1)
        y0, y1 = _gather(k.ys, index), _gather(k.ys, index + 1)
        return cls(x0, y0, x1 - x0, y1 - y0, _gather(k.ds, index), _gather(k.ds, index + 1))

    @property
    def slope(self) -> Tensor:
        return self.h / self.w


def _log_derivative(b: Bin, xi: Tensor) -> Tensor:
    """``log dy/dx`` at relative position ``xi`` in the bin."""
    s, one_minus = b.slope, 1 - xi
    numerator = s**2 * (b.d1 * xi**2 + 2 * s * xi * one_minus + b.d0 * one_minus**2)
    denominator = s + (b.d0 + b.d1 - 2 * s) * xi * one_minus
    return torch.log(numerator) - 2 * torch.log(denominator)


def _spline_forward(x: Tensor, k: Knots) -> tuple[Tensor, Tensor]:
    b = Bin.select(k, _bin_index(k.xs, x))
    xi = ((x - b.x0) / b.w).clamp(0, 1)
    s, cross = b.slope, xi * (1 - xi)
    y = b.y0 + b.h * (s * xi**2 + b.d0 * cross) / (s + (b.d0 + b.d1 - 2 * s) * cross)
    return y, _log_derivative(b, xi)


def _spline_inverse(y: Tensor, k: Knots) -> tuple[Tensor, Tensor]:
    b = Bin.select(k, _bin_index(k.ys, y))
    r, s, delta = y - b.y0, b.slope, b.d0 + b.d1 - 2 * b.slope
    qa = b.h * (s - b.d0) + r * delta
    qb = b.h * b.d0 - r * delta
    qc = -s * r
    xi = _root_in_unit_interval(qa, qb, qc)
    return b.x0 + xi * b.w, -_log_derivative(b, xi)


def _root_in_unit_interval(qa: Tensor, qb: Tensor, qc: Tensor) -> Tensor:
    """The root in ``[0, 1]`` of ``qa xi^2 + qb xi + qc`` (``qc <= 0``), without cancellation.

    ``2 qc / (-qb - sqrt(D))`` and ``(sqrt(D) - qb) / (2 qa)`` are the same root; each
    is used where it subtracts nothing. Both denominators are kept away from zero so
    the branch not taken cannot put NaN into the gradient.
    """
    root = torch.sqrt((qb**2 - 4 * qa * qc).clamp(min=0))
    tiny = torch.finfo(qb.dtype).tiny
    positive = qb >= 0
    from_qc = 2 * qc / torch.where(positive, -qb - root, -qb.new_ones(())).clamp(max=-tiny)
    from_qa = (root - qb) / torch.where(positive, qa.new_ones(()), 2 * qa).clamp(min=tiny)
    return torch.where(positive, from_qc, from_qa).clamp(0, 1)


def _with_identity_tails(v: Tensor, raw: Tensor, bound: float, spline) -> tuple[Tensor, Tensor]:
    inside = (v >= -bound) & (v <= bound)
    k = knots(raw, bound)
    out, log_det = spline(v.clamp(-bound, bound), k)
    return torch.where(inside, out, v), torch.where(inside, log_det, torch.zeros_like(log_det))


def rational_quadratic_spline(
    x: Tensor, raw: Tensor, bound: float = DEFAULT_BOUND
) -> tuple[Tensor, Tensor]:
    """Apply the spline elementwise: ``x`` is ``(...)``, ``raw`` is ``(..., 3 * bins - 1)``.

    Returns ``(y, log dy/dx)``, both shaped like ``x``; the identity (log-derivative 0)
    outside ``[-bound, bound]``.
    """
    return _with_identity_tails(x, raw, bound, _spline_forward)


def inverse_rational_quadratic_spline(
    y: Tensor, raw: Tensor, bound: float = DEFAULT_BOUND
) -> tuple[Tensor, Tensor]:
    """Undo ``rational_quadratic_spline``; returns ``(x, log dx/dy)`` shaped like ``y``."""
    return _with_identity_tails(y, raw, bound, _spline_inverse)


class SplineTransformer(Transformer):
    """A monotone rational-quadratic spline with ``bins`` bins on ``[-bound, bound]``, the
    identity outside (Durkan et al. 2019): ``3 * bins - 1`` parameters per element, all
    zeros giving the identity."""

    def __init__(self, bins: int = 8, bound: float = DEFAULT_BOUND) -> None:
        super().__init__()
        if bins < 2 or not bound > 0:
            # One bin with unit slopes at both ends is always the identity.
            raise ValueError(f"need bins >= 2 and bound > 0, got bins={bins}, bound={bound}")
        self.bins, self.bound = int(bins), float(bound)
        self.params_per_element = parameter_count(self.bins)

    def forward(self, z: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        return rational_quadratic_spline(z, torch.stack(tuple(params), dim=-1), self.bound)

    def inverse(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        raw = torch.stack(tuple(params), dim=-1)
        return inverse_rational_quadratic_spline(x, raw, self.bound)

    def extra_repr(self) -> str:
        return f"bins={self.bins}, bound={self.bound}"
