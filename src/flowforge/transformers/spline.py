"""The monotone rational-quadratic spline of Durkan et al. (2019), with identity tails.

On ``[-bound, bound]`` the map is a monotone rational-quadratic spline through
``bins + 1`` knots (Gregory and Delbourgo, 1982); outside it is the identity. The
derivative at both end knots is 1, so value and slope are continuous at the bound.

Unconstrained parameters, one set per element: ``bins`` widths, ``bins`` heights, then
``bins - 1`` interior derivatives, so ``3 * bins - 1`` numbers in all. All zeros give
the identity. The public functions take them along the last dimension; inside, they
are laid out parameter-first, ``(3 * bins - 1, ...)``, so that every per-bin quantity
is a contiguous slab and one ``gather`` picks an element's bin.

Every element is evaluated on its input clamped into the bound and then replaced by the
identity where it lies outside, so values on or beyond the bound, and their gradients,
stay finite in float32 as well as float64.

The inverse (data to latent, the direction ``log_prob`` and training use) also comes
with its gradient written out (``SplineGradients``, ``flowforge.gradients``): the root
``xi`` of the bin's quadratic is differentiated implicitly, through
``y = y_k + h_k R(xi)``, so the backward pass never differentiates the root formula.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from flowforge.gradients import owns_handwritten
from flowforge.transformers.base import Params, Transformer

# The one default bound of every spline in flowforge: standardized data lie well inside
# [-4, 4], and a pixel's logit (alpha 0.05) lies within +-2.95.
DEFAULT_BOUND = 4.0
MIN_BIN_SIZE = 1e-3  # each bin at least this fraction of the interval, in x and in y
MIN_DERIVATIVE = 1e-3
_SHIFT = math.log(math.expm1(1 - MIN_DERIVATIVE))  # softplus(0 + shift) + min = 1


def parameter_count(bins: int) -> int:
    """How many unconstrained numbers one element's spline takes: ``3 * bins - 1``."""
    return 3 * bins - 1


def _bins_of(count: int) -> int:
    bins = (count + 1) // 3
    if count != parameter_count(bins) or bins < 1:
        raise ValueError(
            f"a rational-quadratic spline takes 3 * bins - 1 parameters per element; "
            f"got {count}, which fits no number of bins"
        )
    if not MIN_BIN_SIZE * bins < 1:
        raise ValueError(f"{bins} bins is too many: each is at least {MIN_BIN_SIZE} wide")
    return bins


class Table(NamedTuple):
    """An element's spline: the bin ``sizes`` ``(2, bins, ...)`` (widths, then heights),
    their cumulative sums ``right`` (each bin's right edge from ``-bound``), the softmax
    ``soft`` and the shifted raw interior derivatives (for the backward), and those
    between two ``_SHIFT`` rows, ``padded``, where ``_derivatives`` reads the knots'."""

    sizes: Tensor
    right: Tensor
    soft: Tensor
    shifted: Tensor
    padded: Tensor


def table(raw: Tensor, bound: float) -> Table:
    """The spline's ``Table`` from parameter-first raw parameters ``(3 * bins - 1, ...)``."""
    bins = _bins_of(raw.shape[0])
    soft = torch.softmax(raw[: 2 * bins].unflatten(0, (2, bins)), dim=1)
    span = 2 * bound
    sizes = torch.add(soft, MIN_BIN_SIZE / (1 - MIN_BIN_SIZE * bins))
    sizes = sizes.mul_(span * (1 - MIN_BIN_SIZE * bins))
    edge = raw.new_full((1, *raw.shape[1:]), _SHIFT)
    padded = torch.cat([edge, raw[2 * bins :], edge])
    padded[1:-1].add_(_SHIFT)
    return Table(sizes, _cumulative(sizes), soft, padded[1:-1], padded)


def _derivatives(t: Table, pick: Tensor) -> Tensor:
    """The knot derivatives at the knots ``pick`` (exactly 1 at both ends)."""
    d = F.softplus(t.padded.gather(0, pick)).add_(MIN_DERIVATIVE)
    return d.masked_fill_((pick == 0) | (pick == len(t.padded) - 1), 1.0)


_CONSTANTS: dict[tuple, Tensor] = {}


