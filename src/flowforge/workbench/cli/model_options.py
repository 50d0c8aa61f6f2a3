"""``flowforge train``'s model options, generated from the families' declarations.

Every option a family declares (``flowforge.families.Family.options``) becomes one flag;
its help lists each family's default as the builder's signature gives it. An option the
chosen family does not declare is refused with the ones it does.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from typing import Any

from flowforge.errors import InputError
from flowforge.families import FAMILIES, Family, Option
from flowforge.families.nsf import QUALITY_PRESET
from flowforge.workbench.cli import options as types
from flowforge.workbench.runs.image_kind import Images
from flowforge.workbench.runs.kinds import Points


def _families() -> list[Family]:
    """The families, the default model's first (its options lead the help)."""
    first = FAMILIES[Points.default_model]
    return [first, *(f for f in FAMILIES.values() if f is not first)]


def declared_options(families: Iterable[Family] | None = None) -> dict[str, Option]:
    """Every option the families declare, by name, in the order first declared (the
    default model's first).

    ``ValueError`` when two families declare an option of one name differently.
    """
    found: dict[str, tuple[Option, str]] = {}
    for family in _families() if families is None else families:
        for option in family.options:
            seen = found.setdefault(option.name, (option, family.name))
            if (seen[0].type, seen[0].minimum, seen[0].choices) != (
                option.type,
                option.minimum,
                option.choices,
            ):
                raise ValueError(
                    f"families {seen[1]} and {family.name} declare {option.flag} with "
                    "different types, bounds or choices; declare it once and share it"
                )
    return {name: option for name, (option, _) in found.items()}


def defaults_text(name: str, families: Iterable[Family] | None = None) -> str:
    """The families that declare option ``name`` and their defaults, grouped by default:
    ``realnvp: 16; iaf, maf, nice: 32`` (a switch lists the families only)."""
    groups: dict[str, list[str]] = {}
    switch = False
    for family in FAMILIES.values() if families is None else families:
        option = family.option(name)
        if option is not None:
            switch = option.switch
            groups.setdefault(str(family.default(name)), []).append(family.name)
    if switch:
        return ", ".join(n for names in groups.values() for n in names)
    return "; ".join(f"{', '.join(names)}: {default}" for default, names in groups.items())


# Upper bounds on the model's size: a count of layers (couplings, steps, bins, ...) above
# MAX_COUNT, a width above MAX_WIDTH, or more than MAX_PARAMETERS parameters (200 MB of
# float32 weights, about 800 MB with their gradients and Adam's state) is refused.
MAX_COUNT = 1_000
MAX_WIDTH = 65_536
MAX_PARAMETERS = 50_000_000


def _parse(option: Option) -> Callable[[str], Any]:
    if option.type is str:
        return str
    parse = types.number(option.type) if option.minimum is None else None
    parse = parse or types.at_least(option.type, option.minimum)
    if option.type is not int:
        return parse
    bound = MAX_WIDTH if option.name == "hidden" else MAX_COUNT

    def bounded(text: str) -> int:
        value = parse(text)
        if value > bound:
            raise argparse.ArgumentTypeError(f"must be at most {bound}, got {value}")
        return value

    bounded.__name__ = "int"
    return bounded


def _estimate(options: dict[str, Any]) -> int:
    """A rough parameter count for a model that cannot be built on the meta device: its
    counts of layers (couplings, layers, steps, scales) times the hidden width squared."""
    counts = [v for k, v in options.items() if k in ("couplings", "layers", "steps", "scales")]
    hidden = options.get("hidden", 1)
    total = hidden * hidden if isinstance(hidden, int) else 1
    for value in counts:
        total *= value if isinstance(value, int) else 1
    return total


def check_model_size(config) -> None:
    """``InputError`` when the run's model would have more than ``MAX_PARAMETERS``
    parameters, counted on a model built without memory (PyTorch's meta device)."""
    import torch

    from flowforge.workbench.runs.kinds import build_model

    validate = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(False)
    try:
        with torch.device("meta"):
            count = sum(p.numel() for p in build_model(config).parameters())
    except (RuntimeError, NotImplementedError, ValueError):  # a layer checks real values
        count = _estimate(config.model_options)
    finally:
        torch.distributions.Distribution.set_default_validate_args(validate)
    if count > MAX_PARAMETERS:
        raise InputError(
            f"the model would have {count:,} parameters, more than flowforge trains "
            f"({MAX_PARAMETERS:,}); choose fewer layers or a smaller --hidden"
        )


# Named sets of ``flowforge train`` options (model, its options, the recipe): the
# options given on the command line win over a preset's.
PRESETS: dict[str, dict[str, Any]] = {"quality": QUALITY_PRESET}


def preset_text(name: str) -> str:
    """The options preset ``name`` stands for, as flags: ``--model nsf --coupling ...``."""
    flags = []
    for key, value in PRESETS[name].items():
        flag = "--" + key.replace("_", "-")
        flags.append(
            flag
            if value is True
            else f"{flag} {value:g}"
            if isinstance(value, float)
            else f"{flag} {value}"
        )
    return " ".join(flags)


def apply_preset(args: argparse.Namespace) -> None:
    """Fill the options ``args.preset`` names into ``args``, where none was given."""
    for key, value in PRESETS.get(getattr(args, "preset", None) or "", {}).items():
        if getattr(args, key, None) is None:
            setattr(args, key, value)


def add_model_arguments(group: argparse._ArgumentGroup) -> None:
    """``--preset``, ``--model`` and every declared option, each with its families' defaults."""
    group.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        help="a named set of options, which options given beside it override; quality: "
        f"{preset_text('quality')}",
    )
    group.add_argument(
        "--model",
        choices=sorted(FAMILIES),
        help=f"model family ({Points.default_model}; {Images.default_model} for images, "
        "--dataset digits)",
    )
    for name, option in declared_options().items():
        help_text = f"{option.help} ({defaults_text(name)})"
        if option.switch:
            group.add_argument(option.flag, action="store_const", const=True, help=help_text)
        elif option.choices:
            group.add_argument(option.flag, choices=option.choices, help=help_text)
        else:
            group.add_argument(option.flag, type=_parse(option), help=help_text)


def model_options_from(args: argparse.Namespace, family: Family) -> dict[str, Any]:
    """The builder's options: those given, else the builder's own defaults; a switch only
    when given. ``InputError`` for an option the family does not take."""
    for name, option in declared_options().items():
        if getattr(args, name) is not None and family.option(name) is None:
            takes = ", ".join(o.flag for o in family.options) or "no options"
            raise InputError(
                f"{option.flag} does not apply to --model {family.name}; it takes {takes}"
            )
    chosen = {}
    for option in family.options:
        value = getattr(args, option.name)
        if value is not None or not option.switch:
            chosen[option.name] = family.default(option.name) if value is None else value
    return chosen
