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
    parser.add_argument("-n", type=options.positive_int, default=10_000, help="samples")
    parser.add_argument(
        "-o", "--output", type=Path, required=True, metavar="FILE", help="a .npy or .csv file"
    )
    parser.add_argument("--seed", type=options.seed, default=0, help="random seed")
    parser.add_argument(
        "--label",
        type=options.non_negative_int,
        help="a conditional run: draw from p(x | label), e.g. one moon (default: every label "
        "in turn, as the data has them)",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")
    options.add_device(parser, default="cpu")


# Samples drawn, converted and written at a time: a multiple of 16 rows, so that torch's
# normal generator (which fills 16 values at a time) gives the numbers of one piece.
CHUNK = 65_536


def draw(model, standardization, n: int, seed: int, *context: torch.Tensor) -> np.ndarray:
    """``n`` samples, ``(n, width)`` float64 in original units; the same for the same ``seed``.

    With a context of ``n`` rows (a conditional model), sample ``i`` is drawn given row ``i``.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _draw(model, standardization, n, *context)


def _draw(model, standardization, n: int, *context: torch.Tensor) -> np.ndarray:
    """``draw`` from torch's current random state."""
    with torch.no_grad():
        if context:
            samples = model.sample(1, *context)[:, 0]
        else:
            samples = model.sample(n)
        samples = samples.double().cpu().numpy()
    return standardization.inverse_transform(samples)


def chunks(n: int, chunk: int = CHUNK) -> list[tuple[int, int]]:
    """``(start, rows)`` of each chunk of ``n`` samples."""
    return [(start, min(chunk, n - start)) for start in range(0, n, chunk)]


def _context(kind, folder: Path, label: int | None, start: int, rows: int, device):
    """The context rows of samples ``start`` to ``start + rows`` (the labels in turn,
    ``i % classes``, or ``--label``'s), without making those of the other samples."""
    offset = start % getattr(kind, "classes", None) if getattr(kind, "classes", None) else 0
    context = kind.sample_context(folder, label, offset + rows)
    return tuple(c[offset:].to(device) for c in context)


def write_samples(args: argparse.Namespace, folder: Path, config, model, device) -> None:
    """Draw ``args.n`` samples in chunks and stream them to ``args.output`` (atomically);
    ``RunError`` for a sample that is not finite (the file is then not written)."""
    from flowforge.workbench.cli.health import RETRAIN
    from flowforge.workbench.cli.stream import PointsWriter
    from flowforge.workbench.runs.config import RunError
    from flowforge.workbench.runs.kinds import run_kind

    kind, standardization = run_kind(config), config.standardization
    kind.sample_context(folder, args.label, 1)  # checks --label before anything is drawn
    with (
        torch.random.fork_rng(devices=[]),
        PointsWriter(args.output, args.n, standardization.width) as out,
    ):
        torch.manual_seed(args.seed)
        for start, rows in chunks(args.n):
            context = _context(kind, folder, args.label, start, rows, device)
            points = _draw(model, standardization, rows, *context)
            bad = np.flatnonzero(~np.isfinite(points).all(axis=1))
            if bad.size:
                raise RunError(
                    f"{folder}: sample {start + bad[0]} is not finite (NaN or infinite); the "
                    f"model is numerically unstable, so nothing was written; {RETRAIN}"
                )
            out.write(points)


def run(args: argparse.Namespace) -> int:
    from flowforge.workbench.cli.health import check_run
    from flowforge.workbench.cli.outputs import check_output_file
    from flowforge.workbench.datafiles import FORMATS
    from flowforge.workbench.runs.config import load_model, read_config, run_folder

    check_output_file(args.output, args.force, FORMATS)
    try:
        device = options.device(args.device)
    except ValueError as error:
        raise InputError(str(error)) from None
    folder = run_folder(args.run)
    config = read_config(folder)
    model = load_model(folder, config)
    check_run(folder, config, model)
    write_samples(args, folder, config, model.to(device), device)
    print(f"wrote {args.n} samples to {args.output}")
    return 0
