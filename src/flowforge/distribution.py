"""A flow as a ``torch.distributions.Distribution``: sample shapes, batches of contexts.

``NormalizingFlow.distribution(context)`` gives a ``FlowDistribution``, the flow seen
through the API that the rest of PyTorch's probabilistic code expects (zuko's flows are
such distributions; ``Independent``, ``MixtureSameFamily`` and reverse-KL or
variational objectives take them). Shapes follow torch's convention:
``sample_shape + batch_shape + event_shape``, where

- ``event_shape`` is ``(width,)``, or the shape given as ``event_shape=`` (an image
  shape ``(C, H, W)`` for a flow on flat images);
- ``batch_shape`` is ``()`` without context and ``context.shape[:-1]`` with one: a
  batch of ``B`` context rows ``(B, c)`` is a batch of ``B`` conditional distributions.

The seed's ``model.sample(n)`` and ``model.log_prob(x)`` are unchanged; this is a view
of the same module, so its parameters, device and dtype are the model's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor
from torch.distributions import Distribution, constraints

from flowforge.dequantization import DequantizedFlow
from flowforge.distributions import Multivariate
from flowforge.flow import NormalizingFlow
from flowforge.values import as_context

Context = Tensor | Sequence[Tensor] | None


class _ImageOfBaseSupport(constraints.Constraint):
    """The flow's image of a bounded base's support: ``x`` such that ``inverse(x)`` lies
    in the base's support (where ``log_prob`` is finite). It is not a box in general, so
    torch's ``biject_to``/``transform_to`` do not know it."""

    is_discrete = False

    def __init__(self, distribution: FlowDistribution) -> None:
        self.distribution = distribution
        self.event_dim = len(distribution.event_shape)
        super().__init__()

    def check(self, value: Tensor) -> Tensor:
        with torch.no_grad():
            return torch.isfinite(self.distribution._log_prob(value))


