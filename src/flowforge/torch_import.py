"""``import torch`` as flowforge needs it: without the progress-bar library it does not.

``torch.hub`` (imported by ``import torch``) binds tqdm for its download bars when tqdm is
installed, so ``import torch`` alone loads tqdm, a workbench dependency. The first
``import flowforge`` in a process, when torch is not imported yet, imports torch with
tqdm hidden (``torch.hub`` then binds its own fallback) and gives ``torch.hub`` a
stand-in that imports tqdm at its first download bar: what ``torch.hub`` shows is
unchanged, and tqdm imports as usual afterwards. Where torch is already imported, nothing
is done.

Importing this module does it (``flowforge/__init__.py`` imports it first).

Example:
    >>> import sys
    >>> import_torch()  # torch is imported by now: nothing to do
    >>> "torch" in sys.modules
    True
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["import_torch"]


def import_torch() -> None:
    """Import torch, unless it is imported already, without importing tqdm."""
    if "torch" in sys.modules or "tqdm" in sys.modules:
        return
    sys.modules["tqdm"] = None  # type: ignore[assignment]  # "import tqdm" raises ImportError
    try:
        import torch.hub
    finally:
        if "tqdm" in sys.modules and sys.modules["tqdm"] is None:
            del sys.modules["tqdm"]
    fallback = torch.hub.tqdm

    def tqdm(*args: Any, **kwargs: Any) -> Any:
        """tqdm's bar if tqdm is installed, else ``torch.hub``'s own fallback."""
        try:
            from tqdm import tqdm as bar
        except ImportError:
            bar = fallback
        return bar(*args, **kwargs)

    torch.hub.tqdm = tqdm


import_torch()
