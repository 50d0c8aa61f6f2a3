"""Adam over one flat buffer: ``FlatParameters`` (a scope) and ``FlatAdam`` (its optimizer).

A small flow has a couple of dozen small parameter tensors (the notebook's model: 24
tensors, 1,352 numbers), and ``torch.optim.Adam`` spends most of a step on per-tensor
bookkeeping, not arithmetic. Inside a ``FlatParameters`` block every parameter's data
and gradient are views of two flat buffers: the modules keep their own ``Parameter``
objects, autograd accumulates into the gradient buffer, and ``FlatAdam`` updates every
parameter in one operation. The flattening is explicit and lasts only for the block:
nothing about the model changes when an optimizer is made, and after the block every
parameter has its own storage again.

``adam(params, lr)`` picks for a block: ``FlatAdam`` over flattened parameters when they
share a device and a dtype, else torch's Adam (fused where torch supports it).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor
from torch.autograd import profiler as _profiler
from torch.optim import optimizer as _optimizer

_GRAD = operator.attrgetter("grad")


class FlatParameters:
    """The trainable ``params`` as views of one flat buffer, for the duration of a block.

    ::

        with FlatParameters(model.parameters()) as flat:
            optimizer = FlatAdam(flat, lr=1e-2)
            ...  # train as usual: loss.backward(); optimizer.step()
        # every parameter has its own storage again, holding its trained values

    Inside the block ``flat.tensor`` holds every parameter (parameters that do not
    require gradients are left alone) and ``flat.tensor.grad`` every gradient; the
    parameters share one device and one floating dtype. ``zero_grad`` zeroes the
    gradient buffer in place, so a parameter that gets no gradient in a step sees a
    zero gradient (as ``zero_grad(set_to_none=False)`` does). A gradient replaced
    meanwhile (``model.zero_grad()`` sets them to ``None``) is put back into the buffer
    by ``gather``; a parameter given new storage (``model.to(...)`` or ``.double()``
    inside the block) is refused there with a message, since its updates would be lost.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter]) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("FlatParameters got no parameters that require gradients")
        kinds = {(p.device, p.dtype) for p in self.params}
        if len(kinds) != 1 or not self.params[0].is_floating_point():
            raise ValueError(
                "FlatParameters needs floating parameters on one device with one dtype, got "
                f"{sorted((str(d), str(t)) for d, t in kinds)}; use torch.optim.Adam for "
                "mixed parameters"
            )
        self.tensor: torch.nn.Parameter | None = None
        self._data: list[int] = []
        self._grads: list[Tensor] = []

    def __enter__(self) -> FlatParameters:
        self.flatten()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def flatten(self) -> None:
        """Move every parameter's data and gradient into the two flat buffers."""
        flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in self.params]))
        flat.grad = torch.zeros_like(flat)
        offset = 0
        with torch.no_grad():
            for p in self.params:
                n = p.numel()
                p.data = flat.data[offset : offset + n].view_as(p)
                p.grad = flat.grad[offset : offset + n].view_as(p)
                offset += n
        self.tensor = flat
        self._data = [p.data_ptr() for p in self.params]
        self._grads = [p.grad for p in self.params]

    def release(self) -> None:
        """Give every parameter (and gradient) its own storage again, with its values."""
        if self.tensor is None:
            return
        self.gather(strict=False)
        with torch.no_grad():
            for p in self.params:
                p.data = p.data.clone()
                if p.grad is not None:
                    p.grad = p.grad.clone()
        self.tensor, self._data, self._grads = None, [], []

    def zero_grad(self) -> None:
        """Zero every gradient at once, in place (the gradients stay views of the buffer)."""
        (self.tensor if self.tensor is not None else self._require()).grad.zero_()

    def gather(self, strict: bool = True) -> None:
        """Put replaced gradients back into the buffer; refuse parameters given new storage."""
        if self.tensor is None:
            self._require()
        if list(map(Tensor.data_ptr, self.params)) == self._data and not any(
            map(operator.is_not, map(_GRAD, self.params), self._grads)
        ):
            return  # the usual case, checked without a Python loop
        for i, p in enumerate(self.params):
            if p.data_ptr() != self._data[i]:
                if not strict:
                    continue
                raise RuntimeError(
                    f"parameter {i} (shape {tuple(p.shape)}) no longer lives in the flat "
                    "buffer: the model was moved or converted (.to(), .double()) inside "
                    "the FlatParameters block; move the model before the block"
                )
            view = self._grads[i]
            if p.grad is not view:
                if p.grad is None:
                    view.zero_()
                else:
                    view.copy_(p.grad)
                p.grad = view

    def _require(self) -> torch.nn.Parameter:
        if self.tensor is None:
            raise RuntimeError(
                "the parameters are not flattened: use FlatParameters(...) as a context "
                "manager (with FlatParameters(params) as flat: ...)"
            )
        return self.tensor


def _watched() -> bool:
    """Whether a global optimizer hook or the autograd profiler wants to see each step."""
    return bool(
        getattr(_optimizer, "_global_optimizer_pre_hooks", None)
        or getattr(_optimizer, "_global_optimizer_post_hooks", None)
        or getattr(_profiler, "_is_profiler_enabled", True)
    )


