"""Builders: functions that return a ready ``NormalizingFlow`` with sensible defaults.

``BUILDERS`` maps a model name (``flowforge train --model NAME``) to its builder; every
builder takes ``width`` and keyword options, including ``base`` and ``context_width``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.distributions import Normal, Uniform

from flowforge.distributions import Multivariate
from flowforge.flow import NormalizingFlow
from flowforge.layers import (
    AdditiveCoupling,
    AffineCoupling,
    FlowLayer,
    Inverse,
    LULinear,
    MaskedAutoregressive,
    Merge,
    Permute,
    Reverse,
    Scale,
    SplineCoupling,
    Split,
    Swap,
)
from flowforge.mixture import GaussianMixture
from flowforge.monotone import SplineTransformer, Transformer
from flowforge.nets import block

BASES: dict[str, Callable[[int], torch.nn.Module]] = {
    "normal": lambda width: Multivariate(width, Normal(0.0, 1.0)),
    # Wide enough to cover standardized data at initialization (the flow starts near
    # the identity), yet bounded: the notebook's question 10.6 (b).
    "uniform": lambda width: Multivariate(width, Uniform(-3.0, 3.0)),
    # 24 learnable full-covariance Gaussians; fit them with initialize_mixture(model, data).
    "mixture": lambda width: GaussianMixture(width, 24),
}


def base_distribution(name: str, width: int) -> torch.nn.Module:
    """A named base distribution over ``width`` dimensions: ``"normal"``, ``"uniform"`` or
    ``"mixture"`` (a ``GaussianMixture`` of 24 components, to be fitted by
    ``initialize_mixture`` before training)."""
    try:
        return BASES[name](width)
    except KeyError:
        raise ValueError(f"unknown base {name!r}; choose one of {sorted(BASES)}") from None


def _coupling_stack(
    width: int, couplings: int, make: Callable[[int, int], FlowLayer]
) -> list[FlowLayer]:
    """``Split``, ``couplings`` layers ``make(dim_A, dim_B)`` alternated by ``Swap``, ``Merge``.

    For an odd ``width`` the halves differ (5 + 4 for 9); each coupling is made for the
    pair it sees, and the final ``Merge`` is given the widths it receives.
    """
    if width < 2:
        raise ValueError(f"a coupling flow needs width >= 2, got {width}")
    if couplings < 1:
        raise ValueError(f"need at least one coupling layer, got {couplings}")
    a, b = width - width // 2, width // 2
    layers: list[FlowLayer] = [Split()]
    for i in range(couplings):
        layers.append(make(a, b))
        if i < couplings - 1:
            layers.append(Swap())
            a, b = b, a
    layers.append(Merge([a, b]) if a != b else Merge())
    return layers


def realnvp(
    width: int = 2,
    *,
    couplings: int = 4,
    hidden: int = 16,
    base: str = "normal",
    context_width: int = 0,
    log_scale: str = "soft_clamp",
    zero_init: bool = False,
) -> NormalizingFlow:
    """The notebook's RealNVP (section 10.5 a): ``Split``, couplings alternated by ``Swap``,
    ``Merge``. Defaults: 4 affine couplings with hidden width 16 and a normal base.
    """

    def make(a: int, b: int) -> FlowLayer:
        net = block(a, b, hidden, context_width=context_width, zero_init=zero_init)
        return AffineCoupling(net, log_scale=log_scale)

    return NormalizingFlow(base_distribution(base, width), *_coupling_stack(width, couplings, make))


def nice(
    width: int = 2,
    *,
    couplings: int = 4,
    hidden: int = 32,
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """NICE (Dinh et al. 2014): additive couplings alternated by ``Swap``, then a learned
    per-column ``Scale`` (the only layer that changes volume). Defaults: 4 couplings,
    hidden width 32, normal base.
    """

    def make(a: int, b: int) -> FlowLayer:
        net = block(
            a, b, hidden, context_width=context_width, outputs_per_dim=1, activation=activation
        )
        return AdditiveCoupling(net.zero_last_layer_() if zero_init else net)

    layers = _coupling_stack(width, couplings, make)
    return NormalizingFlow(
        base_distribution(base, width), *layers, Scale(torch.ones(width), learnable=True)
    )


MIXINGS: dict[str, Callable[[int], FlowLayer]] = {
    "reverse": lambda width: Reverse(),
    "random": lambda width: Permute(width),
    "lu": lambda width: LULinear(width),
}


def _mixing(name: str, width: int) -> FlowLayer:
    try:
        return MIXINGS[name](width)
    except KeyError:
        raise ValueError(f"unknown mixing {name!r}; choose one of {sorted(MIXINGS)}") from None


def _masked_autoregressive_flow(
    width: int,
    layers: int,
    hidden: int,
    transformer: str | Transformer,
    mixing: str,
    base: str,
    context_width: int,
    activation: Callable[[], torch.nn.Module],
    zero_init: bool,
    wrap: Callable[[FlowLayer], FlowLayer] = lambda layer: layer,
) -> NormalizingFlow:
    """``layers`` masked autoregressive layers (each passed through ``wrap``), with a
    mixing layer between each two, on a ``base`` distribution: MAF, IAF and NSF's body."""
    if width < 1 or layers < 1:
        raise ValueError(f"need width >= 1 and layers >= 1, got width={width}, layers={layers}")
    stack: list[FlowLayer] = []
    for i in range(layers):
        made = MaskedAutoregressive(
            width,
            hidden,
            transformer=transformer,
            context_width=context_width,
            activation=activation,
            zero_init=zero_init,
        )
        stack.append(wrap(made))
        if i < layers - 1 and width > 1:
            stack.append(_mixing(mixing, width))
    return NormalizingFlow(base_distribution(base, width), *stack)


