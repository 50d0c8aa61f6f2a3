"""How an affine transformer's raw network output becomes its log-scale ``s``.

``x = exp(s) * z + t``: the network gives ``raw`` and ``t``, and a log-scale function
turns ``raw`` into ``s``. The choices, by name:

- ``"soft_clamp"`` (the default): ``s = bound * tanh(raw / bound)``, the identity near 0
  and bounded by ``±bound`` (5), so an exploding network cannot overflow either direction;
- ``"exp"``: ``s = raw``, the course notebook's plain ``exp(raw)`` scale (unbounded);
- ``"sigmoid"``: nflows' ``scale = sigmoid(raw + 2) + 1e-3``, in ``(0.001, 1.001)``.

Each is a module with ``forward(raw) -> s`` and, for the hand-written gradients,
``negated(raw) -> (-s, kept)`` and ``times_derivative(g, kept) -> g * ds/draw``. Any
other callable is accepted too (``CustomLogScale``), without hand-written gradients.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


class LogScale(torch.nn.Module):
    """``s = f(raw)``; ``has_derivative`` says whether the hand-written gradients know ``f'``."""

    @property
    def has_derivative(self) -> bool:
        """Whether the class that defines ``forward`` also defines ``negated`` and
        ``times_derivative`` (so they describe this ``forward``)."""
        owner = next(c for c in type(self).__mro__ if "forward" in vars(c))
        return "negated" in vars(owner) and "times_derivative" in vars(owner)

    def forward(self, raw: Tensor) -> Tensor:
        raise NotImplementedError

    def negated(self, raw: Tensor) -> tuple[Tensor, Any]:
        """``-s`` and what ``times_derivative`` needs."""
        raise NotImplementedError

    def times_derivative(self, g: Tensor, kept: Any) -> Tensor:
        """``g * ds/draw`` (``g`` may be overwritten)."""
        raise NotImplementedError


class ExpLogScale(LogScale):
    """The notebook's choice: the network output is the log-scale itself (unbounded)."""

    def forward(self, raw: Tensor) -> Tensor:
        return raw

    def negated(self, raw: Tensor) -> tuple[Tensor, None]:
        return raw.neg(), None

    def times_derivative(self, g: Tensor, kept: None) -> Tensor:
        return g


class SoftClampLogScale(LogScale):
    """``s = bound * tanh(raw / bound)``: the identity near 0, bounded by ``±bound``.

    The scale ``exp(s)`` stays within ``[exp(-bound), exp(bound)]`` however large the
    network output grows, so neither direction can overflow to ``inf`` or ``NaN``.
    Its constant is a (non-persistent) buffer: it follows the layer's device and dtype,
    and a tensor constant is cheaper than a Python number in an autograd step.
    Dividing by the bound (not multiplying by a stored reciprocal, which rounds) keeps
    the slope at 0 exactly 1 in every dtype.
    """

    def __init__(self, bound: float = 5.0) -> None:
        super().__init__()
        if not bound > 0:
            raise ValueError(f"the log-scale bound must be positive, got {bound}")
        self.bound = float(bound)
        self.register_buffer("_bound", torch.tensor(self.bound), persistent=False)

    def forward(self, raw: Tensor) -> Tensor:
        return torch.tanh(raw / self._bound) * self._bound

    def negated(self, raw: Tensor) -> tuple[Tensor, Tensor]:
        th = torch.div(raw, self.bound).tanh_()
        return th.mul(-self.bound), th

    def times_derivative(self, g: Tensor, th: Tensor) -> Tensor:
        return g.addcmul_(g * th, th, value=-1.0)  # ds/draw = 1 - tanh^2

    def extra_repr(self) -> str:
        return f"bound={self.bound}"


class SigmoidLogScale(LogScale):
    """nflows' choice: ``scale = sigmoid(raw + 2) + 1e-3``, in ``(0.001, 1.001)``."""

    def forward(self, raw: Tensor) -> Tensor:
        return torch.log(torch.sigmoid(raw + 2.0) + 1e-3)

    def negated(self, raw: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        sg = torch.sigmoid(raw + 2.0)
        q = sg + 1e-3
        return q.log().neg_(), (sg, q)

    def times_derivative(self, g: Tensor, kept: tuple[Tensor, Tensor]) -> Tensor:
        sg, q = kept
        return g.mul_(sg * (1.0 - sg) / q)  # ds/draw = sg (1 - sg) / (sg + 1e-3)


class CustomLogScale(LogScale):
    """Any function from raw network output to log-scale (no hand-written gradients)."""

    def __init__(self, function: Callable[[Tensor], Tensor]) -> None:
        super().__init__()
        self.function = function

    def forward(self, raw: Tensor) -> Tensor:
        return self.function(raw)

    def extra_repr(self) -> str:
        return getattr(self.function, "__name__", repr(self.function))


LOG_SCALES: dict[str, Callable[[], LogScale]] = {
    "exp": ExpLogScale,
    "soft_clamp": SoftClampLogScale,
    "sigmoid": SigmoidLogScale,
}

LogScaleSpec = str | Callable[[Tensor], Tensor]


def resolve_log_scale(spec: LogScaleSpec) -> LogScale:
    """A log-scale by name (``LOG_SCALES``), a ``LogScale`` as it is, or any callable."""
    if isinstance(spec, LogScale):
        return spec
    if callable(spec):
        return CustomLogScale(spec)
    try:
        return LOG_SCALES[spec]()
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown log_scale {spec!r}; choose one of {sorted(LOG_SCALES)} "
            "or pass a function from raw network output to log-scale"
        ) from None