class FlowDistribution(Distribution):
    """A ``NormalizingFlow`` (with its context, if any) as a torch ``Distribution``.

    Reparameterized (``has_rsample``) when the base samples are: a ``Multivariate`` of a
    distribution with ``rsample`` (normal, uniform, Laplace, ...). ``rsample`` and
    ``rsample_and_log_prob`` go through the flow's ``sample``/``sample_and_log_prob``
    with gradients; ``sample`` is ``rsample`` under ``torch.no_grad()``.

    ``support`` is ``real_vector`` for a base over all of ``R^width`` (normal,
    Laplace, a Gaussian mixture); for a bounded base (``Uniform``) it is the flow's
    image of the base's box, which is not a box: a constraint whose ``check(x)`` says
    whether ``log_prob(x)`` is finite (with torch's default ``validate_args``, ``log_prob``
    checks it, a second pass through the flow: pass ``validate_args=False`` to skip it).
    ``mean``, ``variance`` and ``entropy`` have no
    closed form and raise ``NotImplementedError``; ``kl_divergence`` is not registered.

    Args:
        model: The flow. A ``DequantizedFlow`` (discrete images) is refused.
        context: For a conditional flow, its context: one tensor (or a sequence of
            tensors, one per context argument of the flow) of shape ``batch_shape +
            (c,)``; ``(c,)`` gives one distribution, ``(B, c)`` a batch of ``B``.
        event_shape: The shape of one value, ``(width,)`` by default; for a flow on flat
            images, the image shape, e.g. ``(1, 8, 8)`` (its product must be ``width``).
        validate_args: As for any torch distribution: check that values have the event
            shape and lie in the support.

    Raises:
        TypeError: If ``model`` is not a ``NormalizingFlow`` or is a ``DequantizedFlow``.
        ValueError: If the context tensors disagree on their batch shape, or
            ``event_shape`` does not hold ``width`` numbers.

    Example:
        >>> import torch
        >>> from flowforge import realnvp
        >>> _ = torch.manual_seed(0)
        >>> model = realnvp(2, couplings=2, hidden=8, context_width=3)
        >>> d = model.distribution(torch.randn(4, 3))  # a batch of 4 contexts
        >>> d.batch_shape, d.event_shape
        (torch.Size([4]), torch.Size([2]))
        >>> x = d.rsample((5, 6))
        >>> x.shape, d.log_prob(x).shape
        (torch.Size([5, 6, 4, 2]), torch.Size([5, 6, 4]))
        >>> x.requires_grad
        True
    """

    arg_constraints: dict[str, constraints.Constraint] = {}

    def __init__(
        self,
        model: NormalizingFlow,
        context: Context = None,
        *,
        event_shape: Sequence[int] | None = None,
        validate_args: bool | None = None,
    ) -> None:
        _check_model(model)
        self.model = model
        self.context = _contexts(context)
        batch_shape = self.context[0].shape[:-1] if self.context else torch.Size()
        self._event = _event_shape(model, event_shape)
        self.has_rsample = _reparameterized(model)
        super().__init__(batch_shape, self._event, validate_args=validate_args)

    @property
    def width(self) -> int:
        """The number of numbers in one value: the flow's width."""
        return math.prod(self._event)

    @property
    def support(self) -> constraints.Constraint:
        base = self.model.base_distribution
        if isinstance(base, Multivariate) and base._bounded:
            return _ImageOfBaseSupport(self)
        return constraints.independent(constraints.real, len(self._event))

    @property
    def mean(self) -> Tensor:
        raise NotImplementedError(
            "a flow has no closed-form mean: estimate it from samples, d.sample((n,)).mean(0)"
        )

    @property
    def variance(self) -> Tensor:
        raise NotImplementedError(
            "a flow has no closed-form variance: estimate it from samples, d.sample((n,)).var(0)"
        )

    def expand(self, batch_shape: Sequence[int], _instance: object = None) -> FlowDistribution:
        """The same flow with its contexts broadcast to ``batch_shape`` (without
        context: ``prod(batch_shape)`` independent copies of the one distribution)."""
        batch_shape = torch.Size(batch_shape)
        if not self.context:
            new = FlowDistribution(self.model, event_shape=self._event)
            Distribution.__init__(new, batch_shape, self._event, validate_args=False)
            new._validate_args = self._validate_args
            return new
        context = tuple(c.expand(*batch_shape, c.shape[-1]) for c in self.context)
        return FlowDistribution(
            self.model, context, event_shape=self._event, validate_args=self._validate_args
        )

    def rsample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """Reparameterized samples, shape ``sample_shape + batch_shape + event_shape``."""
        return self._draw(sample_shape, with_log_prob=False)[0]

    def rsample_and_log_prob(
        self, sample_shape: Sequence[int] = torch.Size()
    ) -> tuple[Tensor, Tensor]:
        """Reparameterized samples and their log-densities, in one pass through the flow
        (``NormalizingFlow.sample_and_log_prob``): shapes ``sample_shape + batch_shape +
        event_shape`` and ``sample_shape + batch_shape``."""
        x, log_prob = self._draw(sample_shape, with_log_prob=True)
        return x, log_prob

    def sample_and_log_prob(
        self, sample_shape: Sequence[int] = torch.Size()
    ) -> tuple[Tensor, Tensor]:
        """``rsample_and_log_prob`` without gradients."""
        with torch.no_grad():
            return self._draw(sample_shape, with_log_prob=True, check=False)

    def sample(self, sample_shape: Sequence[int] = torch.Size()) -> Tensor:
        """Samples without gradients, shape ``sample_shape + batch_shape + event_shape``."""
        with torch.no_grad():
            return self._draw(sample_shape, with_log_prob=False, check=False)[0]

    def _draw(
        self, sample_shape: Sequence[int], with_log_prob: bool, check: bool = True
    ) -> tuple[Tensor, Tensor | None]:
        if check and not self.has_rsample:
            raise NotImplementedError(
                f"the base {type(self.model.base_distribution).__name__} does not sample "
                "by reparameterization: use sample() (no gradients) instead of rsample()"
            )
        sample_shape = torch.Size(sample_shape)
        n = math.prod(sample_shape)
        if not self.context:  # copies of one distribution: the batch is more samples
            n *= math.prod(self.batch_shape)
        rows = tuple(c.reshape(-1, c.shape[-1]) for c in self.context)
        if with_log_prob:
            x, log_prob = self.model.sample_and_log_prob(n, *rows)
        else:
            x, log_prob = self.model.sample(n, *rows), None
        if rows:  # (rows, n, width) -> (n, rows, width): samples first, then the batch
            x = x.transpose(0, 1)
            log_prob = None if log_prob is None else log_prob.transpose(0, 1)
        shape = sample_shape + self.batch_shape
        x = x.reshape(shape + self._event)
        return x, None if log_prob is None else log_prob.reshape(shape)

    def log_prob(self, value: Tensor) -> Tensor:
        """Log-density in nats of ``value``, shape ``sample_shape + batch_shape +
        event_shape`` or any shape that broadcasts with ``batch_shape + event_shape``;
        returns ``broadcast(value.shape[:-len(event)], batch_shape)``."""
        self._check_width(value)
        if self._validate_args and value.numel():  # torch's check fails on no values
            self._validate_sample(value)
        return self._log_prob(value)

    def _check_width(self, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(f"expected a tensor of values, got {type(value).__name__}")
        k = len(self._event)
        if tuple(value.shape[value.dim() - k :]) != tuple(self._event) or value.dim() < k:
            raise ValueError(
                f"expected values whose last dimensions are the event shape "
                f"{tuple(self._event)} (width {self.width}), got shape {tuple(value.shape)}"
            )

    def _log_prob(self, value: Tensor) -> Tensor:
        k = len(self._event)
        shape = torch.broadcast_shapes(value.shape[: value.dim() - k], self.batch_shape)
        x = value.expand(shape + self._event).reshape(-1, self.width)
        rows = tuple(c.expand(*shape, c.shape[-1]).reshape(-1, c.shape[-1]) for c in self.context)
        return self.model.log_prob(x, *rows).reshape(shape)

    def __repr__(self) -> str:
        context = f", context batch {tuple(self.batch_shape)}" if self.context else ""
        return (
            f"FlowDistribution({type(self.model).__name__}, event shape "
            f"{tuple(self._event)}{context})"
        )


def _check_model(model: object) -> None:
    if isinstance(model, DequantizedFlow):
        raise TypeError(
            "a DequantizedFlow models discrete images (its samples are integers and its "
            "log_prob a dequantized lower bound), not a density: it is no FlowDistribution"
        )
    if not isinstance(model, NormalizingFlow):
        raise TypeError(f"FlowDistribution takes a NormalizingFlow, got {type(model).__name__}")


def _contexts(context: Context) -> tuple[Tensor, ...]:
    """The context tensors as a tuple, checked to share their batch shape."""
    context = as_context(context)
    if any(not isinstance(c, Tensor) or c.dim() < 1 for c in context):
        raise ValueError("each context must be a tensor of shape batch_shape + (c,)")
    batches = {tuple(c.shape[:-1]) for c in context}
    if len(batches) > 1:
        raise ValueError(f"the context tensors disagree on their batch shape: {sorted(batches)}")
    return context


def _event_shape(model: NormalizingFlow, event_shape: Sequence[int] | None) -> torch.Size:
    width = model.width
    if event_shape is None:
        if width is None:
            raise ValueError("the flow's base does not tell its width: pass event_shape=")
        return torch.Size([width])
    event = torch.Size(int(n) for n in event_shape)
    if width is not None and math.prod(event) != width:
        raise ValueError(
            f"event_shape {tuple(event)} holds {math.prod(event)} numbers, but the flow "
            f"has width {width}"
        )
    return event


def _reparameterized(model: NormalizingFlow) -> bool:
    """Whether the base's samples carry gradients to every parameter (a mixture's
    component choice does not)."""
    base = model.base_distribution
    return isinstance(base, Multivariate) and base.dist.has_rsample
