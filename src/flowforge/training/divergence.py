"""Divergence: the checks an epoch's result passes before anyone sees it.

``fit`` checks after every epoch, before recording it, calling back or checkpointing:

- the epoch's mean training loss is finite (``epoch.train_epoch``);
- every parameter and floating buffer is finite after the epoch's last step (the
  iterates, and the weight average when there is one): a step that blows the weights up
  shows only here, since each loss is measured before its step;
- the held-out NLL (with validation data) is finite and not absurd: at most
  ``absurd_bound(start)``, where ``start`` is the held-out NLL before the first epoch.
  Without validation data the same check runs on the NLL of the first ``PROBE_ROWS``
  training rows (the "probe"): weights can stay finite while the model's outputs are
  not (``lr=1000`` on the moons: finite weights, NaN log-densities).

A failed check is a one-line ``DivergedError`` naming the epoch and what to change;
``fit`` then leaves the model with the weights of the last good epoch (those before
training when no epoch was good), so neither a callback, a checkpoint nor the caller
ever sees a diverged state. The checks cost one pass over the weights per epoch (none
per step, so the step rate is unchanged) and one held-out evaluation before the first
epoch (without validation data: one evaluation of the probe per epoch, and one before).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from flowforge.errors import DivergedError
from flowforge.training.distributed import World, all_sum

# A held-out NLL is absurd when it exceeds the NLL before training by more than this many
# times ``max(1, |NLL before training|)`` nats: 1,000 times worse than an untrained model
# (2.8 nats on the moons: above 2,803), which no learning-rate jitter or overfitting
# reaches (the diverged runs ended at 1.5e26 and 3.7e34), while a data set's own
# scale (NLLs of thousands of nats before standardization) moves the bound with it.
ABSURD_FACTOR = 1e3

# Rows of the training data scored after every epoch when there is no validation data.
PROBE_ROWS = 256

FIX = "lower the learning rate (lr), add warmup steps, or use a bounded log-scale"


def absurd_bound(start: float) -> float:
    """The largest sensible held-out NLL for a model whose held-out NLL before training
    was ``start`` (nats per point): ``start + ABSURD_FACTOR * max(1, |start|)``; ``inf``
    when ``start`` is not finite (then only non-finite NLLs are caught)."""
    if not math.isfinite(start):
        return math.inf
    return start + ABSURD_FACTOR * max(1.0, abs(start))


def non_finite_tensor(model: torch.nn.Module) -> str | None:
    """The name of ``model``'s first parameter or floating buffer holding a NaN or an
    infinity, or ``None`` when all are finite (one host sync for all of them)."""
    named = [(n, t) for n, t in model.state_dict().items() if t.is_floating_point() and t.numel()]
    if not named:
        return None
    finite = torch.stack([torch.isfinite(t).all().to(named[0][1].device) for _, t in named])
    if bool(finite.all()):
        return None
    return next(name for (name, _), ok in zip(named, finite.tolist()) if not ok)


class DivergenceGuard:
    """The checks of one ``fit`` call: ``weights(model, epoch)`` and ``heldout(nll, epoch)``
    raise ``DivergedError`` (epochs numbered from 0, named from 1 in the message).

    ``start`` is the held-out NLL before the first epoch (``nan`` without validation
    data). Under several processes (``world``) the processes agree on the weights'
    verdict (one all-reduce), so all of them raise, or none.
    """

    def __init__(self, start: float, world: World | None = None) -> None:
        self.start = start
        self.bound = absurd_bound(start)
        self.world = World() if world is None else world

    def weights(self, model: torch.nn.Module, epoch: int, which: str = "weights") -> None:
        """``DivergedError`` if a parameter or buffer of ``model`` is not finite."""
        name = non_finite_tensor(model)
        if self.world.distributed:
            bad = torch.tensor(float(name is not None))
            if float(all_sum(bad, self.world)) and name is None:
                name = "on another process"
        if name is not None:
            raise DivergedError(
                f"training diverged in epoch {epoch + 1}: its steps left NaN or infinite "
                f"{which} ({name}); {FIX}"
            )

    def heldout(self, nll: float, epoch: int, what: str = "held-out NLL") -> None:
        """``DivergedError`` if the held-out ``nll`` is NaN, infinite or absurd (``what``
        names the NLL in the message: the probe's, without validation data)."""
        if not math.isfinite(nll):
            before = (
                ""
                if math.isfinite(self.start)
                else (
                    f", as before training ({self.start}): the model cannot score some "
                    "of these rows; check them against the model's domain"
                )
            )
            raise DivergedError(
                f"training diverged in epoch {epoch + 1} ({what} {nll}{before}); {FIX}"
            )
        if nll > self.bound:
            raise DivergedError(
                f"training diverged in epoch {epoch + 1} ({what} {nll:.4g}, over the "
                f"bound {self.bound:.4g} for an NLL of {self.start:.4g} before training); {FIX}"
            )


def copy_state(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """A detached copy of a ``state_dict`` (of its tensors' values at this moment)."""
    return {name: value.detach().clone() for name, value in state.items()}
