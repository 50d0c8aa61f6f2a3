"""Option types and options shared by several subcommands."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

import torch

from flowforge.device import resolve_device


def _number(kind: type, text: str) -> int | float:
    try:
        value = kind(text)
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {noun}, got {text!r}") from None
    if isinstance(value, float) and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def number(kind: type) -> Callable[[str], int | float]:
    """A parser of finite numbers of ``kind`` (``int`` or ``float``)."""

    def parse(text: str) -> int | float:
        return _number(kind, text)

    parse.__name__ = kind.__name__
    return parse


def at_least(kind: type, minimum: float) -> Callable[[str], int | float]:
    """A parser of numbers of ``kind`` no smaller than ``minimum``."""

    def parse(text: str) -> int | float:
        value = _number(kind, text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum:g}, got {value}")
        return value

    parse.__name__ = kind.__name__
    return parse


def positive_int(text: str) -> int:
    """An integer >= 1."""
    value = _number(int, text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def at_least_two(text: str) -> int:
    """An integer >= 2 (a data set needs two points to be standardized)."""
    value = _number(int, text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2, got {value}")
    return value


def non_negative_int(text: str) -> int:
    value = _number(int, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


# torch.manual_seed takes seeds below 2**64.
MAX_SEED = 2**64 - 1


def seed(text: str) -> int:
    """A random seed: an integer from 0 to ``MAX_SEED``."""
    value = _number(int, text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be from 0 to 2**64 - 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = _number(float, text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, got {value}")
    return value


def degrees_of_freedom(text: str) -> float:
    """A positive number of degrees of freedom, or ``inf`` (Gaussian)."""
    if text.strip().lower() in ("inf", "infinity"):
        return math.inf
    return positive_float(text)


def non_negative_float(text: str) -> float:
    value = _number(float, text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def unit_fraction(text: str) -> float:
    """A number in [0, 1)."""
    value = _number(float, text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 0 and below 1, got {value}")
    return value


def dataset_name(text: str) -> str:
    """The name of a data set in ``flowforge.workbench.data.DATASETS``, an alias
    (``flowforge.workbench.data.ALIASES``) turned into the name it stands for."""
    from flowforge.workbench.data import dataset

    try:
        return dataset(text).name
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_device(
    parser: argparse.ArgumentParser, default: str | None = "auto", when_none: str = ""
) -> None:
    """``--device``, defaulting to ``default``; with ``default=None`` the command chooses,
    and ``when_none`` says how (it is shown as the default in --help)."""
    shown = default if default is not None else when_none
    if not shown:
        raise ValueError("add_device(default=None) needs when_none, the default in words")
    parser.add_argument(
        "--device",
        default=default,
        help="'auto' (CUDA, then MPS, then the CPU), 'cpu', 'cuda', 'cuda:1' or 'mps' "
        f"(default: {shown})",
    )


DEVICE_TYPES = ("cpu", "cuda", "mps")


def device(name: str) -> torch.device:
    """The device ``name`` names, checked to exist on this machine (else ``ValueError``)."""
    chosen = resolve_device(name)
    if chosen.type not in DEVICE_TYPES:
        raise ValueError(
            f"--device {name}: flowforge trains and evaluates on {', '.join(DEVICE_TYPES)}; "
            "use --device auto, cpu, cuda or mps"
        )
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available here; use --device auto or cpu")
    if chosen.type == "cuda" and (chosen.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    mps = getattr(torch.backends, "mps", None)
    if chosen.type == "mps" and not (mps is not None and mps.is_available()):
        raise ValueError(f"--device {name}: MPS is not available here; use --device auto or cpu")
    return chosen
