"""``flowforge sample RUN -n N -o FILE``: samples of a trained flow, in original units."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from flowforge.cli import options
from flowforge.cli.main import UserError

HELP = "draw samples from a run's model and write them (.npy or .csv) in the data's original units"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, metavar="RUN", help="a run folder from flowforge train")
    parser.add_argument("-n", type=options.positive_int, default=10_000, help="samples (10000)")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="a .npy or .csv file"
    )
    parser.add_argument("--seed", type=options.non_negative_int, default=0, help="(0)")
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    options.add_device(parser, default="cpu")


def draw(model, standardization, n: int, seed: int) -> np.ndarray:
    """``n`` samples, ``(n, width)`` float64 in original units; the same for the same ``seed``."""
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        samples = model.sample(n).double().cpu().numpy()
    return standardization.inverse_transform(samples)


def run(args: argparse.Namespace) -> int:
    from flowforge.datafiles import FORMATS, write_points
    from flowforge.runs import load

    if args.output.suffix.lower() not in FORMATS:
        raise UserError(f"-o {args.output}: use a file name ending in .npy or .csv")
    if args.output.exists() and not args.force:
        raise UserError(f"{args.output} already exists; choose another name or pass --force")
    try:
        device = options.device(args.device)
    except ValueError as error:
        raise UserError(str(error)) from None
    model, standardization = load(args.run, device)
    write_points(args.output, draw(model, standardization, args.n, args.seed), force=args.force)
    print(f"wrote {args.n} samples to {args.output}")
    return 0
