"""An exact sampler of a target, or of some of its modes: a perfect flow, or one that
dropped modes, for testing diagnostics (:func:`flowforge.importance.diagnose`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.targets.base import Target


class TargetSampler:
    """Exact samples of a target (or of some of its modes) with their log-density:
    a perfect flow, for testing diagnostics.

    With ``keep`` (mode indices), only those modes are sampled, and ``log_prob`` is the
    target's restricted to them and renormalized, plus ``e⁻²⁰`` of it elsewhere (so it
    stays finite): a sampler that has dropped the other modes.

    Example:
        >>> import torch
        >>> from flowforge import targets
        >>> x, log_q = TargetSampler(targets.get("two-moons"), keep=[0]).sample_and_log_prob(4)
        >>> bool((x[:, 0] > 0).all()), log_q.shape
        (True, torch.Size([4]))
    """

    def __init__(
        self,
        target: Target,
        keep: list[int] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.target, self.generator = target, generator
        self.keep = None if keep is None else torch.as_tensor(keep)
        mass = 1.0 if keep is None else float(target.weights[self.keep].sum())
        self.log_z = target.log_normalizer + math.log(mass)

    def _kept(self, x: Tensor) -> Tensor:
        return torch.isin(self.target.assign(x), self.keep)

    def sample_and_log_prob(self, n: int) -> tuple[Tensor, Tensor]:
        parts, have = [], 0
        while have < n:
            x = self.target.sample(n, generator=self.generator)
            x = x if self.keep is None else x[self._kept(x)]
            parts.append(x)
            have += len(x)
        x = torch.cat(parts)[:n]
        return x, self.log_prob(x)

    def log_prob(self, x: Tensor) -> Tensor:
        lp = self.target.log_prob(x.double()) - self.log_z
        return lp if self.keep is None else torch.where(self._kept(x), lp, lp - 20.0)
