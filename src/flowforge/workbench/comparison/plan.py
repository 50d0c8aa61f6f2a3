"""What each model gets to train for, from a time budget.

A budget in seconds is turned into epochs and steps with per-step costs measured once
on the reference machine (a 2-core CPU, one torch thread), so the same budget trains
the GANs, the uniform-base flow and the other flow families the same amount on any
machine. The notebook's flow is trained last, by ``flowforge train``'s recipe
(``DEFAULT_RECIPE``), for at least the epochs ``epochs("flow")`` gives and at least as
long, in measured seconds, as the slowest other model took (``comparison.fair_time``);
``Plan(flow_epochs=N)`` fixes its epochs instead, which makes two runs give the same
table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from flowforge.families import FAMILIES as FLOW_FAMILIES
from flowforge.families import Entry
from flowforge.training import DEFAULT_RECIPE
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
# Share of the budget for each model trained for a planned length; the uniform-base flow
# needs only enough to show where it goes. "families" is the share of each of the other
# flow families (opt-in, see FAMILIES). The notebook's flow is not budgeted by a share:
# it trains at least as long as the slowest of these (``fair_time``).
SHARES = {"families": 0.36, "flow-uniform": 0.08, "gan": 0.36, "gan-1d": 0.2}
BATCH_SIZE = 256
DEFAULT_BUDGET = 100.0
# The notebook's flow is trained as `flowforge train` trains it (batches of 1,024, peak
# rate 1e-2 after 100 warm-up steps, cosine decay, weight average 0.98): at the default
# budget for at least the recipe's 200 epochs, which end near 1.86 nats on the moons.
FLOW_RECIPE = DEFAULT_RECIPE
# The peak rate of the plain recipe the uniform-base flow and the other families train by.
PLAIN_LR = 5e-3


@dataclass(frozen=True)
class Plan:
    """Training lengths derived from a budget (seconds) and the number of training points."""

    budget: float
    n_train: int
    seed: int = 0
    flow_epochs: int | None = None  # fixed epochs for the flow; None: the time rule

    def __post_init__(self) -> None:
        if not (self.budget > 0 and math.isfinite(self.budget)):
            raise ValueError(f"the budget must be a positive number of seconds, got {self.budget}")
        if self.n_train < 2:
            raise ValueError(f"need at least 2 training points, got {self.n_train}")
        if self.flow_epochs is not None and self.flow_epochs < 1:
            raise ValueError(f"flow_epochs must be at least 1, got {self.flow_epochs}")

    def epochs(self, model: str) -> int:
        """Epochs of ``model`` (a flow) at least 1: for ``"flow"`` the fixed ``flow_epochs``
        or else the least it trains for (the recipe's epochs scaled by the budget, before
        the time rule adds any); for the others, what fits their share of the budget."""
        if model == "flow":
            if self.flow_epochs is not None:
                return self.flow_epochs
            return max(1, round(FLOW_RECIPE.epochs * self.budget / DEFAULT_BUDGET))
        steps_per_epoch = math.ceil(self.n_train / BATCH_SIZE)
        seconds = SHARES[model] * self.budget
        return max(1, round(seconds / (steps_per_epoch * FLOW_STEP_SECONDS)))

    def flow(self, epochs: int) -> FlowBaseline:
        """The notebook's flow, unfitted, to be trained for ``epochs`` by ``FLOW_RECIPE``."""
        recipe = FLOW_RECIPE
        return FlowBaseline(
            epochs,
            batch_size=recipe.batch_size,
            lr=recipe.lr,
            warmup=recipe.warmup,
            ema=recipe.ema,
            seed=self.seed,
        )

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
            "flow_epochs": self.flow_epochs,
            "flow_min_epochs": self.epochs("flow"),
            "flow_recipe": FLOW_RECIPE.to_dict(),
            "flow_uniform_epochs": self.epochs("flow-uniform"),
            "gan_steps": self.gan_steps(),
            "gan_1d_steps": self.gan_steps("gan-1d"),
            "batch_size": BATCH_SIZE,
        }


MODELS: dict[str, Callable[[Plan], Baseline]] = {
    "flow": lambda p: p.flow(p.epochs("flow")),
    "flow-uniform": lambda p: UniformFlowBaseline(
        p.epochs("flow-uniform"), batch_size=BATCH_SIZE, lr=PLAIN_LR, seed=p.seed
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
    """A family's comparison entry (``flowforge.families``): trained for the families'
    share of the budget with the comparison's batch and the plain recipe (Adam at 5e-3,
    cosine decay, no warm-up, no average), unless the entry has a recipe of its own."""

    def build(p: Plan) -> Baseline:
        return BuilderFlowBaseline(
            entry.name,
            family,
            dict(entry.options),
            entry.epochs if entry.epochs is not None else p.epochs("families"),
            batch_size=entry.batch_size if entry.batch_size is not None else BATCH_SIZE,
            lr=entry.lr if entry.lr is not None else PLAIN_LR,
            warmup=0,
            ema=0.0,
            seed=p.seed,
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
