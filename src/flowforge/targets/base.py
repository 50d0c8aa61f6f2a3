"""The ``Target`` contract: an unnormalized log-density with what is known about it.

A target is a density known up to a constant, ``p(x) = exp(log_prob(x)) / Z``: what a
flow is fitted to by reverse KL, and what :mod:`flowforge.importance` scores a sampler
against. Each target says what is known about it besides ``log_prob``: the normalizer
``log Z`` (by quadrature for the 2-D ones, in closed form where one exists), a box
holding its support, its modes and their weights for mixtures, exact samples where they
can be drawn, a reference chain's moments for a posterior.
"""

from __future__ import annotations

import math
from functools import cached_property

import torch
from torch import Tensor

from flowforge.errors import InputError

# Points per chunk of a quadrature grid: a few megabytes of float64 at a time.
GRID_CHUNK = 1 << 18


def as_points(x: Tensor, dim: int, name: str) -> Tensor:
    """``x`` checked to be floating-point rows of width ``dim`` (a one-line error otherwise)."""
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise InputError(
            f"target {name!r}: log_prob expects a floating-point tensor of points, got "
            f"{getattr(x, 'dtype', type(x).__name__)}; convert it (torch.as_tensor(x).double())"
        )
    if x.dim() != 2 or x.shape[1] != dim:
        raise InputError(
            f"target {name!r}: expected points of shape (n, {dim}), got {tuple(x.shape)}; "
            f"reshape to (-1, {dim})"
        )
    return x


