"""Base distributions over vectors, as modules so ``.to()`` and ``state_dict()`` carry them."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.distributions import Distribution, Normal, constraints

from flowforge.device import is_compiling
from flowforge.gradients import has_hooks, owns_handwritten

_SQRT_2PI = math.sqrt(2 * math.pi)
# Whether a normal base computes log_prob in closed form with cached constants; ``False``
# goes through ``torch.distributions.Normal`` as any other distribution does.
CLOSED_FORM_NORMAL = True


def _distribution_parameters(dist: Distribution) -> dict[str, Tensor]:
    """The tensor parameters a distribution was built from (e.g. ``loc``, ``scale``)."""
    params = {}
    for name in dist.arg_constraints:
        value = vars(dist).get(name)
        if isinstance(value, Tensor):
            params[name] = value
    if not params:
        raise TypeError(
            f"cannot read the parameters of {type(dist).__name__}: Multivariate wraps "
            "distributions built from tensor parameters, such as Normal(0, 1) or "
            "Uniform(-1, 1)"
        )
    return params


class Multivariate(torch.nn.Module):
    """A distribution over vectors of ``width`` independent draws of a univariate ``dist``.

    The course notebook's adapter from a ``torch.distributions`` distribution to a flow's
    base. The distribution's parameters are stored as float buffers of this module, so
    they follow ``.to(device)``, ``.double()`` and ``state_dict()``; ``.dist`` rebuilds
    the distribution from them. ``log_prob`` of a point outside a bounded
    distribution's support is ``-inf``.

    Args:
        width: The number of dimensions.
        dist: Any univariate ``torch.distributions`` distribution (``Normal(0, 1)``,
            the default; ``Uniform(-2, 2)``; ``Laplace(0, 1)``; ...), or one with batch
            shape ``(width,)`` (a different parameter per dimension), or a multivariate
            one with event shape ``(width,)`` (``MultivariateNormal``).

    Raises:
        ValueError: If ``width`` is not a positive integer, or ``dist`` does not
            describe vectors of that width.

    Example:
        >>> import torch
        >>> from torch.distributions import Uniform
        >>> from flowforge import Multivariate
        >>> base = Multivariate(2)
        >>> base.sample(4).shape
        torch.Size([4, 2])
        >>> base.log_prob(torch.zeros(1, 2)).round(decimals=4)
        tensor([-1.8379])
        >>> Multivariate(2, Uniform(-1.0, 1.0)).log_prob(torch.tensor([[0.0, 0.0], [0.0, 2.0]]))
        tensor([-1.3863,    -inf])
    """

    def __init__(self, width: int, dist: Distribution | None = None) -> None:
        super().__init__()
        if int(width) != width or width < 1:
            raise ValueError(f"width must be a positive integer, got {width!r}")
        dist = Normal(0.0, 1.0) if dist is None else dist
        if not isinstance(dist, Distribution):
            raise TypeError(
                f"dist must be a torch.distributions.Distribution, got {type(dist).__name__}"
            )
        self.width = int(width)
        self._kind = self._classify(dist)
        self._dist_type = type(dist)
        self._param_names = []
        for name, value in _distribution_parameters(dist).items():
            value = value.detach().clone()
            if not value.is_floating_point():
                value = value.to(torch.get_default_dtype())
            key = name if not hasattr(self, name) else f"param_{name}"
            self.register_buffer(key, value)
            self._param_names.append((name, key))
        self._bounded = dist.support not in (constraints.real, constraints.real_vector)

    def _classify(self, dist: Distribution) -> str:
        if dist.event_shape == torch.Size([self.width]):
            return "multivariate"
        if dist.event_shape == torch.Size() and dist.batch_shape in (
            torch.Size(),
            torch.Size([self.width]),
        ):
            return "independent"
        raise ValueError(
            f"{type(dist).__name__} with batch shape {tuple(dist.batch_shape)} and event "
            f"shape {tuple(dist.event_shape)} does not describe vectors of width "
            f"{self.width}: pass a univariate distribution, one with batch shape "
            f"({self.width},), or one with event shape ({self.width},)"
        )

    @property
    def dist(self) -> Distribution:
        """The wrapped distribution, rebuilt on this module's device and dtype."""
        params = {name: getattr(self, key) for name, key in self._param_names}
        return self._dist_type(**params, validate_args=False)

    @property
    def event_shape(self) -> torch.Size:
        return torch.Size([self.width])

    def sample(self, n: int = 1) -> Tensor:
        """Draw ``n`` samples: a ``(n, width)`` tensor (reparameterized when possible)."""
        if not isinstance(n, int) or n < 0:
            raise TypeError(f"n must be a non-negative int, got {n!r}")
        dist = self.dist
        shape = (n,) if self._kind == "multivariate" or dist.batch_shape else (n, self.width)
        draw = dist.rsample if dist.has_rsample else dist.sample
        return draw(shape)

    def log_prob(self, x: Tensor) -> Tensor:
        """Log-density of each row of ``x`` (``(batch, width)``), in nats: ``(batch,)``."""
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != self.width:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(
                f"expected points of shape (batch, {self.width}), got {shape}; "
                f"this distribution has width {self.width}"
            )
        if self._dist_type is Normal and CLOSED_FORM_NORMAL:
            return self._normal_log_prob(x)
        dist = self.dist
        lp = dist.log_prob(x)
        if self._kind == "independent":
            if self._bounded:
                lp = torch.where(dist.support.check(x), lp, lp.new_full((), -math.inf))
            lp = lp.sum(dim=1)
        elif self._bounded:
            lp = torch.where(dist.support.check(x), lp, lp.new_full((), -math.inf))
        return lp

    def _normal_log_prob(self, x: Tensor) -> Tensor:
        # Closed form of Normal.log_prob, without building a Distribution per call:
        # -|u|^2 / 2 - sum(log(scale * sqrt(2 pi))) with u = (x - loc) / scale.
        loc, scale, minus_log_norm, ones, standard = self._normal_constants(x.dtype)
        u = x if standard else (x - loc) / scale
        # (u * u) @ ones sums each row: a matrix-vector product, faster than .sum(dim=1)
        # over a narrow last dimension.
        return torch.sub(minus_log_norm, torch.mv(u * u, ones), alpha=0.5)

    def _normal_constants(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor, Tensor, bool]:
        """``loc``, ``scale``, ``-sum(log(scale sqrt(2 pi)))``, a vector of ones, all in
        ``dtype``, and whether the base is the standard normal; cached until a buffer
        changes (in place, by ``load_state_dict``, or replaced by ``.to()``)."""
        loc, scale = self.loc, self.scale
        if is_compiling():
            return self._compute_normal_constants(loc, scale, dtype)
        versions = (loc._version, scale._version, dtype)
        cached = self.__dict__.get("_normal_cache")
        stale = cached is None or cached[2] != versions
        if stale or cached[0] is not loc or cached[1] is not scale:
            with torch.inference_mode(False), torch.no_grad():
                constants = self._compute_normal_constants(loc, scale, dtype)
            cached = (loc, scale, versions, constants)
            self.__dict__["_normal_cache"] = cached
        return cached[3]

    def _compute_normal_constants(
        self, loc: Tensor, scale: Tensor, dtype: torch.dtype
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, bool]:
        loc, scale = loc.to(dtype), scale.to(dtype)
        log_norm = torch.log(scale * _SQRT_2PI).expand(self.width).sum()
        ones = torch.ones(self.width, dtype=dtype, device=loc.device)
        standard = not is_compiling() and bool((loc == 0).all() and (scale == 1).all())
        return loc, scale, -log_norm, ones, standard

    def handwritten(self) -> NormalGradients | None:
        """The mean NLL of feature-major points and its gradient, written out, for a
        normal ``dist`` (``flowforge.gradients``); ``None`` for other distributions."""
        if self._dist_type is not Normal or has_hooks(self):
            return None
        return NormalGradients(self) if owns_handwritten(self, "log_prob") else None

    def extra_repr(self) -> str:
        params = ", ".join(
            f"{name}={getattr(self, key).tolist()}" for name, key in self._param_names
        )
        return f"width={self.width}, {self._dist_type.__name__}({params})"


class NormalGradients:
    """A normal ``Multivariate``'s mean NLL of feature-major points ``(width, n)`` and its
    gradient by them, for the hand-written gradients (``flowforge.gradients``)."""

    def __init__(self, base: Multivariate) -> None:
        self.base = base

    def nll(self, z: Tensor, n: int) -> tuple[Tensor, Tensor]:
        """``(mean NLL, d mean NLL / dz)`` of the ``n`` columns of ``z``."""
        width = self.base.width
        loc, scale, minus_log_norm, _, standard = self.base._normal_constants(z.dtype)
        if standard:
            u, g = z, z / n
        else:
            scale = scale.expand(width).unsqueeze(1)
            u = (z - loc.expand(width).unsqueeze(1)) / scale
            g = u / (scale * n)
        flat = u.reshape(-1)
        return torch.dot(flat, flat).mul_(0.5 / n).sub_(minus_log_norm), g
