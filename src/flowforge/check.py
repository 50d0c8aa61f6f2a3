"""Verify a layer against the protocol: inverse, log-det shape, and log-det vs autograd."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.errors import FlowCheckError
from flowforge.values import Value, describe, first_tensor, flatten_value, num_samples


def _tolerances(dtype: torch.dtype) -> tuple[float, float]:
    """Default ``(atol, rtol)``: the notebook's ``atol=1e-6`` loosened for float32 sums."""
    return (1e-9, 1e-7) if dtype == torch.float64 else (1e-5, 1e-4)


def isclose(a, b, atol: float = 1e-6, rtol: float = 1e-5) -> bool:
    """True if two tensors, numbers or tuples of them are equal or close to equal.

    The course notebook's helper: ``torch.isclose`` everywhere, for tensors of one
    shape, and element by element for tuples of the same length.

    Args:
        a: A tensor, a number or a tuple of them.
        b: The same kind of value as ``a``.
        atol: The absolute tolerance.
        rtol: The relative tolerance.

    Returns:
        ``False`` when the shapes or tuple lengths differ, else whether every element
        is close.

    Example:
        >>> import torch
        >>> from flowforge import isclose
        >>> isclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.0 + 1e-7]))
        True
        >>> isclose((torch.zeros(2), 1.0), (torch.zeros(2), 1.1))
        False
        >>> isclose(torch.zeros(2), torch.zeros(3))
        False
    """
    if isinstance(a, tuple) or isinstance(b, tuple):
        return (
            isinstance(a, tuple)
            and isinstance(b, tuple)
            and len(a) == len(b)
            and all(isclose(c, d, atol, rtol) for c, d in zip(a, b))
        )
    a, b = torch.as_tensor(a), torch.as_tensor(b)
    if a.shape != b.shape:
        return False
    return bool(torch.isclose(a, b.to(a), atol=atol, rtol=rtol).all())


def _unflatten(flat: Tensor, template: Value) -> Value:
    """Inverse of ``flatten_value``: reshape ``(batch, features)`` like ``template``."""
    if not isinstance(template, tuple):
        return flat.reshape(template.shape)
    parts, start = [], 0
    for t in template:
        size = math.prod(t.shape[1:])
        parts.append(flat[:, start : start + size].reshape(t.shape))
        start += size
    return tuple(parts)


def jacobian(layer: torch.nn.Module, a: Value, *context: Tensor) -> Tensor:
    """Per-sample Jacobians of ``layer.forward`` by autograd: ``(batch, features, features)``.

    Values are flattened per sample (tuples concatenated in order), so the Jacobian of
    sample ``i`` is square whenever the layer keeps the number of dimensions. A batch of
    zero rows has no Jacobians: ``(0, features, features)``.
    """
    flat = flatten_value(a).detach()
    if len(flat) == 0:
        return flat.new_zeros(0, flat.shape[1], flat.shape[1])

    def f(x: Tensor) -> Tensor:
        return flatten_value(layer.forward(_unflatten(x, a), *context)[0])

    full = torch.autograd.functional.jacobian(f, flat)  # (B, F_out, B, F_in)
    return full.diagonal(dim1=0, dim2=2).permute(2, 0, 1)


def log_det_jacobian(layer: torch.nn.Module, a: Value, *context: Tensor) -> Tensor:
    """``log|det ∂forward/∂a|`` per sample, by automatic differentiation.

    The reference a layer's own log-determinant is checked against (``check_flow``);
    it builds the full Jacobian, so keep the batch and the width small.

    Args:
        layer: A flow layer.
        a: A tensor or a tuple of tensors, batch first.
        *context: Context tensors, passed to ``layer.forward``.

    Returns:
        The log-determinants, shape ``(batch,)``.

    Raises:
        FlowCheckError: If the layer changes the number of dimensions.

    Example:
        >>> import torch
        >>> from flowforge import Scale, log_det_jacobian
        >>> log_det_jacobian(Scale([2.0, 3.0]), torch.randn(2, 2)).round(decimals=4)
        tensor([1.7918, 1.7918])
    """
    j = jacobian(layer, a, *context)
    if j.shape[1] != j.shape[2]:
        raise FlowCheckError(
            f"{type(layer).__name__} maps {j.shape[2]} dimensions to {j.shape[1]}: "
            "a flow layer must keep the number of dimensions"
        )
    return torch.linalg.slogdet(j).logabsdet


def _gap(a: Value, b: Value) -> str:
    """``", largest error X"`` when ``a`` and ``b`` have the same shapes, else ``""``."""
    shapes = [t.shape for t in (a if isinstance(a, tuple) else (a,))]
    if shapes != [t.shape for t in (b if isinstance(b, tuple) else (b,))]:
        return ""
    if any(math.prod(s) == 0 for s in shapes):  # nothing to measure
        return ""
    gap = (flatten_value(a) - flatten_value(b)).detach().abs().max()
    return f", largest error {float(gap):.3g}"


