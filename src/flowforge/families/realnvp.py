"""RealNVP, the course notebook's model: affine couplings alternated by ``Swap``.

Dinh et al., Density estimation using Real NVP, ICLR 2017.
"""

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
    """RealNVP, as in the course notebook: ``Split``, couplings alternated by ``Swap``,
    ``Merge``.

    Each coupling is an ``AffineCoupling`` conditioned by ``block`` (Dinh et al.,
    Density estimation using Real NVP, ICLR 2017).

    Args:
        width: The number of dimensions (at least 2).
        couplings: The number of affine couplings.
        hidden: The width of each conditioner's hidden layers.
        base: The base distribution's name (``flowforge.families.BASES``: ``"normal"``,
            ``"mixture"``, ...).
        context_width: The number of context columns of a conditional flow (0: none).
        log_scale: How each coupling turns its network's output into a log-scale
            (``AffineCoupling``).
        zero_init: Start every coupling at the identity.

    Returns:
        A ``NormalizingFlow``.

    Example:
        >>> import torch
        >>> from flowforge import realnvp
        >>> _ = torch.manual_seed(0)
        >>> model = realnvp(2, couplings=4, hidden=16)
        >>> model.sample(3).shape, model.log_prob(torch.randn(3, 2)).shape
        (torch.Size([3, 2]), torch.Size([3]))
        >>> [type(layer).__name__ for layer in model.flow][:4]
        ['Split', 'AffineCoupling', 'Swap', 'AffineCoupling']
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
        "the notebook's RealNVP: affine couplings alternated by `Swap` (Dinh et al. 2017)",
        options=(COUPLINGS, HIDDEN, ZERO_INIT, BASE),
        test_size={"hidden": 8},
    ),
)