def _constant(key: tuple, make: Callable[[], Tensor]) -> Tensor:
    """``make()``, cached by ``key``, made outside inference mode (autograd may save it)."""
    value = _CONSTANTS.get(key)
    if value is None:
        with torch.inference_mode(False):
            value = _CONSTANTS.setdefault(key, make())
    return value


def _cumulative(sizes: Tensor) -> Tensor:
    """``sizes.cumsum(1)`` for ``(2, bins, ...)``, as one product with a lower-triangular
    matrix of ones: for so few bins, much faster than a cumulative sum along a middle
    dimension."""
    bins = sizes.shape[1]
    key = ("lower", bins, sizes.dtype, sizes.device)
    lower = _constant(key, lambda: sizes.new_ones(bins, bins).tril())
    return torch.matmul(lower, sizes.reshape(2, bins, -1)).view(sizes.shape)


def knots(raw: Tensor, bound: float) -> Knots:
    """Knot positions and derivatives of the splines of ``raw`` ``(..., 3 * bins - 1)``."""
    t = table(raw.movedim(-1, 0), bound)
    start = t.right.new_full((2, 1, *t.right.shape[2:]), -bound)
    edges = torch.cat([start, t.right - bound], dim=1)
    edges[:, -1] = bound
    every = torch.arange(len(t.padded), device=raw.device).view(-1, *[1] * (t.padded.dim() - 1))
    ds = _derivatives(t, every.expand_as(t.padded)).movedim(0, -1)
    return Knots(edges[0].movedim(0, -1), edges[1].movedim(0, -1), ds)


@dataclass(frozen=True)
class Knots:
    """Knot positions and derivatives: ``xs``, ``ys`` and ``ds``, each ``(..., bins + 1)``."""

    xs: Tensor
    ys: Tensor
    ds: Tensor


def _select(t: Table, shifted: Tensor, in_y: bool) -> tuple[Tensor, tuple[Tensor, ...]]:
    """Each element's bin ``(1, ...)``, found from ``shifted`` (its input plus ``bound``,
    clamped into ``[0, 2 bound]``) on the x or y grid, and that bin's ``(w, h, left x,
    left y, d0, d1)``."""
    bins = t.sizes.shape[1]
    grid = t.right[int(in_y), : bins - 1]  # the interior knots
    index = (shifted.unsqueeze(0) >= grid).sum(0, keepdim=True)
    pair = index.unsqueeze(0).expand(2, *index.shape)
    w, h = t.sizes.gather(1, pair).squeeze(1)
    right_x, right_y = t.right.gather(1, pair).squeeze(1)
    d0, d1 = _derivatives(t, torch.cat([index, index + 1]))
    return index, (w, h, right_x - w, right_y - h, d0, d1)


def _slope_terms(xi: Tensor, s: Tensor, d0: Tensor, d1: Tensor, delta: Tensor) -> tuple:
    """``1 - xi``, ``xi (1 - xi)``, their squares' ``xi^2`` and ``(1 - xi)^2``, and the
    slope ``s^2 M / D^2``'s ``M = d1 xi^2 + 2 s xi (1 - xi) + d0 (1 - xi)^2`` and
    ``D = s + delta xi (1 - xi)`` (``delta = d0 + d1 - 2 s``)."""
    om = 1 - xi
    cross = xi * om
    xi2, om2 = xi * xi, om * om
    m = torch.addcmul(torch.addcmul(d1 * xi2, d0, om2), s, cross, value=2)
    return om, cross, xi2, om2, m, torch.addcmul(s, delta, cross)


def _root_in_unit_interval(qa: Tensor, minus_qb: Tensor, minus_qc: Tensor) -> Tensor:
    """The root in ``[0, 1]`` of ``qa xi^2 + qb xi + qc`` (``qc <= 0``), without cancellation.

    ``2 qc / (-qb - sqrt(D))`` and ``(sqrt(D) - qb) / (2 qa)`` are the same root; each
    is used where it subtracts nothing. The denominator is chosen before dividing and
    kept away from zero, so the branch not taken cannot put NaN into the gradient.
    """
    root = torch.sqrt(torch.addcmul(minus_qb * minus_qb, qa, minus_qc, value=4).clamp(min=0))
    positive = minus_qb <= 0
    numerator = torch.where(positive, 2 * minus_qc, root + minus_qb)
    denominator = torch.where(positive, root - minus_qb, 2 * qa)
    return (numerator / denominator.clamp(min=torch.finfo(qa.dtype).tiny)).clamp(0, 1)


