"""A flow family, declared once next to its builder: ``Family``, its ``Option``s and its
entries in ``flowforge compare``.

A family module (``flowforge/families/<name>.py``) defines a builder and ends with
``DECLARED = (Family(...),)``; ``flowforge.families.FAMILIES`` collects every module's
declarations. The command line (``flowforge train --model NAME`` and its options), the
comparison's family entries, the tests' family list and the user guide's family table are
generated from them. Defaults are never written in a declaration: they are read from the
builder's signature (``Family.default``).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flowforge.families.bases import BASES

# What a family models: points (any width, conditional through ``context_width``), or
# images of discrete pixels (a ``DequantizedFlow`` taking ``image_shape`` and ``levels``).
POINTS = "points"
IMAGES = "images"
KINDS = (POINTS, IMAGES)


@dataclass(frozen=True)
class Option:
    """A builder parameter the command line sets as ``--name`` (``_`` written ``-``).

    ``type`` is ``int``, ``float``, ``str``, or ``bool`` for a switch (``--name`` alone
    turns it on; it is recorded in a run's config only when given). ``minimum`` bounds a
    number from below; ``choices`` lists the values a string may take. ``help`` says
    what the option does, without its default: each family's default is read from its
    builder.
    """

    name: str
    help: str
    type: type = int
    minimum: float | None = None
    choices: tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """The command-line flag, ``--zero-init`` for ``zero_init``."""
        return "--" + self.name.replace("_", "-")

    @property
    def switch(self) -> bool:
        """Whether the option is a switch (a flag without a value)."""
        return self.type is bool


@dataclass(frozen=True)
class Entry:
    """A family's model in ``flowforge compare --models NAME``: the builder ``options``,
    and a recipe of its own where it has one (``None``: the comparison's flow recipe,
    trained for as many epochs as the seed's flow gets from the time budget)."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None


@dataclass(frozen=True)
class Family:
    """One flow family: its builder and everything generated from it.

    ``build`` is the builder; a family of ``POINTS`` takes the data's width as its first
    argument and ``context_width`` for conditional flows, a family of ``IMAGES`` takes
    ``image_shape`` and ``levels``. ``summary`` says in one line what the flow is (the
    guide's family table). ``options`` are the builder parameters the command line sets;
    ``test_size`` holds values of some of them that make the flow tiny (for tests and
    smoke runs); ``compare`` are its entries in ``flowforge compare``.
    """

    name: str
    build: Callable[..., Any]
    data: str
    summary: str
    options: tuple[Option, ...] = ()
    test_size: Mapping[str, Any] = field(default_factory=dict)
    compare: tuple[Entry, ...] = ()

    def __post_init__(self) -> None:
        if self.data not in KINDS:
            raise ValueError(f"family {self.name}: data must be one of {KINDS}, got {self.data!r}")

    def parameters(self) -> Mapping[str, inspect.Parameter]:
        """The builder's parameters, by name."""
        return inspect.signature(self.build).parameters

    def default(self, name: str) -> Any:
        """The builder's default for parameter ``name``."""
        return self.parameters()[name].default

    def defaults(self) -> dict[str, Any]:
        """Each declared option's default, as the builder's signature gives it."""
        return {option.name: self.default(option.name) for option in self.options}

    def option(self, name: str) -> Option | None:
        """The declared option ``name``, or ``None`` if the family does not declare it."""
        return next((o for o in self.options if o.name == name), None)

    def problems(self) -> list[str]:
        """What is wrong with the declaration (empty when nothing is): options, test
        sizes or comparison options that are no parameter of the builder, defaults of
        another type than declared, a builder that does not take its data's options."""
        parameters = self.parameters()
        found = [
            f"{self.name}: option {o.name} is no parameter of {self.build.__name__}"
            for o in self.options
            if o.name not in parameters
        ]
        if not found:
            found += _default_problems(self)
        declared = {o.name for o in self.options}
        found += [
            f"{self.name}: test_size sets {name}, which is not a declared option"
            for name in self.test_size
            if name not in declared
        ]
        for entry in self.compare:
            found += [
                f"{self.name}: comparison entry {entry.name} sets {name}, which is no "
                f"parameter of {self.build.__name__}"
                for name in entry.options
                if name not in parameters
            ]
        needs = ("context_width",) if self.data == POINTS else ("image_shape", "levels")
        found += [
            f"{self.name}: a family of {self.data} takes {name}, {self.build.__name__} does not"
            for name in needs
            if name not in parameters
        ]
        return found


def _default_problems(family: Family) -> list[str]:
    """Declared options whose builder default is missing or of another type."""
    found = []
    for option in family.options:
        default = family.default(option.name)
        if default is inspect.Parameter.empty:
            found.append(f"{family.name}: {option.name} has no default in its builder")
        elif not isinstance(default, option.type) or (option.type is int and default is True):
            found.append(
                f"{family.name}: {option.name} is declared {option.type.__name__}, its "
                f"default is {default!r}"
            )
    return found


# Options several families share, declared once so their flags agree.
COUPLINGS = Option("couplings", "coupling layers", minimum=1)
LAYERS = Option("layers", "layers", minimum=1)
HIDDEN = Option("hidden", "hidden width (units, or channels of an image model)", minimum=1)
BINS = Option("bins", "spline bins", minimum=2)
ZERO_INIT = Option("zero_init", "start the flow at the identity", type=bool)
BASE = Option(
    "base",
    "base distribution; 'mixture' is fitted to the data by EM before training",
    type=str,
    choices=tuple(sorted(BASES)),
)


def _cell(family: Family, option: Option) -> str:
    if option.switch:
        return f"`{option.flag}`"
    return f"`{option.flag} {family.default(option.name)}`"


def markdown_table(families: Iterable[Family]) -> str:
    """The user guide's table of families (``docs/guide/families.md``): flag, data, flow,
    options with their defaults (switches are off unless given), and the family's entries
    in ``flowforge compare``."""
    lines = [
        "| `--model` | models | flow | options (defaults) | `flowforge compare --models` |",
        "|---|---|---|---|---|",
    ]
    for family in families:
        options = ", ".join(_cell(family, option) for option in family.options)
        compare = ", ".join(f"`{entry.name}`" for entry in family.compare) or "–"
        lines.append(
            f"| `{family.name}` | {family.data} | {family.summary} | {options} | {compare} |"
        )
    return "\n".join(lines) + "\n"
