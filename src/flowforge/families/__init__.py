"""Flow families: builders that return a ready ``NormalizingFlow``, each declared once.

Each family lives in a module of this package: its builder, and at the end a
``DECLARED`` tuple of ``Family`` records (``flowforge.families.family``) naming its
command-line options, the data it models and its entries in ``flowforge compare``.
``FAMILIES`` (name -> ``Family``, sorted by name) collects the declarations of every
module here, so a new family is one new module; ``BUILDERS`` maps each name to its builder.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from flowforge.families.autoregressive import iaf, maf
from flowforge.families.bases import BASES, base_distribution
from flowforge.families.family import IMAGES, POINTS, Entry, Family, Option, markdown_table
from flowforge.families.multiscale import multiscale
from flowforge.families.nice import nice
from flowforge.families.nsf import nsf
from flowforge.families.realnvp import realnvp


def _declared() -> dict[str, Family]:
    """Every ``Family`` the modules of this package declare, by name, sorted by name
    (modules whose name starts with ``_``, such as ``__main__``, are not family modules)."""
    found: dict[str, Family] = {}
    for module in pkgutil.iter_modules(__path__, f"{__name__}."):
        if module.name.rsplit(".", 1)[1].startswith("_"):
            continue
        for family in getattr(importlib.import_module(module.name), "DECLARED", ()):
            if family.name in found:
                raise ValueError(f"two families are called {family.name!r}")
            found[family.name] = family
    return dict(sorted(found.items()))


FAMILIES: dict[str, Family] = _declared()
BUILDERS: dict[str, Callable[..., object]] = {name: f.build for name, f in FAMILIES.items()}

__all__ = [
    "BASES",
    "BUILDERS",
    "FAMILIES",
    "IMAGES",
    "POINTS",
    "Entry",
    "Family",
    "Option",
    "base_distribution",
    "iaf",
    "maf",
    "markdown_table",
    "multiscale",
    "nice",
    "nsf",
    "realnvp",
]