def _check_log_det(name: str, log_det: object, z: Value) -> Tensor:
    t, n = first_tensor(z), num_samples(z)
    if not (isinstance(log_det, Tensor) and log_det.shape == torch.Size([n])):
        seen = describe(log_det) if isinstance(log_det, Tensor) else repr(log_det)
        raise FlowCheckError(
            f"{name} log-determinant should be a tensor with one element per sample, "
            f"shape ({n},); got {seen} (hint: num_samples gives the number of samples)"
        )
    if log_det.dtype != t.dtype or log_det.device != t.device:
        raise FlowCheckError(
            f"{name} log-determinant is {log_det.dtype} on {log_det.device}, but the input "
            f"is {t.dtype} on {t.device}: make it with z.new_zeros(batch) or from the input"
        )
    return log_det


def check_flow(
    layer: torch.nn.Module,
    z: Value,
    *context: Tensor,
    atol: float | None = None,
    rtol: float | None = None,
) -> None:
    """Verify that ``layer`` follows the flow contract at the points ``z``.

    Checks that ``inverse`` undoes ``forward``; that both log-determinants are tensors
    of shape ``(batch,)`` with the input's dtype and device; that they cancel; and that
    ``forward``'s equals the log|det| of the autograd Jacobian (``log_det_jacobian``).

    Args:
        layer: The layer to check (any ``FlowLayer``, or a module with ``forward`` and
            ``inverse`` in the same protocol).
        z: The points: a tensor or a tuple of tensors, batch first.
        *context: Context tensors, passed to both directions.
        atol: The absolute tolerance (``None``: by dtype, float64 tight, float32 loose).
        rtol: The relative tolerance (``None``: by dtype).

    Raises:
        FlowCheckError: An ``AssertionError`` naming the broken property and the size
            of the error.

    Example:
        >>> import torch
        >>> from flowforge import Scale, check_flow
        >>> from flowforge.errors import FlowCheckError
        >>> check_flow(Scale([2.0, 0.5]), torch.randn(8, 2))  # passes: returns None
        >>> class Wrong(Scale):
        ...     def inverse(self, x, *context):
        ...         return x, x.new_zeros(len(x))  # forgets to divide
        >>> try:
        ...     check_flow(Wrong(2.0), torch.randn(8, 2))
        ... except FlowCheckError as error:
        ...     print(error)
        Wrong.inverse should undo forward: ...
    """
    default_atol, default_rtol = _tolerances(first_tensor(z).dtype)
    atol = default_atol if atol is None else atol
    rtol = default_rtol if rtol is None else rtol
    name = type(layer).__name__

    z2, ld_forward = layer.forward(z, *context)
    z3, ld_inverse = layer.inverse(z2, *context)
    if num_samples(z2) != num_samples(z):
        raise FlowCheckError(
            f"{name}'s output should have the same number of samples as the input: "
            f"{num_samples(z2)} != {num_samples(z)}"
        )
    ld_forward = _check_log_det(f"{name}.forward's", ld_forward, z)
    ld_inverse = _check_log_det(f"{name}.inverse's", ld_inverse, z)
    if isinstance(z3, tuple) != isinstance(z, tuple) or not isclose(z3, z, atol, rtol):
        raise FlowCheckError(
            f"{name}.inverse should undo forward: got {describe(z3)} back for {describe(z)}"
            + _gap(z3, z)
        )
    if not isclose(ld_forward, -ld_inverse, atol, rtol):
        raise FlowCheckError(
            f"{name}: the inverse's log-determinant should be the negative of forward's; "
            f"largest gap {float((ld_forward + ld_inverse).abs().max()):.3g}"
        )
    reference = log_det_jacobian(layer, z, *context)
    if not isclose(ld_forward, reference, atol, rtol):
        raise FlowCheckError(
            f"{name}.forward's log-determinant should match log|det| of the autograd "
            f"Jacobian; largest gap {float((ld_forward - reference).abs().max()):.3g}"
        )


def test_flow_layer(layer: torch.nn.Module, z: Value, *args: Tensor) -> None:
    """The course notebook's name for ``check_flow``, with its default tolerances.

    Args:
        layer: The layer to check.
        z: The points: a tensor or a tuple of tensors, batch first.
        *args: Context tensors, passed to both directions.

    Raises:
        FlowCheckError: If the layer breaks the contract (see ``check_flow``).

    Example:
        >>> import torch
        >>> from flowforge import AffineCoupling, block, test_flow_layer
        >>> test_flow_layer(AffineCoupling(block(1, 1, 8)), (torch.randn(4, 1), torch.randn(4, 1)))
    """
    check_flow(layer, z, *args)


test_flow_layer.__test__ = False  # a library function, not a pytest test
