"""``FlatAdam``: Adam over one contiguous buffer, so a step is one update, not one per tensor.

A small flow has a couple of dozen small parameter tensors (the notebook's model: 24
tensors, 1,352 numbers). ``torch.optim.Adam`` then spends most of a step on per-tensor
bookkeeping, not arithmetic. ``FlatAdam`` moves the parameters' data and gradients
into two flat buffers, each parameter a view into them, and updates the whole buffer
at once: the modules keep their own ``Parameter`` objects, autograd accumulates into
the gradient buffer, and the update touches every parameter in one operation.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterable

import torch
from torch import Tensor
from torch.autograd import profiler as _profiler
from torch.optim import optimizer as _optimizer

_GRAD = operator.attrgetter("grad")


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

    The same update as ``torch.optim.Adam`` (``torch.optim.AdamW`` with weight decay),
    for parameters that share a device and a dtype. On construction each parameter's
    data becomes a view into one flat buffer and its ``.grad`` a view into another;
    ``zero_grad`` zeroes that buffer in place (``set_to_none`` is ignored: a gradient
    stays a view, and autograd accumulates into it). A parameter that receives no
    gradient in a step therefore sees a zero gradient, as in Adam with
    ``zero_grad(set_to_none=False)``.

    Load a model's weights with ``load_state_dict`` (which copies into the views), and
    move the model to its device before making the optimizer: ``model.to(...)``
    afterwards would give the parameters new storage, which ``step`` detects and
    reports. ``release()`` gives every parameter its own storage again when
    training is over. ``state_dict()`` holds one flat ``exp_avg``/``exp_avg_sq``.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ) -> None:
        params = [p for p in params if p.requires_grad]
        if not params:
            raise ValueError("FlatAdam got no parameters that require gradients")
        if len({(p.device, p.dtype) for p in params}) != 1:
            raise ValueError(
                "FlatAdam needs parameters on one device with one dtype, got "
                f"{sorted({(str(p.device), str(p.dtype)) for p in params})}; "
                "use torch.optim.Adam for mixed parameters"
            )
        if not (lr > 0 and eps >= 0 and weight_decay >= 0 and all(0 <= b < 1 for b in betas)):
            raise ValueError(
                f"need lr > 0, eps >= 0, weight_decay >= 0 and betas in [0, 1); got "
                f"lr={lr}, eps={eps}, weight_decay={weight_decay}, betas={betas}"
            )
        self._params = params
        flat = torch.nn.Parameter(torch.cat([p.detach().reshape(-1) for p in params]))
        flat.grad = torch.zeros_like(flat)
        self._data_views, self._grad_views = [], []
        offset = 0
        with torch.no_grad():
            for p in params:
                n = p.numel()
                p.data = flat.data[offset : offset + n].view_as(p)
                p.grad = flat.grad[offset : offset + n].view_as(p)
                self._data_views.append(p.data_ptr())
                self._grad_views.append(p.grad)
                offset += n
        self._fused = _has_fused_kernel(flat.device, flat.dtype)
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        super().__init__([flat], defaults)

    @property
    def flat_parameter(self) -> torch.nn.Parameter:
        """The buffer that holds every parameter (its ``.grad`` holds every gradient)."""
        return self.param_groups[0]["params"][0]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero every gradient at once, in place (gradients stay views of one buffer)."""
        self.flat_parameter.grad.zero_()

    def _check_views(self) -> None:
        """Re-attach gradients that were replaced; refuse parameters given new storage."""
        if list(map(Tensor.data_ptr, self._params)) == self._data_views and not any(
            map(operator.is_not, map(_GRAD, self._params), self._grad_views)
        ):
            return  # the usual case, checked without a Python loop
        for i, p in enumerate(self._params):
            if p.data_ptr() != self._data_views[i]:
                raise RuntimeError(
                    f"parameter {i} (shape {tuple(p.shape)}) no longer lives in FlatAdam's "
                    "buffer: was the model moved or converted (.to(), .double()) after the "
                    "optimizer was made? Make the optimizer after moving the model"
                )
            view = self._grad_views[i]
            if p.grad is not view:
                if p.grad is None:
                    view.zero_()
                else:
                    view.copy_(p.grad)
                p.grad = view

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
        self._check_views()
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

    def release(self) -> None:
        """Give every parameter (and gradient) its own storage again; the optimizer is done.

        Afterwards the parameters no longer share one buffer (so, e.g., safetensors can
        save a ``state_dict``), and this optimizer must not ``step`` again.
        """
        with torch.no_grad():
            for p in self._params:
                p.data = p.data.clone()
                if p.grad is not None:
                    p.grad = p.grad.clone()
        self._data_views = [None] * len(self._params)