def _forward(x: Tensor, raw: Tensor, bound: float) -> tuple[Tensor, Tensor]:
    """Latent to data on parameter-first ``raw``: ``(y, log dy/dx)``, identity outside."""
    inside = x.abs() <= bound
    shifted = x.clamp(-bound, bound) + bound
    _, (w, h, lx, ly, d0, d1) = _select(table(raw, bound), shifted, in_y=False)
    s = h / w
    xi = (shifted - lx) / w
    # Into [0, 1], where rounding may put it, without zeroing the slope at the top knot.
    xi = xi + (xi.clamp(0, 1) - xi).detach() if xi.requires_grad else xi.clamp_(0, 1)
    _, cross, xi2, _, m, d = _slope_terms(xi, s, d0, d1, d0 + d1 - 2 * s)
    y = torch.addcmul(ly, h, torch.addcmul(s * xi2, d0, cross) / d) - bound
    s_d = s / d
    log_slope = torch.log(s_d * (s_d * m))  # s^2 M / D^2, grouped so that it cannot overflow
    return torch.where(inside, y, x), torch.where(inside, log_slope, log_slope.new_zeros(()))


class Saved(NamedTuple):
    """What the inverse keeps for its hand-written backward: the loss gradient by the
    picked rows and the input is ``coefficients[0] * g_z + coefficients[1] * c`` (``c``
    the loss's derivative by each log-derivative)."""

    inside: Tensor
    index: Tensor
    coefficients: Tensor  # (2, 8, ...): rows w, h, left x, left y, s, d0, d1 (negated), y
    table: Table


def _inverse(y: Tensor, raw: Tensor, bound: float, save: bool = False) -> tuple:
    """Data to latent on parameter-first ``raw``: ``(x, log dx/dy, saved or None)``."""
    inside = y.abs() <= bound
    shifted = y.clamp(-bound, bound) + bound
    t = table(raw, bound)
    index, picked = _select(t, shifted, in_y=True)
    w, h, lx, ly, d0, d1 = picked
    s = h / w
    r = shifted - ly
    s_d0 = s - d0
    delta = d1 - s - s_d0
    r_delta = r * delta
    qa = torch.addcmul(r_delta, h, s_d0)
    minus_qb = torch.addcmul(r_delta, h, d0, value=-1)
    s_r = s * r
    xi = _root_in_unit_interval(qa, minus_qb, s_r)
    terms = _slope_terms(xi, s, d0, d1, delta)
    e = terms[5] / (s * terms[4])  # D / (s M)
    k = terms[5] * e  # D^2 / (s M): dx/dy = k / s
    log_slope = torch.log(k / s)
    log_slope = torch.where(inside, log_slope, log_slope.new_zeros(()))
    x = torch.where(inside, torch.addcmul(lx, xi, w) - bound, y)
    if not save:
        return x, log_slope, None
    coefficients = _coefficients(xi, s, r, delta, picked, terms, e, k, inside)
    return x, log_slope, Saved(inside, index, coefficients, t)


