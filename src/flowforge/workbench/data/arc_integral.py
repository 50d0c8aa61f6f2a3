"""The integral of ``exp(κ cos(t − φ))`` over a half circle, in log space, by quadrature.

A point at polar coordinates ``(ρ, φ)`` from a circle's centre, blurred by isotropic
Gaussian noise of standard deviation ``σ``, sees the half circle ``t ∈ [0, π]`` through
``∫₀^π exp(κ cos(t − φ)) dt`` with ``κ = ρ/σ²`` (an incomplete von Mises integral, which
has no closed form). ``log_half_circle_integral`` returns it as ``κ cos δ + log J``,
where ``δ`` is the angular distance from ``φ`` to the arc and
``J = ∫ exp(κ (cos u − cos δ)) du`` is of order ``min(π, 1/κ)`` or more
(``log_peak_integral`` returns both), so nothing overflows or underflows for any ``κ``.

How: the arc is cut at ``φ`` (or at ``φ + π``) into two pieces on each of which the
integrand is monotone in the angular distance ``u`` from ``φ``. Each piece is cut
short where the integrand has fallen by ``e^{-TAIL}`` below its peak (at most
``π e^{-40}`` is dropped, relative error < 1e-13 for ``κ < 10⁴``), and integrated by
Gauss–Legendre on what is left, so the nodes follow the width of the peak at every
``κ``.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

TAIL = 40.0
NODES = 32


@lru_cache(maxsize=8)
def _gauss_legendre_01(n: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Gauss–Legendre nodes and weights for ``[0, 1]`` (cached as tuples)."""
    x, w = np.polynomial.legendre.leggauss(n)
    return tuple((0.5 * (x + 1)).tolist()), tuple((0.5 * w).tolist())


def angular_distance_to_arc(phi: Tensor) -> Tensor:
    """The angle between direction ``phi`` (radians, any value) and the arc ``[0, π]``.

    Returns values in ``[0, π/2]`` (the far end of a half circle is never further).
    """
    wrapped = torch.remainder(phi + math.pi, 2 * math.pi) - math.pi  # (-π, π]
    return torch.where(
        wrapped >= 0, torch.zeros_like(wrapped), torch.minimum(-wrapped, wrapped + math.pi)
    )


def _pieces(phi: Tensor) -> tuple[Tensor, Tensor]:
    """Start ``u0`` and length ``L`` (``(..., 2)``) of the two monotone pieces of the arc.

    On each piece the angular distance ``u`` from ``phi`` grows from ``u0`` to
    ``u0 + L``, so the integrand ``exp(κ cos u)`` falls monotonically.
    """
    wrapped = torch.remainder(phi + math.pi, 2 * math.pi) - math.pi
    cut = torch.where(wrapped >= 0, wrapped, wrapped + math.pi)  # in [0, π]
    inside = wrapped >= 0
    # Piece [0, cut]: endpoints at distances |φ| and (0 if cut = φ else π).
    start_a = torch.where(inside, torch.zeros_like(cut), wrapped.abs())
    # Piece [cut, π]: endpoints at distances (0 or π) and the distance of π from φ.
    start_b = torch.where(inside, torch.zeros_like(cut), math.pi - wrapped.abs())
    return torch.stack([start_a, start_b], -1), torch.stack([cut, math.pi - cut], -1)


def _truncated_lengths(kappa: Tensor, delta: Tensor, u0: Tensor, length: Tensor) -> Tensor:
    """Each piece's length, cut where ``κ (cos δ − cos u)`` reaches ``TAIL``."""
    floor = torch.cos(delta).unsqueeze(-1) - TAIL / kappa.unsqueeze(-1).clamp_min(1e-300)
    reach = torch.arccos(floor.clamp(-1.0, 1.0)) - u0
    return torch.where(floor > -1.0, torch.minimum(reach.clamp_min(0.0), length), length)


def log_peak_integral(kappa: Tensor, phi: Tensor, nodes: int = NODES) -> tuple[Tensor, Tensor]:
    """``log J`` and ``δ``, with ``∫₀^π exp(κ cos(t − φ)) dt = exp(κ cos δ) J``.

    ``kappa`` (≥ 0) and ``phi`` (radians) broadcast to a common shape; both results have
    that shape and dtype (use float64). ``δ`` is the angular distance from ``φ`` to the
    arc; ``J`` is the integral scaled by its peak, so ``log J`` is of order one.
    """
    kappa, phi = torch.broadcast_tensors(kappa, phi)
    if bool((kappa < 0).any()):
        raise ValueError("kappa must be non-negative")
    delta = angular_distance_to_arc(phi)
    u0, length = _pieces(phi)
    length = _truncated_lengths(kappa, delta, u0, length)
    x, w = (torch.tensor(v, dtype=phi.dtype, device=phi.device) for v in _gauss_legendre_01(nodes))
    u = u0.unsqueeze(-1) + length.unsqueeze(-1) * x  # (..., 2, nodes)
    d = delta[..., None, None]
    # κ (cos u − cos δ) written as a product, free of cancellation near the peak.
    exponent = torch.sin((u - d) / 2).mul_(torch.sin((u + d) / 2)).mul_(-2 * kappa[..., None, None])
    integral = exponent.exp_().mul_(w).sum(-1).mul_(length)
    return torch.log(integral.sum(-1)), delta


def log_half_circle_integral(kappa: Tensor, phi: Tensor, nodes: int = NODES) -> Tensor:
    """``log ∫₀^π exp(κ cos(t − φ)) dt`` for every element of ``kappa`` (≥ 0) and ``phi``.

    Shapes broadcast; accurate to ~1e-12 relative for ``κ`` up to ``10⁴`` (float64).
    """
    log_j, delta = log_peak_integral(kappa, phi, nodes)
    kappa = torch.broadcast_to(kappa, log_j.shape)
    return kappa * torch.cos(delta) + log_j