def maf(
    width: int = 2,
    *,
    layers: int = 5,
    hidden: int = 32,
    transformer: str | Transformer = "affine",
    mixing: str = "reverse",
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """MAF (Papamakarios et al. 2017): ``layers`` masked autoregressive layers, with the
    column order reversed (``mixing="reverse"``; or ``"random"``, ``"lu"``) between them.
    Density evaluation is one pass per layer; sampling ``width`` passes per layer.
    Defaults: 5 affine layers with MADE hidden width 32, normal base.
    """
    return _masked_autoregressive_flow(
        width, layers, hidden, transformer, mixing, base, context_width, activation, zero_init
    )


def iaf(
    width: int = 2,
    *,
    layers: int = 5,
    hidden: int = 32,
    transformer: str | Transformer = "affine",
    mixing: str = "reverse",
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """IAF (Kingma et al. 2016): MAF's layers wrapped in ``Inverse``, so sampling is one
    pass per layer and density evaluation ``width`` passes. Defaults as ``maf``.
    """
    return _masked_autoregressive_flow(
        width,
        layers,
        hidden,
        transformer,
        mixing,
        base,
        context_width,
        activation,
        zero_init,
        wrap=Inverse,
    )


def nsf(
    width: int = 2,
    *,
    layers: int = 5,
    hidden: int = 64,
    bins: int = 8,
    bound: float = 4.0,
    coupling: bool = False,
    mixing: str = "reverse",
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """Neural spline flow (Durkan et al. 2019): monotone rational-quadratic splines with
    ``bins`` bins on ``[-bound, bound]``, identity outside.

    Autoregressive by default (MAF layers with a spline transformer, like zuko's NSF);
    ``coupling=True`` builds ``SplineCoupling`` layers alternated by ``Swap`` instead,
    one pass in both directions. Defaults: 5 layers, hidden width 64, 8 bins, bound 4
    (standardized data lie well inside), normal base.
    """
    if coupling:

        def make_coupling(a: int, b: int) -> FlowLayer:
            net = block(
                a,
                b,
                hidden,
                context_width=context_width,
                outputs_per_dim=3 * bins - 1,
                activation=activation,
                zero_init=zero_init,
            )
            return SplineCoupling(net, bins=bins, bound=bound)

        stack = _coupling_stack(width, layers, make_coupling)
        return NormalizingFlow(base_distribution(base, width), *stack)
    spline = SplineTransformer(bins, bound)
    return _masked_autoregressive_flow(
        width, layers, hidden, spline, mixing, base, context_width, activation, zero_init
    )


BUILDERS: dict[str, Callable[..., NormalizingFlow]] = {
    "realnvp": realnvp,
    "nice": nice,
    "maf": maf,
    "iaf": iaf,
    "nsf": nsf,
}
