"""``NormalizingFlow``: a base distribution pushed through invertible layers."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import Distribution

import flowforge.columns as columns
import flowforge.evaluate as evaluate
from flowforge.distributions import Multivariate
from flowforge.errors import InputError
from flowforge.gradients import HandwrittenLayer, has_hooks, owns_handwritten
from flowforge.layers.base import FlowLayer, SequentialFlow
from flowforge.layers.normalization import ActNorm


class NormalizingFlow(torch.nn.Module):
    """A distribution defined by ``x = flow.forward(z)`` with ``z ~ base_distribution``.

    ``log_prob(x) = base.log_prob(z) + log|det ∂z/∂x|`` with ``z, · = flow.inverse(x)``,
    in nats, one value per row of ``x`` (the change of variables of Rezende and
    Mohamed, Variational inference with normalizing flows, ICML 2015). ``forward(x)``
    returns the same log-likelihood, so training can go through ``model(x)`` (as
    DistributedDataParallel requires).

    Conditional flows take context tensors (one row per sample) after the data:
    ``log_prob(x, c)``; ``sample(n, c)`` draws ``n`` samples for each row of ``c``.

    Args:
        base_distribution: A module with ``sample(n)`` and ``log_prob(z)`` such as
            ``Multivariate``; a torch distribution with event shape ``(width,)`` (e.g.
            ``MultivariateNormal``) is wrapped in one.
        *layers: The invertible layers (``FlowLayer``), latent side first; they are
            kept as ``self.flow``, a ``SequentialFlow``.

    Raises:
        TypeError: If the base distribution is not over vectors or lacks ``sample``
            or ``log_prob``.

    Example:
        The course notebook's RealNVP on two dimensions:

        >>> import torch
        >>> from flowforge import AffineCoupling, Merge, Multivariate, NormalizingFlow
        >>> from flowforge import Split, Swap, block
        >>> _ = torch.manual_seed(0)
        >>> model = NormalizingFlow(
        ...     Multivariate(2),
        ...     Split(), AffineCoupling(block(1, 1, 16)), Swap(),
        ...     AffineCoupling(block(1, 1, 16)), Merge(),
        ... )
        >>> model.sample(5).shape
        torch.Size([5, 2])
        >>> model.log_prob(torch.zeros(3, 2)).shape
        torch.Size([3])
    """

    def __init__(self, base_distribution: torch.nn.Module | Distribution, *layers: FlowLayer):
        super().__init__()
        if isinstance(base_distribution, Distribution):
            if len(base_distribution.event_shape) != 1:
                raise TypeError(
                    f"the base distribution must be over vectors; wrap a univariate "
                    f"{type(base_distribution).__name__} as Multivariate(width, dist)"
                )
            base_distribution = Multivariate(base_distribution.event_shape[0], base_distribution)
        for method in ("sample", "log_prob"):
            if not callable(getattr(base_distribution, method, None)):
                raise TypeError(
                    f"the base distribution needs a {method}() method, "
                    f"{type(base_distribution).__name__} has none"
                )
        self.base_distribution = base_distribution
        self.flow = SequentialFlow(*layers)

    @property
    def width(self) -> int | None:
        """The number of dimensions of a sample, when the base distribution tells it."""
        return getattr(self.base_distribution, "width", None)

    def _check_points(self, x: Tensor) -> None:
        if not isinstance(x, Tensor):
            raise TypeError(f"expected a tensor of points, got {type(x).__name__}")
        width = self.width
        if x.dim() != 2 or (width is not None and x.shape[1] != width):
            raise ValueError(
                f"expected points of shape (batch, {width if width is not None else 'width'}), "
                f"got {tuple(x.shape)}; this model has width {width}"
            )
        if not x.is_floating_point():
            weights = next((p for p in self.parameters() if p.is_floating_point()), None)
            dtype = torch.get_default_dtype() if weights is None else weights.dtype
            raise InputError(
                f"the points are {x.dtype} but the model's weights are {dtype}: convert the "
                f"input (x.to({dtype}))"
            )

    def log_prob(self, x: Tensor, *context: Tensor) -> Tensor:
        """Log-density of each row of ``x`` in nats.

        When no autograd graph is being recorded (under ``torch.no_grad()`` or
        ``torch.inference_mode()``, or when neither the weights nor the inputs require a
        gradient), the rows go through the flow in chunks of
        ``flowforge.evaluate.DEFAULT_CHUNK`` into one preallocated result: the same
        values, faster for many points, and memory bounded by one chunk whatever their
        number. When a gradient is needed, one pass, whose graph autograd keeps.

        Args:
            x: Points, shape ``(batch, width)``, in the model's dtype and on its device.
            *context: For a conditional flow, the context tensors, one row per point.

        Returns:
            The log-densities, shape ``(batch,)``.

        Raises:
            ValueError: If ``x`` has the wrong shape, or its dtype or device differs
                from the model's.
            InputError: If ``x`` holds integers.

        Example:
            >>> import torch
            >>> from flowforge import Multivariate, NormalizingFlow, Scale
            >>> model = NormalizingFlow(Multivariate(2), Scale(2.0))
            >>> model.log_prob(torch.zeros(4, 2)).round(decimals=4)
            tensor([-3.2242, -3.2242, -3.2242, -3.2242])
        """
        self._check_points(x)
        if self._chunked(x, context):
            plan = columns.column_plan(self) if evaluate.COLUMN_PLANS else None
            try:
                if plan is not None and plan.accepts(context):
                    return plan.log_prob(x, context, x.new_empty(len(x)))
                if self._eval_mode() and len(x) > evaluate.DEFAULT_CHUNK:
                    return self._log_prob_in_chunks(x, context)
            except (RuntimeError, ValueError, TypeError, IndexError):
                pass  # the layers in one pass: the same result, or their own error
        return self._log_prob(x, context)

    def _log_prob_in_chunks(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        """``log_prob`` through the layers, ``DEFAULT_CHUNK`` rows at a time."""
        out = x.new_empty(len(x))
        for start in range(0, len(x), evaluate.DEFAULT_CHUNK):
            rows = slice(start, start + evaluate.DEFAULT_CHUNK)
            out[rows] = self._log_prob(x[rows], tuple(c[rows] for c in context))
        return out

    def _log_prob(self, x: Tensor, context: tuple[Tensor, ...]) -> Tensor:
        """``log_prob`` in one pass through the layers."""
        try:
            z, log_det = self.flow.inverse(x, *context)
        except RuntimeError as error:
            mismatch = self._mismatch(x, *context)
            if mismatch is None:
                raise
            raise ValueError(mismatch) from error
        return self.base_distribution.log_prob(z) + log_det

    def _chunked(self, x: Tensor, context: tuple[Tensor, ...]) -> bool:
        """Whether a call may go in chunks (``flowforge.evaluate``): no autograd graph is
        being recorded, or nothing it would record needs a gradient; there are at least
        ``CHUNKED_FROM_ROWS`` points, in the model's dtype and on its device, and one
        context row per point."""
        if len(x) < evaluate.CHUNKED_FROM_ROWS or not evaluate.CHUNKED_CALLS:
            return False
        if has_hooks(self) or torch.compiler.is_compiling():
            return False
        if any(isinstance(m, ActNorm) and m.pending for m in self.modules()):
            return False  # it takes its statistics from this call's points, all of them
        tensors = (x, *context)
        if torch.is_grad_enabled() and (
            any(isinstance(t, Tensor) and t.requires_grad for t in tensors)
            or any(p.requires_grad for p in self.parameters())
        ):
            return False
        if not all(isinstance(c, Tensor) and c.dim() >= 1 and len(c) == len(x) for c in context):
            return False
        return self._mismatch(x, *(c for c in context if c.is_floating_point())) is None

    def _eval_mode(self) -> bool:
        """Whether every module is in eval mode (layers with batch statistics see the
        whole batch in training mode, so only then are they given chunks)."""
        return not any(m.training for m in self.modules())

    def _mismatch(self, *tensors: Tensor) -> str | None:
        """What is wrong when input tensors and the model's weights differ in dtype or
        device (torch's own error comes from deep inside a layer), else ``None``."""
        weights = next(self.parameters(), None)
        if weights is None:
            return None
        for name, t in zip(("points", *("context",) * (len(tensors) - 1)), tensors):
            if isinstance(t, Tensor) and t.is_floating_point() and t.dtype != weights.dtype:
                return (
                    f"the {name} are {t.dtype} but the model's weights are {weights.dtype}: "
                    f"convert the input (x.to({weights.dtype})) or the model "
                    f"(model.to({t.dtype}))"
                )
            if isinstance(t, Tensor) and t.device != weights.device:
                return (
                    f"the {name} are on {t.device} but the model is on {weights.device}: "
                    f"move one to the other (x.to({str(weights.device)!r}) or model.to(...))"
                )
        return None

    def forward(self, x: Tensor, *context: Tensor) -> Tensor:
        """The log-likelihood of each row of ``x``: the same as ``log_prob``."""
        return self.log_prob(x, *context)

    def handwritten(self) -> tuple[HandwrittenLayer, Any] | None:
        """The hand-written forms of the layers and of the base distribution, when both
        have one (``flowforge.gradients``; ``flowforge.training.handwritten`` composes them
        into the mean NLL and its gradient); else ``None``."""
        make_base = getattr(self.base_distribution, "handwritten", None)
        base = make_base() if callable(make_base) else None
        if has_hooks(self) or not owns_handwritten(self, "log_prob", "forward") or base is None:
            return None
        layers = self.flow.handwritten()
        return None if layers is None else (layers, base)

    def sample(self, n: int = 1, *context: Tensor) -> Tensor:
        """Draw ``n`` samples from the flow.

        The base draws are made at once, then pushed through the flow in chunks when no
        gradient is needed (as ``log_prob``), so a seed gives the same samples whatever
        the chunking (to rounding) and memory beyond the result is one chunk's.

        Args:
            n: The number of samples (per context row, for a conditional flow).
            *context: For a conditional flow, context tensors of ``m`` rows; a single
                row of shape ``(c,)`` gives unbatched samples.

        Returns:
            The samples, shape ``(n, width)``, or ``(m, n, width)`` for ``m`` context
            rows.

        Example:
            >>> import torch
            >>> from flowforge import Multivariate, NormalizingFlow, Translate
            >>> _ = torch.manual_seed(0)
            >>> model = NormalizingFlow(Multivariate(2), Translate([10.0, -10.0]))
            >>> x = model.sample(1000)
            >>> x.shape
            torch.Size([1000, 2])
            >>> x.mean(dim=0).round()
            tensor([ 10., -10.])
        """
        z, context, shape = self._draw(n, context)
        x, _ = self._transform(z, context, with_log_prob=False)
        return x.reshape(*shape, *x.shape[1:]).contiguous()

    def sample_and_log_prob(self, n: int = 1, *context: Tensor) -> tuple[Tensor, Tensor]:
        """Draw ``n`` samples and their log-densities, in one pass through the flow.

        Returns ``(x, log_prob)`` shaped ``(n, width)`` and ``(n,)``; with context of
        ``m`` rows, ``(m, n, width)`` and ``(m, n)``, the samples of row ``i`` drawn
        given ``context[i]``. A context of one row with no batch dimension (shape
        ``(c,)``) gives unbatched shapes.
        """
        z, context, shape = self._draw(n, context)
        x, lp = self._transform(z, context, with_log_prob=True)
        return x.reshape(*shape, *x.shape[1:]).contiguous(), lp.reshape(shape)

    def _transform(
        self, z: Tensor, context: tuple[Tensor, ...], with_log_prob: bool
    ) -> tuple[Tensor, Tensor | None]:
        """The base draws ``z`` through the flow, and their log-densities if asked: in
        chunks when no gradient is needed (``flowforge.evaluate``; the draws are made
        before, all at once, so a seed gives the same points whatever the chunking)."""
        if self._chunked(z, context):
            plan = columns.column_plan(self) if evaluate.COLUMN_PLANS else None
            if plan is not None and plan.accepts(context):
                lp = z.new_empty(len(z)) if with_log_prob else None
                return plan.transform(z, context, lp), lp
            if self._eval_mode() and len(z) > evaluate.DEFAULT_CHUNK:
                return self._transform_in_chunks(z, context, with_log_prob)
        base_lp = self.base_distribution.log_prob(z) if with_log_prob else None
        x, log_det = self.flow.forward(z, *context)
        return x, None if base_lp is None else base_lp - log_det

    def _transform_in_chunks(
        self, z: Tensor, context: tuple[Tensor, ...], with_log_prob: bool
    ) -> tuple[Tensor, Tensor | None]:
        """``_transform`` through the layers, ``DEFAULT_CHUNK`` rows at a time."""
        out, lp = None, z.new_empty(len(z)) if with_log_prob else None
        for start in range(0, len(z), evaluate.DEFAULT_CHUNK):
            rows = slice(start, start + evaluate.DEFAULT_CHUNK)
            x, log_det = self.flow.forward(z[rows], *(c[rows] for c in context))
            if lp is not None:
                lp[rows] = self.base_distribution.log_prob(z[rows]) - log_det
            if out is None:
                out = x.new_empty((len(z), *x.shape[1:]))
            out[rows] = x
        return out, lp

    def distribution(
        self, context: Tensor | tuple[Tensor, ...] | None = None, **options: Any
    ) -> Distribution:
        """This flow as a ``torch.distributions.Distribution`` (``FlowDistribution``).

        Args:
            context: For a conditional flow, a context of shape ``batch_shape + (c,)``
                (or a tuple of such tensors): ``(c,)`` gives one distribution, ``(B, c)``
                a batch of ``B``.
            **options: ``event_shape=`` (e.g. an image shape), ``validate_args=``.

        Returns:
            A ``FlowDistribution``: ``rsample(sample_shape)`` gives ``sample_shape +
            batch_shape + event_shape``; ``log_prob`` broadcasts over leading dimensions.

        Example:
            >>> import torch
            >>> from flowforge import Multivariate, NormalizingFlow, Translate
            >>> model = NormalizingFlow(Multivariate(2), Translate([1.0, -1.0]))
            >>> d = model.distribution()
            >>> d.rsample((2, 3)).shape, d.batch_shape, d.event_shape
            (torch.Size([2, 3, 2]), torch.Size([]), torch.Size([2]))
            >>> d.log_prob(torch.tensor([1.0, -1.0])).round(decimals=4)
            tensor(-1.8379)
        """
        from flowforge.distribution import FlowDistribution

        return FlowDistribution(self, context, **options)

    def _draw(
        self, n: int, context: tuple[Tensor, ...]
    ) -> tuple[Tensor, tuple[Tensor, ...], tuple[int, ...]]:
        """Base samples for ``n`` draws per context row, the repeated context, the shape."""
        if not context:
            return self.base_distribution.sample(n), context, (n,)
        unbatched = context[0].dim() == 1
        if unbatched:
            context = tuple(c.unsqueeze(0) for c in context)
        m = context[0].shape[0]
        if any(c.shape[0] != m for c in context):
            rows = [c.shape[0] for c in context]
            raise ValueError(f"all context tensors need the same number of rows, got {rows}")
        context = tuple(c.repeat_interleave(n, dim=0) for c in context)
        shape = (n,) if unbatched else (m, n)
        return self.base_distribution.sample(n * m), context, shape
