"""Elementwise monotone maps whose parameters come from a network: a coupling or
autoregressive layer is a conditioner plus one of these (``flowforge.transformers.base``).

- ``AffineTransformer(log_scale)``: ``x = exp(s) * z + t`` (RealNVP, MAF);
- ``AdditiveTransformer()``: ``x = z + t`` (NICE), volume preserving;
- ``SplineTransformer(bins, bound)``: a monotone rational-quadratic spline (neural spline
  flows), the identity outside ``[-bound, bound]``.

Each declares ``params_per_element``, the number of network outputs per element.
"""

from flowforge.transformers.affine import (
    AdditiveGradients,
    AdditiveTransformer,
    AffineGradients,
    AffineTransformer,
)
from flowforge.transformers.base import HandwrittenTransformer, Params, Transformer
from flowforge.transformers.log_scale import (
    LOG_SCALES,
    CustomLogScale,
    ExpLogScale,
    LogScale,
    SigmoidLogScale,
    SoftClampLogScale,
    resolve_log_scale,
)
from flowforge.transformers.named import TRANSFORMERS, resolve_transformer
from flowforge.transformers.spline import DEFAULT_BOUND, SplineTransformer

__all__ = [
    "DEFAULT_BOUND",
    "LOG_SCALES",
    "TRANSFORMERS",
    "AdditiveGradients",
    "AdditiveTransformer",
    "AffineGradients",
    "AffineTransformer",
    "CustomLogScale",
    "HandwrittenTransformer",
    "ExpLogScale",
    "LogScale",
    "Params",
    "SigmoidLogScale",
    "SoftClampLogScale",
    "SplineTransformer",
    "Transformer",
    "resolve_log_scale",
    "resolve_transformer",
]
