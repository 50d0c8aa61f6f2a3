"""Densities known up to a constant, with known answers: what a flow is fitted to by
reverse KL and scored against (:mod:`flowforge.importance`).

``get(name, **options)`` builds one; ``NAMES`` lists them:

- ``two-moons``, ``circular-mixture``, ``ring-mixture``: normflows' 2-D energies;
- ``banana``, ``funnel``: a bent Gaussian and a 2-D Neal's funnel;
- ``gmm40``: FAB's 40-mode mixture in ``[-40, 40]²``;
- ``funnel10``: Neal's 10-D funnel (normalizer and marginals in closed form);
- ``logistic-breast-cancer``: Bayesian logistic regression on scikit-learn's breast
  cancer data (needs scikit-learn), with a shipped reference chain.

Example:
    >>> import torch
    >>> from flowforge import targets
    >>> t = targets.get("two-moons")
    >>> t.log_prob(torch.zeros(3, 2)).shape
    torch.Size([3])
"""

from __future__ import annotations

from collections.abc import Callable

from flowforge.errors import InputError
from flowforge.targets.base import Target, grid_log_integral
from flowforge.targets.energies import CircularMixture, RingMixture, TwoMoons
from flowforge.targets.sampler import TargetSampler
from flowforge.targets.shapes import GMM40, Banana, Funnel


def _logistic(**options) -> Target:
    from flowforge.targets.logistic import LogisticRegression

    return LogisticRegression(**options)


_BUILDERS: dict[str, Callable[..., Target]] = {
    "two-moons": TwoMoons,
    "circular-mixture": CircularMixture,
    "ring-mixture": RingMixture,
    "banana": Banana,
    "funnel": lambda **o: Funnel(**{"dim": 2, "scale": 1.5, **o}),
    "gmm40": GMM40,
    "funnel10": lambda **o: Funnel(**{"dim": 10, "scale": 3.0, **o}),
    "logistic-breast-cancer": _logistic,
}
NAMES: tuple[str, ...] = tuple(_BUILDERS)


def get(name: str, **options) -> Target:
    """The target registered as ``name``, built with ``options`` (its constructor's).

    Args:
        name: One of :data:`NAMES`.
        **options: Passed to the target's constructor (``n_modes=`` for the circle,
            ``scale=`` for the funnels, ``prior_scale=`` for the posterior, ...).

    Raises:
        InputError: for an unknown name, listing the known ones.

    Example:
        >>> get("circular-mixture", n_modes=6).modes.shape
        torch.Size([6, 2])
    """
    if name not in _BUILDERS:
        raise InputError(f"unknown target {name!r}; choose one of {', '.join(NAMES)}")
    return _BUILDERS[name](**options)


__all__ = [
    "GMM40",
    "NAMES",
    "Banana",
    "CircularMixture",
    "Funnel",
    "RingMixture",
    "Target",
    "TargetSampler",
    "TwoMoons",
    "get",
    "grid_log_integral",
]
