"""Coupling layers: ``z_B' = transformer(z_B; block(z_A [, context]))``, ``z_A`` unchanged.

A coupling is a conditioner (``block``, a network reading ``z_A`` and the context) plus a
transformer (``flowforge.transformers``: affine, additive, spline), whose mathematics
lives there once. ``AffineCoupling`` (RealNVP: Dinh et al., Density estimation using
Real NVP, ICLR 2017; the course notebook's), ``AdditiveCoupling`` (NICE: Dinh et al.,
NICE: Non-linear independent components estimation, ICLR 2015 workshop) and
``SplineCoupling`` (Durkan et al., Neural spline flows, NeurIPS 2019) are its named forms; the image
couplings of ``flowforge.layers.masked`` are the same idea with a mask.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from flowforge.gradients import Batch, has_hooks, owns_handwritten
from flowforge.gradients import Value as FeatureMajor
from flowforge.layers.base import FlowLayer
from flowforge.nets import input_width
from flowforge.transformers import (
    AdditiveTransformer,
    AffineTransformer,
    HandwrittenTransformer,
    LogScale,
    SplineTransformer,
    Transformer,
)
from flowforge.transformers.log_scale import LogScaleSpec
from flowforge.transformers.spline import DEFAULT_BOUND
from flowforge.values import Value, describe, per_sample, sum_per_sample, zero_log_det


def conditioner_input(zA: Tensor, context: tuple[Tensor, ...]) -> Tensor:
    """``z_A`` with the context columns appended: the input of a coupling's network."""
    if not context:
        return zA
    parts = [zA] + [per_sample(c).to(zA.dtype) for c in context]
    return torch.cat(parts, dim=1)


def _split_pair(layer: FlowLayer, z: Value) -> tuple[Tensor, Tensor]:
    if not (isinstance(z, tuple) and len(z) == 2):
        raise TypeError(
            f"{type(layer).__name__} expects a pair (z_A, z_B), got {describe(z)}; "
            "put a Split() before the first coupling layer"
        )
    return z


def total_log_det(log_det: Tensor | None, like: Tensor) -> Tensor:
    """A transformer's elementwise log-derivatives summed per sample (zero for ``None``)."""
    return zero_log_det(like) if log_det is None else sum_per_sample(log_det)


