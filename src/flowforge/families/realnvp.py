"""RealNVP (Dinh et al. 2016), the notebook's model: affine couplings alternated by ``Swap``."""

from __future__ import annotations

from flowforge.families.bases import base_distribution
from flowforge.families.family import BASE, COUPLINGS, HIDDEN, POINTS, ZERO_INIT, Family
from flowforge.families.stack import coupling_stack
from flowforge.flow import NormalizingFlow
from flowforge.layers import AffineCoupling, FlowLayer
from flowforge.nets import block


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

    return NormalizingFlow(base_distribution(base, width), *coupling_stack(width, couplings, make))


DECLARED = (
    Family(
        "realnvp",
        realnvp,
        POINTS,
        "the notebook's RealNVP: affine couplings alternated by `Swap` (Dinh et al. 2016)",
        options=(COUPLINGS, HIDDEN, ZERO_INIT, BASE),
        test_size={"hidden": 8},
    ),
)
