"""The pieces builders share: a stack of couplings over the two halves of a vector, and
the mixing layers put between autoregressive layers."""

from __future__ import annotations

from collections.abc import Callable

from flowforge.layers import FlowLayer, LULinear, Merge, Permute, Reverse, Split, Swap


def coupling_stack(
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


MIXINGS: dict[str, Callable[[int], FlowLayer]] = {
    "reverse": lambda width: Reverse(),
    "random": lambda width: Permute(width),
    "lu": lambda width: LULinear(width),
}


def mixing(name: str, width: int) -> FlowLayer:
    """The layer ``name`` (``"reverse"``, ``"random"`` or ``"lu"``) over ``width`` columns."""
    try:
        return MIXINGS[name](width)
    except KeyError:
        raise ValueError(f"unknown mixing {name!r}; choose one of {sorted(MIXINGS)}") from None
