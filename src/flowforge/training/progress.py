"""Progress display for training: a tqdm bar when tqdm is installed, else one line per epoch.

In Jupyter the bar is tqdm's widget when ipywidgets is installed, and tqdm's text bar
otherwise (``tqdm.auto`` would warn "IProgress not found" there instead).
"""

from __future__ import annotations

import importlib.util
import math
import sys


def progress_bar_class() -> type | None:
    """The tqdm class to show training with: the notebook widget where it can display
    (``tqdm.auto`` picks it in Jupyter when ipywidgets is installed), the text bar
    otherwise; ``None`` without tqdm."""
    try:
        if importlib.util.find_spec("ipywidgets") is not None:
            from tqdm.auto import tqdm
        else:
            from tqdm.std import tqdm
    except ImportError:
        return None
    return tqdm


class ProgressReporter:
    """Shows the epoch, the running (training) NLL and the held-out NLL."""

    def __init__(self, epochs: int, enabled: bool = True, initial: int = 0) -> None:
        self.epochs, self.epoch, self.enabled = epochs, initial, enabled
        self._bar = None
        bar = progress_bar_class() if enabled else None
        if bar is not None:
            self._bar = bar(total=epochs, initial=initial, desc="training", unit="epoch")

    def update(self, train_nll: float, heldout_nll: float = math.nan) -> None:
        self.epoch += 1
        if not self.enabled:
            return
        fields = {"nll": f"{train_nll:.4f}"}
        if not math.isnan(heldout_nll):
            fields["heldout"] = f"{heldout_nll:.4f}"
        if self._bar is not None:
            self._bar.set_postfix(fields, refresh=False)
            self._bar.update(1)
        else:
            text = ", ".join(f"{k} {v}" for k, v in fields.items())
            print(f"epoch {self.epoch}/{self.epochs}: {text}", file=sys.stderr)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
