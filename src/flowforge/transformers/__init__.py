"""Elementwise monotone maps whose parameters come from a network: affine, additive, spline."""

from flowforge.transformers.base import AffineTransformer, SplineTransformer, Transformer

__all__ = ["AffineTransformer", "SplineTransformer", "Transformer"]
