"""``EarlyStopping``: the best held-out epoch so far, its weights, and when to stop."""

from __future__ import annotations

import math

import torch
from torch import Tensor


class EarlyStopping:
    """Tracks the best held-out NLL over epochs and says when to stop.

    ``observe(epoch, nll, model)`` after every epoch (numbered from 1): an epoch whose
    NLL is lower than every earlier one (the first one always) becomes the best, and a
    copy of the model's ``state_dict`` is kept. It returns whether to stop: ``patience``
    epochs have passed since the best one (``None``: never). ``restore(model)`` loads
    the best weights. A resumed run passes the best epoch, NLL and weights it had.
    """

    def __init__(
        self,
        patience: int | None = None,
        best_epoch: int | None = None,
        best_nll: float = math.nan,
        best_state: dict[str, Tensor] | None = None,
    ) -> None:
        self.patience = patience
        self.best_epoch = best_epoch
        self.best_nll = best_nll
        self.best_state = best_state

    def observe(self, epoch: int, nll: float, model: torch.nn.Module) -> bool:
        """Record epoch ``epoch``'s held-out ``nll``; return whether training should stop."""
        if self.best_epoch is None or nll < self.best_nll:
            self.best_epoch, self.best_nll = epoch, nll
            self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return self.patience is not None and epoch - self.best_epoch >= self.patience

    def restore(self, model: torch.nn.Module) -> bool:
        """Load the best epoch's weights into ``model``; whether there were any."""
        if self.best_state is None:
            return False
        model.load_state_dict(self.best_state)
        return True
