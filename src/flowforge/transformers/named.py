"""Transformers by name: ``"affine"``, ``"additive"``, ``"spline"``, or a ready one."""

from __future__ import annotations

from collections.abc import Callable

from flowforge.transformers.affine import AdditiveTransformer, AffineTransformer
from flowforge.transformers.base import Transformer
from flowforge.transformers.spline import SplineTransformer

TRANSFORMERS: dict[str, Callable[[], Transformer]] = {
    "affine": AffineTransformer,
    "additive": AdditiveTransformer,
    "spline": SplineTransformer,
}


def resolve_transformer(spec: str | Transformer) -> Transformer:
    """A ``Transformer`` as it is, or a name in ``TRANSFORMERS`` (with its defaults)."""
    if isinstance(spec, Transformer):
        return spec
    try:
        return TRANSFORMERS[spec]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown transformer {spec!r}; use one of {', '.join(map(repr, TRANSFORMERS))}, "
            "or an instance such as AffineTransformer(...) / SplineTransformer(...)"
        ) from None
