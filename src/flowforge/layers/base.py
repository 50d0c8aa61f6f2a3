"""The layer protocol every flowforge layer follows, and sequential composition."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from flowforge.gradients import Batch, HandwrittenLayer, has_hooks, owns_handwritten
from flowforge.gradients import Value as FeatureMajor
from flowforge.values import Value, describe, zero_log_det


class FlowLayer(torch.nn.Module):
    """An invertible transformation that also reports its log-determinant.

    Direction (as in the course notebook this library grew from):

    - ``forward(z, *context) -> (x, log|det ∂x/∂z|)`` maps latent to data, the
      sampling direction.
    - ``inverse(x, *context) -> (z, log|det ∂z/∂x|)`` maps data back to latent. At
      matching points its log-determinant is the negative of ``forward``'s.

    Values are a tensor or a flat tuple of tensors, batch-first, all with one batch
    size; only plumbing layers (``Split``, ``Merge``, ...) change how many tensors a
    value holds. The log-determinant is always a tensor of shape ``(batch,)`` with the
    dtype and device of the value, never a Python number.

    ``*context`` holds extra tensors (one row per sample) that conditional layers feed
    to their networks; every layer accepts them, and layers without a conditioner
    ignore them, so any layer composes with any other.

    Everything a layer owns is a parameter or a buffer, so ``.to(device)``,
    ``.double()``, ``state_dict()`` and DistributedDataParallel just work.

    Implementing a layer:

    - required: ``forward`` and ``inverse``, each returning ``(value, log_det)`` with
      ``log_det`` of shape ``(batch,)`` in the input's dtype and device, accepting (and,
      without a conditioner, ignoring) ``*context``;
    - state: every tensor the layer owns registered as a parameter or a buffer;
    - optional: ``volume_preserving = True`` when the log-determinant is always zero
      (``SequentialFlow`` then skips adding it); ``handwritten()`` returning the layer's
      inverse with a hand-written backward (``flowforge.gradients``), for the fast
      training path; ``extra_repr`` for the settings a reader needs;
    - checked: add a case to the contract registry (``tests/registry.py``), which runs
      ``check_flow`` (inverse, log-det shape and dtype, autograd Jacobian) over random
      shapes in float32 and float64.

    Example:
        A layer that doubles its input, checked against the contract:

        >>> import torch
        >>> from flowforge import FlowLayer, check_flow
        >>> class Double(FlowLayer):
        ...     def forward(self, z, *context):
        ...         return 2 * z, z.new_full((z.shape[0],), z.shape[1] * 0.6931471805599453)
        ...     def inverse(self, x, *context):
        ...         return x / 2, x.new_full((x.shape[0],), -x.shape[1] * 0.6931471805599453)
        >>> check_flow(Double(), torch.randn(4, 3))  # raises FlowCheckError if broken
        >>> Double()(torch.ones(1, 3))
        (tensor([[2., 2., 2.]]), tensor([2.0794]))
    """

    volume_preserving: bool = False

    def forward(self, z: Value, *context: Tensor) -> tuple[Value, Tensor]:
        """Map latent ``z`` to data; return ``(x, log|det ∂x/∂z|)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def inverse(self, x: Value, *context: Tensor) -> tuple[Value, Tensor]:
        """Map data back to latent; return ``(z, log|det ∂z/∂x|)``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement inverse()")

    def handwritten(self) -> HandwrittenLayer | None:
        """The layer's inverse with a hand-written backward, or ``None`` (the default: the
        layer trains through autograd). See ``flowforge.gradients``."""
        return None


def _accumulate(total: Tensor | None, log_det: Tensor, layer: FlowLayer) -> Tensor | None:
    """``total + log_det``, skipping volume-preserving layers and the add to nothing."""
    if layer.volume_preserving:
        return total
    return log_det if total is None else total + log_det


class SequentialFlow(FlowLayer):
    """Compose layers: ``forward`` applies them in order, ``inverse`` in reverse order.

    The log-determinants of the layers add up. Context is passed to every layer.
    Supports ``len``, iteration and indexing (a slice gives a new ``SequentialFlow``
    that shares the layers).

    Args:
        *layers: The layers, in the ``forward`` (latent to data) order.

    Raises:
        TypeError: If a layer has no ``inverse``.

    Example:
        >>> import torch
        >>> from flowforge import Scale, SequentialFlow, Translate
        >>> flow = SequentialFlow(Scale(2.0), Translate(1.0))
        >>> x, log_det = flow(torch.zeros(3, 2))
        >>> x
        tensor([[1., 1.],
                [1., 1.],
                [1., 1.]])
        >>> log_det.round(decimals=4)
        tensor([1.3863, 1.3863, 1.3863])
        >>> len(flow), type(flow[1]).__name__
        (2, 'Translate')
    """

    def __init__(self, *layers: FlowLayer) -> None:
        super().__init__()
        for i, layer in enumerate(layers):
            if not callable(getattr(layer, "inverse", None)):
                raise TypeError(
                    f"layer {i} ({type(layer).__name__}) has no inverse(); a flow needs "
                    "invertible layers (subclass flowforge.FlowLayer)"
                )
        self.layers = torch.nn.ModuleList(layers)

    def forward(self, z: Value, *context: Tensor) -> tuple[Value, Tensor]:
        log_det = None
        for layer in self.layers:
            z, ld = layer.forward(z, *context)
            log_det = _accumulate(log_det, ld, layer)
        return z, zero_log_det(z) if log_det is None else log_det

    def inverse(self, z: Value, *context: Tensor) -> tuple[Value, Tensor]:
        log_det = None
        for layer in list(self.layers)[::-1]:
            z, ld = layer.inverse(z, *context)
            log_det = _accumulate(log_det, ld, layer)
        return z, zero_log_det(z) if log_det is None else log_det

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[FlowLayer]:
        return iter(self.layers)

    def __getitem__(self, index: int | slice) -> FlowLayer:
        if isinstance(index, slice):
            return SequentialFlow(*list(self.layers)[index])
        return self.layers[index]

    def handwritten(self) -> SequenceGradients | None:
        """The hand-written form when every layer has one (else ``None``)."""
        if has_hooks(self) or not owns_handwritten(self, "inverse"):
            return None
        pieces = [layer.handwritten() for layer in self.layers]
        if any(piece is None for piece in pieces):
            return None
        return SequenceGradients(pieces)


class SequenceGradients:
    """The hand-written inverse of a ``SequentialFlow``: its layers' in reverse order, then
    their backwards in forward order."""

    def __init__(self, pieces: list[HandwrittenLayer]) -> None:
        self.pieces = pieces

    def refresh(self) -> None:
        for piece in self.pieces:
            piece.refresh()

    def inverse(self, z: FeatureMajor, batch: Batch) -> tuple[FeatureMajor, Tensor | None, list]:
        saved, log_dets = [], []
        for piece in reversed(self.pieces):
            z, log_det, kept = piece.inverse(z, batch)
            saved.append(kept)
            if log_det is not None:
                log_dets.append(log_det)
        if not log_dets:
            return z, None, saved
        return z, log_dets[0] if len(log_dets) == 1 else torch.stack(log_dets).sum(), saved

    def backward(self, saved: list, g: FeatureMajor, batch: Batch) -> FeatureMajor:
        for piece, kept in zip(self.pieces, reversed(saved)):
            g = piece.backward(kept, g, batch)
        return g


def require_matrix(layer: FlowLayer, z: Value, width: int | None = None) -> Tensor:
    """``z`` itself if it is a ``(batch, width)`` tensor, else a ``TypeError``/``ValueError``."""
    name = type(layer).__name__
    if not isinstance(z, Tensor) or z.dim() != 2:
        raise TypeError(
            f"{name} acts on a (batch, width) tensor, got {describe(z)}; "
            "place it before Split or after Merge"
        )
    if width is not None and z.shape[1] != width:
        raise ValueError(f"{name} was built for width {width}, got width {z.shape[1]}")
    return z