class Coupling(FlowLayer):
    """A coupling on a pair ``(z_A, z_B)``: ``z_A`` passes through, and every element of
    ``z_B`` goes through ``transformer`` with parameters from ``block(z_A [, context])``.

    The block must output ``transformer.params_per_element × width(z_B)`` columns, the
    parameters in blocks of ``width(z_B)`` (``block(dim_A, dim_B, hidden,
    outputs_per_dim=transformer.params_per_element)`` makes one). The log-determinant is
    the transformer's, summed per sample.
    """

    def __init__(self, block: torch.nn.Module, transformer: Transformer) -> None:
        super().__init__()
        self.block = block
        self.transformer = transformer
        self.volume_preserving = transformer.volume_preserving

    def parameters_for(
        self, zA: Tensor, zB: Tensor, context: tuple[Tensor, ...]
    ) -> tuple[Tensor, ...]:
        """The block's output for ``z_A`` (and context) as the transformer's ``params``:
        ``params_per_element`` tensors shaped like ``z_B``, as one parameter-first view
        ``(params_per_element, *z_B.shape)``."""
        n = self.transformer.params_per_element
        h = conditioner_input(zA, context)
        try:
            out = self.block(h)
        except RuntimeError as error:
            raise self._explain(h, zA, error) from error
        if out.dim() != 2 or out.shape[0] != zB.shape[0] or out.shape[1] != n * zB.shape[1]:
            raise ValueError(
                f"{type(self).__name__}'s block outputs width {out.shape[1]}, but z_B has "
                f"shape {tuple(zB.shape)}: the block must output {n} × (width of z_B) = "
                f"{n * zB.shape[1]} columns, e.g. block(dim_A, dim_B={zB.shape[1]}, ...)"
            )
        # Parameter-first views of the output, not copies (a spline takes them as one).
        return out.unflatten(1, (n, zB.shape[1])).movedim(1, 0)

    def _explain(self, h: Tensor, zA: Tensor, error: RuntimeError) -> Exception:
        expected = input_width(self.block)
        if expected is not None and expected != h.shape[1]:
            return ValueError(
                f"{type(self).__name__}'s block expects input width {expected}, but it got "
                f"z_A of width {zA.shape[1]} plus {h.shape[1] - zA.shape[1]} context columns; "
                f"build it with block(dim_A={zA.shape[1]}, ..., "
                f"context_width={h.shape[1] - zA.shape[1]})"
            )
        return error

    def forward(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        zA, zB = _split_pair(self, z)
        x, log_det = self.transformer.forward(zB, self.parameters_for(zA, zB, context))
        return (zA, x), total_log_det(log_det, x)

    def inverse(self, z: Value, *context: Tensor) -> tuple[tuple[Tensor, Tensor], Tensor]:
        zA, zB = _split_pair(self, z)
        x, log_det = self.transformer.inverse(zB, self.parameters_for(zA, zB, context))
        return (zA, x), total_log_det(log_det, x)

    def handwritten(self) -> CouplingGradients | None:
        """The hand-written form: when the block (an ``MLP``) and the transformer have one."""
        make = getattr(self.block, "handwritten", None)
        net = make() if callable(make) else None
        transformer = self.transformer.handwritten()
        if has_hooks(self) or not owns_handwritten(self, "inverse") or None in (net, transformer):
            return None
        return CouplingGradients(net, transformer, self.transformer.params_per_element)


class CouplingGradients:
    """A coupling's inverse and its hand-written backward (``flowforge.gradients``): the
    network's hand-written form, then the transformer's."""

    def __init__(self, net: Any, transformer: HandwrittenTransformer, n: int) -> None:
        self.net, self.transformer, self.n = net, transformer, n

    def refresh(self) -> None:
        self.net.refresh()

    def inverse(self, z: FeatureMajor, batch: Batch) -> tuple[FeatureMajor, Tensor | None, Any]:
        zA, zB = z
        h = zA if batch.context is None else torch.cat([zA, batch.context])
        out, inputs = self.net.forward(h)
        params = out.unflatten(0, (self.n, -1))  # parameter-first: (n, width of z_B, batch)
        zB, log_det, kept = self.transformer.inverse_saving(zB, params)
        return (zA, zB), None if log_det is None else log_det.sum(), (inputs, len(zA), kept)

    def backward(self, saved: Any, g: FeatureMajor, batch: Batch) -> FeatureMajor:
        gA, gB = g
        inputs, rows, kept = saved
        g_in, minus_g = self.transformer.inverse_backward(kept, gB, batch.log_det_grad)
        if isinstance(minus_g, Tensor):  # parameter-first, as the spline gives it
            g_out = minus_g.flatten(0, 1)
        else:
            g_out = minus_g[0] if len(minus_g) == 1 else torch.cat(minus_g)
        # The network gets minus its output's gradient (sign -1), as the transformer gives it.
        return self.net.backward(inputs, g_out, batch, gA, rows, -1.0), g_in


class AffineCoupling(Coupling):
    """The affine coupling of RealNVP on a pair ``(z_A, z_B)``, as in the course notebook.

    ``s, t = block(z_A [, context])``, then ``forward``: ``z_B' = exp(s) * z_B + t``,
    with log-determinant ``sum(s)``; ``z_A`` passes through unchanged (Dinh et al.,
    Density estimation using Real NVP, ICLR 2017).

    Args:
        block: The conditioner network: it reads ``z_A`` (and the context columns) and
            outputs ``2 * width(z_B)`` columns, ``s`` then ``t``
            (``block(dim_A, dim_B, hidden)`` makes one).
        log_scale: How the raw network output becomes ``s``: ``"soft_clamp"``
            (default, ``s = bound * tanh(raw / bound)``, so an exploding network cannot
            overflow), ``"exp"`` (the notebook's plain ``exp(raw)``), ``"sigmoid"``
            (nflows' bounded scale), or any callable
            (``flowforge.transformers.log_scale``).

    Example:
        >>> import torch
        >>> from flowforge import AffineCoupling, block, check_flow
        >>> _ = torch.manual_seed(0)
        >>> layer = AffineCoupling(block(1, 2, 16))
        >>> z = (torch.randn(4, 1), torch.randn(4, 2))
        >>> (zA, zB), log_det = layer(z)
        >>> torch.equal(zA, z[0]), zB.shape, log_det.shape
        (True, torch.Size([4, 2]), torch.Size([4]))
        >>> check_flow(layer, z)
    """

    def __init__(self, block: torch.nn.Module, log_scale: LogScaleSpec = "soft_clamp") -> None:
        super().__init__(block, AffineTransformer(log_scale))

    @property
    def log_scale(self) -> LogScale:
        """The function from raw network output to log-scale (the transformer's)."""
        return self.transformer.log_scale


class AdditiveCoupling(Coupling):
    """The additive coupling of NICE on a pair ``(z_A, z_B)``: ``z_B' = z_B + t``.

    ``t = block(z_A [, context])``; ``z_A`` passes through. Volume preserving: both
    log-determinants are zero (Dinh et al., NICE: Non-linear independent components
    estimation, ICLR 2015 workshop).

    Args:
        block: The conditioner network, outputting the width of ``z_B`` (build it with
            ``block(dim_A, dim_B, hidden, outputs_per_dim=1)``).

    Example:
        >>> import torch
        >>> from flowforge import AdditiveCoupling, block
        >>> layer = AdditiveCoupling(block(2, 2, 16, outputs_per_dim=1))
        >>> (zA, zB), log_det = layer((torch.randn(3, 2), torch.randn(3, 2)))
        >>> zB.shape, log_det
        (torch.Size([3, 2]), tensor([0., 0., 0.]))
    """

    def __init__(self, block: torch.nn.Module) -> None:
        super().__init__(block, AdditiveTransformer())


class SplineCoupling(Coupling):
    """A rational-quadratic spline coupling on a pair ``(z_A, z_B)``.

    Each element of ``z_B`` goes through its own monotone rational-quadratic spline on
    ``[-bound, bound]``, the identity outside, with the spline's parameters from
    ``block(z_A [, context])``; ``z_A`` passes through (Durkan et al., Neural spline
    flows, NeurIPS 2019). A block whose output layer is zero (``zero_init=True``)
    makes the layer the identity.

    Args:
        block: The conditioner network, outputting ``3 * bins - 1`` numbers for every
            element of ``z_B`` (``block(dim_A, dim_B, hidden,
            outputs_per_dim=SplineTransformer(bins).params_per_element)``).
        bins: The number of bins of each spline.
        bound: The splines act on ``[-bound, bound]``.

    Example:
        >>> import torch
        >>> from flowforge import SplineCoupling, block
        >>> from flowforge.transformers import SplineTransformer
        >>> net = block(1, 1, 16, outputs_per_dim=SplineTransformer(8).params_per_element,
        ...             zero_init=True)
        >>> layer = SplineCoupling(net, bins=8)
        >>> z = (torch.zeros(2, 1), torch.tensor([[0.5], [-1.0]]))
        >>> (zA, zB), log_det = layer(z)  # the identity at first
        >>> torch.allclose(zB, z[1], atol=1e-6), bool(log_det.abs().max() < 1e-6)
        (True, True)
    """

    def __init__(self, block: torch.nn.Module, bins: int = 8, bound: float = DEFAULT_BOUND) -> None:
        super().__init__(block, SplineTransformer(bins, bound))
