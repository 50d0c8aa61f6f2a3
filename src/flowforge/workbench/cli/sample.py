"""``flowforge sample RUN -n N -o FILE``: samples of a trained flow, in original units."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from flowforge.errors import InputError
from flowforge.workbench.cli import options

HELP = "draw samples from a run's model and write them (.npy or .csv) in the data's original units"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, metavar="RUN", help="a run folder from flowforge train")
    parser.add_argument("-n", type=options.positive_int, default=10_000, help="samples (10000)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="a .npy or .csv file"
    )
    parser.add_argument("--seed", type=options.non_negative_int, default=0, help="(0)")
    parser.add_argument(
        "--label",
        type=options.non_negative_int,
        help="a conditional run: draw from p(x | label), e.g. one moon (default: every label "
        "in turn, as the data has them)",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    options.add_device(parser, default="cpu")


def draw(model, standardization, n: int, seed: int, *context: torch.Tensor) -> np.ndarray:
    """``n`` samples, ``(n, width)`` float64 in original units; the same for the same ``seed``.

    With a context of ``n`` rows (a conditional model), sample ``i`` is drawn given row ``i``.
    """
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        if context:
            samples = model.sample(1, *context)[:, 0]
        else:
            samples = model.sample(n)
        samples = samples.double().cpu().numpy()
    return standardization.inverse_transform(samples)


def sample_context(run: Path, label: int | None, n: int) -> tuple[torch.Tensor, ...]:
    """The context rows for ``n`` samples of a run: ``label``'s one-hot row ``n`` times, or
    the labels in turn (``0, 1, 0, 1, ...``); none for an unconditional run."""
    from flowforge.conditional import label_context
    from flowforge.workbench.runs.config import context_classes, read_config

    classes = context_classes(read_config(run))
    if not classes:
        if label is not None:
            raise InputError(f"{run} is not conditional; train with --conditional to use --label")
        return ()
    if label is not None and label >= classes:
        raise InputError(f"--label {label}: this run knows labels 0 to {classes - 1}")
    labels = torch.full((n,), label) if label is not None else torch.arange(n) % classes
    return (label_context(labels, classes),)


def run(args: argparse.Namespace) -> int:
    from flowforge.workbench.datafiles import FORMATS, write_points
    from flowforge.workbench.runs.config import load

    if args.output.suffix.lower() not in FORMATS:
        raise InputError(f"-o {args.output}: use a file name ending in .npy or .csv")
    if args.output.exists() and not args.force:
        raise InputError(f"{args.output} already exists; choose another name or pass --force")
    try:
        device = options.device(args.device)
    except ValueError as error:
        raise InputError(str(error)) from None
    context = tuple(c.to(device) for c in sample_context(args.run, args.label, args.n))
    model, standardization = load(args.run, device)
    points = draw(model, standardization, args.n, args.seed, *context)
    write_points(args.output, points, force=args.force)
    print(f"wrote {args.n} samples to {args.output}")
    return 0