def _coefficients(
    xi: Tensor,
    s: Tensor,
    r: Tensor,
    delta: Tensor,
    picked: tuple[Tensor, ...],
    terms: tuple,
    e: Tensor,
    k: Tensor,
    inside: Tensor,
) -> Tensor:
    """The inverse's derivatives, as the coefficients of ``g_z`` and ``c`` in the loss
    gradient by each picked row and by the input (``Saved``).

    In the bin, ``y = y0 + h R(xi)`` with ``R = N / D`` (``N = s xi^2 + d0 xi (1 - xi)``),
    ``x = x0 + w xi`` and ``log dx/dy = log(D^2 / (s^2 M))``. The root ``xi`` moves with
    ``y`` and the bin's numbers as ``G = y0 + h R(xi) - y = 0`` dictates: ``dxi = -dG /
    (h R')`` with ``R' = s M / D^2``. The loss's derivative by ``xi`` is ``A = g_z w + c
    sigma`` (``sigma = d log dx/dy / d xi``), so ``a = A / (h R') = A k / h`` is its
    derivative by ``y``; ``s = h / w`` is then resolved into ``h`` and ``w``.
    """
    w, h, _, _, d0, d1 = picked
    om, cross, xi2, om2, m, d = terms
    inv_m, two_inv_d = m.reciprocal(), 2 / d
    centre = om - xi
    q = torch.addcmul(torch.addcmul(d1 * xi, s, centre), d0, om, value=-1)
    sigma = torch.addcmul(delta * centre * two_inv_d, q, inv_m, value=-2)
    big_r = r / h  # R(xi) at the root
    rc = big_r * cross
    t = xi2 + om2  # 1 - 2 xi (1 - xi)
    # Rows: w, h, left x, left y, s, d0, d1 (the picked rows' and s's), then y; the
    # g_z coefficients in both[0], the c coefficients in both[1], each written in place.
    both = xi.new_empty((2, 8, *xi.shape))
    u, v = both[0], both[1]
    # By s, d0 and d1: c alpha - A e beta, beta's last row negated.
    beta = xi.new_empty((3, *xi.shape))
    torch.addcmul(xi2, big_r, t, value=-1, out=beta[0])
    torch.sub(cross, rc, out=beta[1])
    torch.neg(rc, out=beta[2])
    beta.mul_(e)
    alpha = v[4:7]
    torch.mul(t, two_inv_d, out=alpha[0])
    torch.mul(cross, two_inv_d, out=alpha[1])
    alpha[2].copy_(alpha[1])
    alpha[0].addcmul_(cross, inv_m, value=-2).add_(s.reciprocal(), alpha=-2)
    alpha[1].addcmul_(om2, inv_m, value=-1)
    alpha[2].addcmul_(xi2, inv_m, value=-1)
    alpha.addcmul_(beta, sigma, value=-1)  # the c coefficients
    torch.mul(beta, w, out=u[4:7]).neg_()  # the g_z coefficients
    kappa = k / h
    torch.mul(w, kappa, out=u[7])  # by y: a = A k / h
    torch.mul(sigma, kappa, out=v[7])
    torch.neg(both[:, 7], out=both[:, 3])  # by the left y knot: -a
    mask = inside.to(xi.dtype)
    u[2].copy_(mask)  # by the left x knot: g_z
    v[2].zero_()
    torch.mul(both[:, 4], w.reciprocal(), out=both[:, 1]).addcmul_(both[:, 7], big_r, value=-1)
    torch.mul(both[:, 4], s / w, out=both[:, 0]).neg_()  # by w: g_z xi - g_s s / w
    u[0].add_(xi)
    both[:, :7] *= -mask  # negated, and zero outside the bound
    return both


def rational_quadratic_spline(
    x: Tensor, raw: Tensor, bound: float = DEFAULT_BOUND
) -> tuple[Tensor, Tensor]:
    """Apply the spline elementwise: ``x`` is ``(...)``, ``raw`` is ``(..., 3 * bins - 1)``.

    Returns ``(y, log dy/dx)``, both shaped like ``x``; the identity (log-derivative 0)
    outside ``[-bound, bound]``.

    Example:
        >>> import torch
        >>> y, log_slope = rational_quadratic_spline(torch.tensor([0.5, 9.0]), torch.zeros(2, 23))
        >>> y, log_slope  # all-zero parameters: the identity
        (tensor([0.5000, 9.0000]), tensor([0., 0.]))
    """
    return _forward(x, raw.movedim(-1, 0), bound)


def inverse_rational_quadratic_spline(
    y: Tensor, raw: Tensor, bound: float = DEFAULT_BOUND
) -> tuple[Tensor, Tensor]:
    """Undo ``rational_quadratic_spline``; returns ``(x, log dx/dy)`` shaped like ``y``."""
    return _inverse(y, raw.movedim(-1, 0), bound)[:2]


def _stacked(params: Params) -> Tensor:
    """The transformer's ``params`` as one parameter-first tensor."""
    return params if isinstance(params, Tensor) else torch.stack(tuple(params))


