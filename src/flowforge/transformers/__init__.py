"""Elementwise monotone maps whose parameters come from a network: affine, additive, spline."""

from flowforge.transformers.base import AffineTransformer, SplineTransformer, Transformer
from flowforge.transformers.spline import DEFAULT_BOUND

__all__ = ["DEFAULT_BOUND", "AffineTransformer", "SplineTransformer", "Transformer"]