def _has_fused_kernel(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether torch's one-kernel Adam update runs here (CPU support came in torch 2.4)."""
    if not hasattr(torch, "_fused_adamw_") or dtype not in (torch.float32, torch.float64):
        return False
    if device.type == "cuda":
        return True
    major, minor = (int(part) for part in torch.__version__.split(".")[:2])
    return device.type == "cpu" and (major, minor) >= (2, 4)


class FlatAdam(torch.optim.Optimizer):
    """Adam (decoupled weight decay as in AdamW when ``weight_decay > 0``) on one buffer.

    The same update as ``torch.optim.Adam`` (``torch.optim.AdamW`` with weight decay) of
    the parameters of a ``FlatParameters`` block, done on its flat buffer in one
    operation (torch's fused kernel where it runs). ``zero_grad`` zeroes the gradient
    buffer in place (``set_to_none`` is ignored: a gradient stays a view of the buffer).
    ``state_dict()`` holds one flat ``exp_avg``/``exp_avg_sq``.
    """

    def __init__(
        self,
        params: FlatParameters,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        if not isinstance(params, FlatParameters):
            raise TypeError(
                "FlatAdam steps the parameters of a FlatParameters block: write "
                "`with FlatParameters(model.parameters()) as flat: optimizer = FlatAdam(flat)` "
                "(or use flowforge.training.adam, or torch.optim.Adam)"
            )
        if not (lr > 0 and eps >= 0 and weight_decay >= 0 and all(0 <= b < 1 for b in betas)):
            raise ValueError(
                f"need lr > 0, eps >= 0, weight_decay >= 0 and betas in [0, 1); got "
                f"lr={lr}, eps={eps}, weight_decay={weight_decay}, betas={betas}"
            )
        self.flat = params
        flat = params._require()
        self._fused = _has_fused_kernel(flat.device, flat.dtype)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__([flat], defaults)

    @property
    def flat_parameter(self) -> torch.nn.Parameter:
        """The buffer that holds every parameter (its ``.grad`` holds every gradient)."""
        return self.param_groups[0]["params"][0]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero every gradient at once, in place (gradients stay views of one buffer)."""
        self.flat.zero_grad()

    def step(self, closure=None):
        """One Adam update of every parameter; ``closure`` re-evaluates the loss if given.

        Step hooks and the profiler's label work as for any optimizer; without them the
        step skips torch's per-call wrapper (about 6 µs, 2% of a step of the notebook's
        model).
        """
        if self._optimizer_step_pre_hooks or self._optimizer_step_post_hooks or _watched():
            return self._hooked_step(closure)
        return self._step(closure)

    step.hooked = True  # torch.optim.Optimizer must not wrap it again: see _hooked_step

    @torch.no_grad()
    def _step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self.flat.gather()
        group = self.param_groups[0]
        flat = group["params"][0]
        state = self.state[flat]
        if not state:
            state["step"] = torch.zeros((), dtype=torch.float32, device=flat.device)
            state["exp_avg"] = torch.zeros_like(flat)
            state["exp_avg_sq"] = torch.zeros_like(flat)
        state["step"].add_(1)
        if self._fused:
            self._fused_update(flat, state, group)
        else:
            self._update(flat, state, group)
        return loss

    _hooked_step = torch.optim.Optimizer.profile_hook_step(_step)

    def _fused_update(self, flat: Tensor, state: dict, group: dict) -> None:
        beta1, beta2 = group["betas"]
        kernel = torch._fused_adamw_ if group["weight_decay"] else torch._fused_adam_
        kernel(
            [flat.data],
            [flat.grad],
            [state["exp_avg"]],
            [state["exp_avg_sq"]],
            [],
            [state["step"]],
            lr=float(group["lr"]),
            beta1=beta1,
            beta2=beta2,
            weight_decay=group["weight_decay"],
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )

    def _update(self, flat: Tensor, state: dict, group: dict) -> None:
        """The same update in plain tensor operations (devices without the fused kernel)."""
        beta1, beta2 = group["betas"]
        lr, step = float(group["lr"]), float(state["step"])
        data, grad, m, v = flat.data, flat.grad, state["exp_avg"], state["exp_avg_sq"]
        if group["weight_decay"]:
            data.mul_(1 - lr * group["weight_decay"])
        m.lerp_(grad, 1 - beta1)
        v.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = (v.sqrt() / math.sqrt(1 - beta2**step)).add_(group["eps"])
        data.addcdiv_(m, denom, value=-lr / (1 - beta1**step))


def _torch_adam(params: list[torch.nn.Parameter], lr: float, weight_decay: float):
    cls = torch.optim.AdamW if weight_decay > 0 else torch.optim.Adam
    fused = bool(params) and all(
        p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64)
        for p in params
    )
    return cls(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


def can_flatten(params: Iterable[torch.nn.Parameter]) -> bool:
    """Whether ``FlatParameters`` takes these: trainable floats on one device, one dtype."""
    params = [p for p in params if p.requires_grad]
    floating = all(p.dtype in (torch.float32, torch.float64) for p in params)
    return bool(params) and floating and len({(p.device, p.dtype) for p in params}) == 1


@contextmanager
def adam(
    params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0, flat: bool = True
) -> Iterator[torch.optim.Optimizer]:
    """Adam (AdamW when ``weight_decay > 0``) for the block, in one update where possible.

    With ``flat`` (the default), parameters on one device with one floating dtype are
    flattened for the block (``FlatParameters``) and get ``FlatAdam``; others (and all,
    with ``flat=False``) get torch's Adam/AdamW, fused where torch supports it. When the
    block ends the parameters have their own storage again.
    """
    params = [p for p in params if p.requires_grad]
    if not (flat and can_flatten(params)):
        yield _torch_adam(params, lr, weight_decay)
        return
    with FlatParameters(params) as flat:
        yield FlatAdam(flat, lr=lr, weight_decay=weight_decay)
