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


def run(args: argparse.Namespace) -> int:
    from flowforge.workbench.datafiles import FORMATS, write_points
    from flowforge.workbench.runs.config import load_model, read_config, run_folder
    from flowforge.workbench.runs.kinds import run_kind

    if args.output.suffix.lower() not in FORMATS:
        raise InputError(f"-o {args.output}: use a file name ending in .npy or .csv")
    if args.output.exists() and not args.force:
        raise InputError(f"{args.output} already exists; choose another name or pass --force")
    try:
        device = options.device(args.device)
    except ValueError as error:
        raise InputError(str(error)) from None
    folder = run_folder(args.run)
    config = read_config(folder)
    kind = run_kind(config)
    context = tuple(c.to(device) for c in kind.sample_context(folder, args.label, args.n))
    model, standardization = load_model(folder, config).to(device), config.standardization
    points = draw(model, standardization, args.n, args.seed, *context)
    write_points(args.output, points, force=args.force)
    print(f"wrote {args.n} samples to {args.output}")
    return 0
