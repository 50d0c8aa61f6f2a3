"""Flows over discrete images: uniform dequantization, and bits per dimension.

Pixels take the integer values ``0, 1, ..., levels - 1`` (scikit-learn's digits: 17
levels). A continuous flow cannot give such data a density, so, as in RealNVP and
Glow, each image ``k`` is *dequantized*: ``y = (k + u) / levels`` with ``u`` uniform on
``[0, 1)^D``, a point of the unit cube. For a density ``p`` on the cube,

    log P(k) = log ∫ p(y) dy over k's cell  ≥  E_u[log p((k + u) / levels)] - D·log(levels),

where ``-D·log(levels)`` is the log-volume of the cell ``[k, k + 1) / levels``. The
right-hand side, estimated with one draw of ``u``, is what ``DequantizedFlow.log_prob``
returns: a lower bound on the log-probability of the discrete image, in nats. Hence

    bits/dim = NLL / (D · ln 2) = (NLL_cube + D·log(levels)) / (D · ln 2),

``NLL_cube = -log p(y)`` being the negative log-density on the unit cube. A uniform
density on the cube (``NLL_cube = 0``) scores exactly ``log2(levels)`` bits/dim.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution

from flowforge.flow import NormalizingFlow
from flowforge.layers.base import FlowLayer
from flowforge.layers.multiscale import Flatten


def bits_per_dim(nll: float | Tensor, dims: int) -> float | Tensor:
    """Bits per dimension of a discrete NLL in nats (per image): ``nll / (dims · ln 2)``.

    ``nll`` must be the negative log-*probability* of the discrete data, as
    ``DequantizedFlow.log_prob`` gives it (its ``D·log(levels)`` term included). For a
    negative log-density ``nll_cube`` on the unit cube use
    ``bits_per_dim(nll_cube + dims * math.log(levels), dims)``.
    """
    if dims < 1:
        raise ValueError(f"dims must be positive, got {dims}")
    return nll / (dims * math.log(2))


def dequantize(k: Tensor, levels: int, generator: torch.Generator | None = None) -> Tensor:
    """``(k + u) / levels`` with ``u ~ U[0, 1)`` per element: pixel values into the unit cube."""
    u = torch.rand(k.shape, generator=generator, dtype=k.dtype, device=k.device)
    return (k + u) / levels


class DequantizedFlow(NormalizingFlow):
    """A ``NormalizingFlow`` on the unit cube, used as a model of discrete images.

    Data are flat images ``(batch, D)`` of pixel values ``0 .. levels - 1`` (as floats),
    ``D = prod(image_shape)``. ``log_prob(k)`` dequantizes (``(k + u) / levels``, see the
    module docstring) and returns the flow's log-density minus ``D·log(levels)``: a
    lower bound on ``log P(k)`` in nats, so ``bits_per_dim(-log_prob(k), D)`` is the
    usual bits/dim. In training mode ``u`` is fresh noise from torch's global generator;
    in eval mode it is drawn from a generator seeded with ``noise_seed`` on every call,
    so evaluation is repeatable. ``sample(n)`` returns discrete images: the flow's
    samples on the cube, floored to pixel values.

    The layers must map the cube (data side) to the base distribution's vectors; an
    image flow starts (data side) with ``Unflatten(image_shape)`` and ``Logit``.
    """

    def __init__(
        self,
        base_distribution: torch.nn.Module | Distribution,
        *layers: FlowLayer,
        levels: int,
        image_shape: Sequence[int],
        noise_seed: int = 0,
    ) -> None:
        super().__init__(base_distribution, *layers)
        if int(levels) != levels or levels < 2:
            raise ValueError(f"levels must be an integer of at least 2, got {levels!r}")
        self.levels = int(levels)
        self.image_shape = tuple(int(n) for n in image_shape)
        self.dims = math.prod(self.image_shape)
        self.noise_seed = int(noise_seed)
        if self.width is not None and self.width != self.dims:
            raise ValueError(
                f"images of shape {self.image_shape} have {self.dims} pixels, but the base "
                f"distribution has width {self.width}"
            )

    def _check_pixels(self, k: Tensor) -> None:
        if not isinstance(k, Tensor) or k.dim() != 2 or k.shape[1] != self.dims:
            shape = tuple(k.shape) if isinstance(k, Tensor) else type(k).__name__
            raise ValueError(
                f"expected flat images of shape (batch, {self.dims}) (images of shape "
                f"{self.image_shape}, flattened), got {shape}"
            )
        if not k.is_floating_point():
            raise ValueError(
                f"pixel values must be floats (they are dequantized with uniform noise), got "
                f"a {k.dtype} tensor; convert them to the model's dtype, e.g. x.float()"
            )
        if len(k) and (k.min() < 0 or k.max() > self.levels - 1):
            raise ValueError(
                f"pixel values must lie in [0, {self.levels - 1}], got values in "
                f"[{float(k.min())}, {float(k.max())}]; this model has {self.levels} levels"
            )

    def _noise_generator(self, k: Tensor) -> torch.Generator | None:
        if self.training:
            return None
        return torch.Generator(device=k.device).manual_seed(self.noise_seed)

    def log_prob(self, x: Tensor, *context: Tensor) -> Tensor:
        """Lower bound on ``log P(x)`` of each flat image ``x`` (``(batch, D)``), in nats."""
        self._check_pixels(x)
        y = dequantize(x, self.levels, self._noise_generator(x))
        return super().log_prob(y, *context) - self.dims * math.log(self.levels)

    def _quantize(self, y: Tensor) -> Tensor:
        return torch.floor(y * self.levels).clamp_(0, self.levels - 1)

    def sample(self, n: int = 1, *context: Tensor) -> Tensor:
        """``n`` discrete images, flat ``(n, D)`` (``(m, n, D)`` for ``m`` context rows)."""
        return self._quantize(super().sample(n, *context))

    def sample_and_log_prob(self, n: int = 1, *context: Tensor) -> tuple[Tensor, Tensor]:
        """``n`` discrete images and the (dequantized) lower bound on their log-probability."""
        if context:
            raise ValueError("DequantizedFlow.sample_and_log_prob takes no context")
        x = self.sample(n)
        return x, self.log_prob(x)

    def latents(self, x: Tensor, *context: Tensor) -> tuple[Tensor, ...]:
        """The latent parts of flat images ``x``, one per scale, in the shapes the flow's
        latent-end ``Flatten`` gives them (the first factored out first); dequantized as
        in ``log_prob``."""
        self._check_pixels(x)
        z, _ = self.flow.inverse(dequantize(x, self.levels, self._noise_generator(x)), *context)
        first = self.flow[0] if len(self.flow) else None
        if type(first) is not Flatten:  # not Unflatten, which is also a Flatten
            return (z,)
        parts, _ = first.forward(z)
        return parts if isinstance(parts, tuple) else (parts,)
