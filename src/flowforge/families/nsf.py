"""Neural spline flows: monotone rational-quadratic splines, autoregressive or in couplings.

Durkan et al., Neural spline flows, NeurIPS 2019.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from flowforge.families.autoregressive import maf
from flowforge.families.bases import base_distribution
from flowforge.families.family import (
    BASE,
    BINS,
    HIDDEN,
    LAYERS,
    POINTS,
    ZERO_INIT,
    Entry,
    Family,
    Option,
)
from flowforge.families.stack import coupling_stack
from flowforge.flow import NormalizingFlow
from flowforge.layers import FlowLayer, SplineCoupling
from flowforge.nets import block
from flowforge.transformers import DEFAULT_BOUND, SplineTransformer


def nsf(
    width: int = 2,
    *,
    layers: int = 5,
    hidden: int = 64,
    bins: int = 8,
    bound: float = DEFAULT_BOUND,
    coupling: bool = False,
    mixing: str = "reverse",
    base: str = "normal",
    context_width: int = 0,
    activation: Callable[[], torch.nn.Module] = torch.nn.ReLU,
    zero_init: bool = False,
) -> NormalizingFlow:
    """Neural spline flow: monotone rational-quadratic splines, identity outside.

    Autoregressive by default (``maf`` with a ``SplineTransformer``, like zuko's NSF);
    ``coupling=True`` builds ``SplineCoupling`` layers alternated by ``Swap`` instead,
    one pass in both directions (Durkan et al., Neural spline flows, NeurIPS 2019).

    Args:
        width: The number of dimensions (at least 2 with ``coupling=True``).
        layers: The number of spline layers.
        hidden: The width of the conditioners' hidden layers.
        bins: The number of bins of each spline.
        bound: The splines act on ``[-bound, bound]`` (``DEFAULT_BOUND``, 4:
            standardized data lie well inside).
        coupling: Spline couplings instead of autoregressive layers.
        mixing: The layer between two autoregressive ones (``maf``'s ``mixing``).
        base: The base distribution's name (``flowforge.families.BASES``).
        context_width: The number of context columns of a conditional flow (0: none).
        activation: The conditioners' activation (a module class).
        zero_init: Start every layer at the identity.

    Returns:
        A ``NormalizingFlow``.

    Example:
        >>> import torch
        >>> from flowforge import nsf
        >>> model = nsf(2, layers=2, hidden=8, bins=4, coupling=True)
        >>> [type(layer).__name__ for layer in model.flow]
        ['Split', 'SplineCoupling', 'Swap', 'SplineCoupling', 'Merge']
        >>> model.sample(3).shape
        torch.Size([3, 2])
    """
    spline = SplineTransformer(bins, bound)
    if not coupling:
        return maf(
            width,
            layers=layers,
            hidden=hidden,
            transformer=spline,
            mixing=mixing,
            base=base,
            context_width=context_width,
            activation=activation,
            zero_init=zero_init,
        )

    def make(a: int, b: int) -> FlowLayer:
        net = block(
            a,
            b,
            hidden,
            context_width=context_width,
            outputs_per_dim=spline.params_per_element,
            activation=activation,
            zero_init=zero_init,
        )
        return SplineCoupling(net, bins=bins, bound=bound)

    stack = coupling_stack(width, layers, make)
    return NormalizingFlow(base_distribution(base, width), *stack)


# The mixture-base recipe (docs/guide/families.md, "A mixture base"): spline couplings
# that start at the identity on a mixture fitted by EM, 12 epochs at batch 512 and a peak
# rate of 3e-3.
_MIXTURE_RECIPE = {"epochs": 12, "batch_size": 512, "lr": 3e-3}

# The mixture-base model: two spline couplings at the identity on a mixture fitted by EM.
MIXTURE_OPTIONS = {
    "coupling": True,
    "layers": 2,
    "hidden": 32,
    "bins": 8,
    "base": "mixture",
    "zero_init": True,
}
# ``flowforge train --preset quality``: the mixture-base recipe, made short: 8 epochs at
# batch 2,048 and a peak rate of 8e-3 (cosine): held-out KL below 0.001 nats on the moons
# in a few seconds of training (``python -m benchmarks.families --preset``,
# docs/benchmarks.md).
QUALITY_PRESET = {
    "model": "nsf",
    **MIXTURE_OPTIONS,
    "epochs": 8,
    "batch_size": 2048,
    "lr": 8e-3,
    "warmup": 0,
}

DECLARED = (
    Family(
        "nsf",
        nsf,
        POINTS,
        "rational-quadratic splines, autoregressive; `--coupling`: in couplings "
        "(Durkan et al. 2019)",
        options=(
            LAYERS,
            HIDDEN,
            BINS,
            Option("coupling", "spline coupling layers instead of autoregressive ones", bool),
            ZERO_INIT,
            BASE,
        ),
        test_size={"layers": 2, "hidden": 8, "bins": 4},
        compare=(
            Entry("nsf", {"coupling": True, "layers": 4, "hidden": 32}),
            # The guide's mixture-base recipe, and a wider one for the toy
            # suite's thin rings: four layers of 64 units, 16 bins.
            Entry(
                "nsf-mixture",
                MIXTURE_OPTIONS,
                **_MIXTURE_RECIPE,
            ),
            Entry(
                "nsf-mixture-wide",
                {**MIXTURE_OPTIONS, "layers": 4, "hidden": 64, "bins": 16},
                **_MIXTURE_RECIPE,
            ),
        ),
    ),
)
