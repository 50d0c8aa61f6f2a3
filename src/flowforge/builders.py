"""Builders: functions that return a ready ``NormalizingFlow`` with sensible defaults.

``BUILDERS`` maps a model name (``flowforge train --model NAME``) to its builder; every
builder takes ``width`` and keyword options, including ``base`` and ``context_width``.
"""

from __future__ import annotations

from collections.abc import Callable

from torch.distributions import Normal, Uniform

from flowforge.distributions import Multivariate
from flowforge.flow import NormalizingFlow
from flowforge.layers import AffineCoupling, Merge, Split, Swap
from flowforge.nets import block

BASES: dict[str, Callable[[], object]] = {
    "normal": lambda: Normal(0.0, 1.0),
    # Wide enough to cover standardized data at initialization (the flow starts near
    # the identity), yet bounded: the notebook's question 10.6 (b).
    "uniform": lambda: Uniform(-3.0, 3.0),
}


def base_distribution(name: str, width: int) -> Multivariate:
    """A named base distribution over ``width`` dimensions: ``"normal"`` or ``"uniform"``."""
    try:
        return Multivariate(width, BASES[name]())
    except KeyError:
        raise ValueError(f"unknown base {name!r}; choose one of {sorted(BASES)}") from None


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

    For an odd ``width`` the halves differ (5 + 4 for 9); each coupling's block is sized
    for the pair it sees, and the final ``Merge`` is given the widths it receives.
    """
    if width < 2:
        raise ValueError(f"a coupling flow needs width >= 2, got {width}")
    if couplings < 1:
        raise ValueError(f"need at least one coupling layer, got {couplings}")
    a, b = width - width // 2, width // 2
    layers = [Split()]
    for i in range(couplings):
        net = block(a, b, hidden, context_width=context_width, zero_init=zero_init)
        layers.append(AffineCoupling(net, log_scale=log_scale))
        if i < couplings - 1:
            layers.append(Swap())
            a, b = b, a
    layers.append(Merge([a, b]) if a != b else Merge())
    return NormalizingFlow(base_distribution(base, width), *layers)


BUILDERS: dict[str, Callable[..., NormalizingFlow]] = {"realnvp": realnvp}