class SplineTransformer(Transformer):
    """A monotone rational-quadratic spline with ``bins`` bins on ``[-bound, bound]``, the
    identity outside (Durkan et al. 2019): ``3 * bins - 1`` parameters per element, all
    zeros giving the identity. Hand-written gradients for its inverse (``SplineGradients``).

    Example:
        >>> import torch
        >>> spline = SplineTransformer(bins=4, bound=2.0)
        >>> params = torch.randn(spline.params_per_element, 5, 2)
        >>> x = torch.randn(5, 2)
        >>> y, log_slope = spline(x, params)
        >>> back, log_slope_back = spline.inverse(y, params)
        >>> torch.allclose(back, x, atol=1e-5), torch.allclose(log_slope_back, -log_slope)
        (True, True)
    """

    def __init__(self, bins: int = 8, bound: float = DEFAULT_BOUND) -> None:
        super().__init__()
        if bins < 2 or not bound > 0:
            # One bin with unit slopes at both ends is always the identity.
            raise ValueError(f"need bins >= 2 and bound > 0, got bins={bins}, bound={bound}")
        self.bins, self.bound = _bins_of(parameter_count(int(bins))), float(bound)
        self.params_per_element = parameter_count(self.bins)

    def forward(self, z: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        return _forward(z, _stacked(params), self.bound)

    def inverse(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor]:
        return _inverse(x, _stacked(params), self.bound)[:2]

    def handwritten(self) -> SplineGradients | None:
        return SplineGradients(self.bound) if owns_handwritten(self, "inverse") else None

    def extra_repr(self) -> str:
        return f"bins={self.bins}, bound={self.bound}"


def _ranks(bins: int, device: torch.device, dims: int) -> Tensor:
    """``0, 1, ..., bins - 1`` along the first of ``dims + 1`` dimensions (cached)."""
    key = ("ranks", bins, device, dims)
    return _constant(key, lambda: torch.arange(bins, device=device).view(bins, *(1,) * dims))


class SplineGradients:
    """``SplineTransformer``'s inverse with its hand-written backward (``flowforge.gradients``).

    ``params`` may be a parameter-first tensor ``(3 * bins - 1, ...)`` (the layers pass
    a view of their network's output) or a sequence of tensors; the negated parameter
    gradient comes back parameter-first ``(3 * bins - 1, ...)``.
    """

    def __init__(self, bound: float) -> None:
        self.bound = bound

    def inverse_saving(self, x: Tensor, params: Params) -> tuple[Tensor, Tensor, Saved]:
        return _inverse(x, _stacked(params), self.bound, save=True)

    def inverse_backward(
        self, saved: Saved, g_z: Tensor, log_det_grad: Tensor
    ) -> tuple[Tensor, Tensor]:
        coefficients = saved.coefficients
        grads = torch.addcmul(coefficients[1] * log_det_grad, coefficients[0], g_z)
        g_x = torch.where(saved.inside, grads[7], g_z)
        # The picked rows' gradients spread back over the bins: a bin's width and height
        # get their own; its left edges, the sum of the sizes before it; the derivatives,
        # those at both of its knots.
        soft = saved.table.soft
        bins = soft.shape[1]
        ranks = _ranks(bins, soft.device, g_z.dim())
        k = saved.index  # each element's bin
        one_hot = (k == ranks).to(g_z.dtype)  # (bins, ...)
        before = (k > ranks[:-1]).to(g_z.dtype)
        g_sizes = one_hot * grads[:2].unsqueeze(1)
        g_sizes[:, :-1].addcmul_(before, grads[2:4].unsqueeze(1))
        g_sizes = g_sizes.mul_(2 * self.bound * (1 - MIN_BIN_SIZE * bins))
        g_soft = torch.ops.aten._softmax_backward_data(g_sizes, soft, 1, soft.dtype)
        g_derivatives = torch.addcmul(one_hot[1:] * grads[5], one_hot[:-1], grads[6])
        g_derivatives = g_derivatives.mul_(saved.table.shifted.sigmoid())
        return g_x, torch.cat([g_soft.flatten(0, 1), g_derivatives])