def grid_log_integral(
    log_prob, low: Tensor, high: Tensor, spacing: float, mask=None, transform=None
) -> float:
    """``log ∫ exp(log_prob(x)) dx`` over the 2-D box ``[low, high]`` by the midpoint rule.

    The box is cut into square cells of side about ``spacing`` (rounded so that a whole
    number fits), ``log_prob`` is evaluated at their centres in float64, chunk by chunk.
    For a smooth integrand that decays towards the box's edges the midpoint rule
    converges faster than any power of the spacing, so two spacings that agree bound the
    error. ``mask(x)`` (a boolean per point) restricts the integral to a region (a
    mode's cell). ``transform(u) -> (x, log|det dx/du|)`` integrates in other
    coordinates ``u`` whose box is ``[low, high]`` (the funnel's neck, made regular).

    Example:
        >>> import torch
        >>> gauss = lambda x: -0.5 * (x**2).sum(1)
        >>> lz = grid_log_integral(gauss, torch.tensor([-8.0, -8]), torch.tensor([8.0, 8]), 0.1)
        >>> abs(lz - math.log(2 * math.pi)) < 1e-9
        True
    """
    low, high = low.double(), high.double()
    counts = [max(1, round(float(h - lo) / spacing)) for lo, h in zip(low, high)]
    steps = [(h - lo) / c for lo, h, c in zip(low, high, counts)]
    axes = [
        lo + s * (torch.arange(c, dtype=torch.float64) + 0.5)
        for lo, s, c in zip(low, steps, counts)
    ]
    cell = math.log(float(steps[0] * steps[1]))
    parts = []
    xs = axes[0]
    rows = max(1, GRID_CHUNK // counts[1])
    for start in range(0, counts[0], rows):
        u = torch.cartesian_prod(xs[start : start + rows], axes[1])
        x, log_det = (u, 0.0) if transform is None else transform(u)
        lp = log_prob(x) + log_det
        if mask is not None:
            lp = torch.where(mask(x), lp, torch.full_like(lp, -math.inf))
        parts.append(torch.logsumexp(lp, 0))
    return float(torch.logsumexp(torch.stack(parts), 0)) + cell


class Target:
    """A density known up to a constant, and what is known about it besides.

    Attributes:
        name: The registry name (``flowforge.targets.get(name)``).
        dim: The width of a point.
        bounds: ``(low, high)``, each of shape ``(dim,)``: a box holding all but a
            negligible part of the mass (for grids and broad proposals), or ``None``.
        modes: ``(k, dim)`` centres (or, for rings and moons, a representative point) of
            the mixture components, or ``None``; ``assign`` maps points to them.
        weights: ``(k,)`` mass of each mode, summing to one, or ``None``.
        reference: For a posterior, the moments of a shipped reference chain
            (``mean``, ``std``, ``mcse_mean``, ``mcse_std``), else ``None``.

    Subclasses implement ``_log_prob(x)`` on float rows; where they know the normalizer
    in closed form they set ``closed_log_normalizer``; a 2-D target without one gets
    ``log_normalizer`` by quadrature at ``spacing`` (checked at ``2 * spacing``).
    """

    name: str = ""
    dim: int = 0
    bounds: tuple[Tensor, Tensor] | None = None
    modes: Tensor | None = None
    reference: dict | None = None
    closed_log_normalizer: float | None = None
    spacing: float = 0.01

    def log_prob(self, x: Tensor) -> Tensor:
        """The unnormalized log-density ``log p(x) + log Z`` of each row, shape ``(n,)``.

        Differentiable, in ``x``'s dtype and on its device.
        """
        return self._log_prob(as_points(x, self.dim, self.name))

    def _log_prob(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    @property
    def weights(self) -> Tensor | None:
        return None

    @cached_property
    def log_normalizer(self) -> float | None:
        """``log ∫ exp(log_prob)``: closed form where there is one, else 2-D quadrature."""
        if self.closed_log_normalizer is not None:
            return self.closed_log_normalizer
        if self.dim == 2 and self.bounds is not None:
            return self.quadrature(self.spacing)
        return None

    def quadrature_box(self) -> tuple[Tensor, Tensor]:
        """The box the quadrature integrates over (the bounds unless a target widens it)."""
        if self.bounds is None or self.dim != 2:
            raise InputError(f"target {self.name!r} has no 2-D box to integrate over")
        return self.bounds

    def quadrature_transform(self):
        """``u -> (x, log|det|)`` for a target integrated in other coordinates, else ``None``."""
        return None

    def quadrature(self, spacing: float | None = None, mask=None) -> float:
        """``log Z`` by the midpoint rule on a grid of the given spacing (2-D only)."""
        low, high = self.quadrature_box()
        with torch.no_grad():
            return grid_log_integral(
                lambda x: self._log_prob(x),
                low,
                high,
                spacing or self.spacing,
                mask=mask,
                transform=self.quadrature_transform(),
            )

    def quadrature_weights(self, spacing: float | None = None) -> Tensor:
        """Each mode's mass by quadrature over the cells ``assign`` gives it (2-D only)."""
        k = len(self.modes)
        logs = [self.quadrature(spacing, mask=lambda x, i=i: self.assign(x) == i) for i in range(k)]
        return torch.tensor(logs, dtype=torch.float64).sub(self.quadrature(spacing)).exp()

    def assign(self, x: Tensor) -> Tensor:
        """The index of the mode each row belongs to, shape ``(n,)`` (mixtures only)."""
        raise ValueError(f"target {self.name!r} is not a mixture: it has no modes to assign")

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` exact samples, shape ``(n, dim)``, float64, where they can be drawn."""
        raise NotImplementedError(f"target {self.name!r} has no exact sampler")

    def _rejection_sample(
        self, n: int, generator: torch.Generator | None, log_bound: float
    ) -> Tensor:
        """Exact samples (up to the mass outside the bounds) by rejection from the uniform
        distribution on the bounds, ``log_bound`` at least ``max log_prob``."""
        low, high = (b.double() for b in self.bounds)
        kept, have = [], 0
        while have < n:
            u = torch.rand(max(4 * n, 1 << 14), self.dim, generator=generator, dtype=torch.float64)
            x = low + (high - low) * u
            r = torch.rand(len(x), generator=generator, dtype=torch.float64)
            x = x[r.log() < self._log_prob(x) - log_bound]
            kept.append(x)
            have += len(x)
        return torch.cat(kept)[:n]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, dim={self.dim})"


class IsotropicMixture(Target):
    """Equal-weight Gaussians ``N(modes[i], scale² I)``, normalized (``log Z = 0``): the
    density, the weights, the most likely mode of a point and exact samples, for
    subclasses that set ``modes`` ``(k, dim)`` (float64) and ``scale``.

    Example:
        >>> from flowforge.targets import CircularMixture
        >>> t = CircularMixture(4)
        >>> t.assign(t.modes).tolist(), t.weights.tolist()
        ([0, 1, 2, 3], [0.25, 0.25, 0.25, 0.25])
    """

    closed_log_normalizer = 0.0
    modes: Tensor
    scale: float

    @property
    def weights(self) -> Tensor:
        k = len(self.modes)
        return torch.full((k,), 1.0 / k, dtype=torch.float64)

    def _log_prob(self, x: Tensor) -> Tensor:
        d2 = ((x[:, None, :] - self.modes.to(x)) ** 2).sum(-1)
        log_norm = math.log((2 * math.pi * self.scale**2) ** (self.dim / 2) * len(self.modes))
        return torch.logsumexp(-d2 / (2 * self.scale**2), 1) - log_norm

    def assign(self, x: Tensor) -> Tensor:
        """The nearest centre (the components share one scale, so the most likely one)."""
        return torch.cdist(x.double(), self.modes).argmin(1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        k = torch.randint(len(self.modes), (n,), generator=generator)
        eps = torch.randn(n, self.dim, generator=generator, dtype=torch.float64)
        return self.modes[k] + self.scale * eps
