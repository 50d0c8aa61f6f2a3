"""What each model gets to train for, from a time budget: fixed step counts, not timers.

A budget in seconds is turned into epochs and steps with per-step costs measured once
on the reference machine (a 2-core CPU, one torch thread), so the same budget trains
the same amount on any machine and two runs give the same table; only the wall time
differs from machine to machine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from flowforge.families import FAMILIES as FLOW_FAMILIES
from flowforge.families import Entry
from flowforge.workbench.baselines import (
    Baseline,
    BuilderFlowBaseline,
    FlowBaseline,
    GANBaseline,
    GaussianBaseline,
    KernelDensityBaseline,
    MixtureBaseline,
    UniformFlowBaseline,
)

# Seconds per optimizer step (batch 256, one thread) on the reference 2-core CPU, as
# measured there while other work shared it.
FLOW_STEP_SECONDS = 0.0045
GAN_STEP_SECONDS = 0.004
# Share of the budget for each iteratively trained model: the flow and the GAN get
# the same time; the uniform-base flow needs only enough to show where it goes.
SHARES = {"flow": 0.36, "flow-uniform": 0.08, "gan": 0.36, "gan-1d": 0.2}
# The other flow families (opt-in, see FAMILIES) get the flow's number of epochs.
BATCH_SIZE = 256
DEFAULT_BUDGET = 100.0


@dataclass(frozen=True)
class Plan:
    """Training lengths derived from a budget (seconds) and the number of training points."""

    budget: float
    n_train: int
    seed: int = 0

    def __post_init__(self) -> None:
        if not (self.budget > 0 and math.isfinite(self.budget)):
            raise ValueError(f"the budget must be a positive number of seconds, got {self.budget}")
        if self.n_train < 2:
            raise ValueError(f"need at least 2 training points, got {self.n_train}")

    def epochs(self, model: str) -> int:
        """Epochs of ``model`` (a flow) that fit its share of the budget, at least 1."""
        steps_per_epoch = math.ceil(self.n_train / BATCH_SIZE)
        seconds = SHARES[model] * self.budget
        return max(1, round(seconds / (steps_per_epoch * FLOW_STEP_SECONDS)))

    def gan_steps(self, model: str = "gan") -> int:
        """GAN steps (one discriminator and one generator update each) in its share."""
        return max(1, round(SHARES[model] * self.budget / GAN_STEP_SECONDS))

    def build(self, name: str) -> Baseline:
        """A fresh, unfitted model by name (see ``MODELS``)."""
        try:
            factory = MODELS[name]
        except KeyError:
            raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
        return factory(self)

    def to_dict(self) -> dict:
        return {
            "budget_seconds": self.budget,
            "flow_epochs": self.epochs("flow"),
            "flow_uniform_epochs": self.epochs("flow-uniform"),
            "gan_steps": self.gan_steps(),
            "gan_1d_steps": self.gan_steps("gan-1d"),
            "batch_size": BATCH_SIZE,
        }


MODELS: dict[str, Callable[[Plan], Baseline]] = {
    "flow": lambda p: FlowBaseline(p.epochs("flow"), batch_size=BATCH_SIZE, seed=p.seed),
    "flow-uniform": lambda p: UniformFlowBaseline(
        p.epochs("flow-uniform"), batch_size=BATCH_SIZE, seed=p.seed
    ),
    "gan": lambda p: GANBaseline(p.gan_steps(), batch_size=BATCH_SIZE, seed=p.seed),
    # The same GAN from a 1-D latent: its samples lie on a curve (question 10.6 c).
    "gan-1d": lambda p: GANBaseline(
        p.gan_steps("gan-1d"), latent=1, batch_size=BATCH_SIZE, seed=p.seed
    ),
    "gmm": lambda p: MixtureBaseline(seed=p.seed),
    "kde": lambda p: KernelDensityBaseline(),
    "gaussian": lambda p: GaussianBaseline(),
}
# The models `flowforge compare` fits when --models is not given.
DEFAULT_MODELS = tuple(MODELS)


def _entry(family: str, entry: Entry) -> Callable[[Plan], Baseline]:
    """A family's comparison entry (``flowforge.families``): trained for the flow's epochs
    with the comparison's batch, unless the entry has a recipe of its own."""

    def build(p: Plan) -> Baseline:
        recipe = {"lr": entry.lr} if entry.lr is not None else {}
        return BuilderFlowBaseline(
            entry.name,
            family,
            dict(entry.options),
            entry.epochs if entry.epochs is not None else p.epochs("flow"),
            batch_size=entry.batch_size if entry.batch_size is not None else BATCH_SIZE,
            seed=p.seed,
            **recipe,
        )

    return build


# The flow families beyond the seed's RealNVP, as each family declares its entries (NICE,
# MAF, the coupling NSF, and NSF's mixture-base recipe in two sizes); they are opt-in.
FAMILIES: dict[str, Callable[[Plan], Baseline]] = {
    entry.name: _entry(name, entry)
    for name, family in FLOW_FAMILIES.items()
    for entry in family.compare
}
MODELS.update(FAMILIES)
