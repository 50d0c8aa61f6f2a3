"""``flowforge eval RUN``: the held-out NLL of a run, or the NLL of your own points, in nats."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from flowforge.cli import options
from flowforge.cli.main import UserError
from flowforge.evaluate import NLLEstimate, log_likelihood, nll_estimate

HELP = "print a run's held-out NLL (nats per point, with standard error), or that of --data FILE"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, metavar="RUN", help="a run folder from flowforge train")
    parser.add_argument(
        "--data",
        type=Path,
        metavar="FILE",
        help="points to score (.npy or .csv, one point per row, in the data's original units)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    options.add_device(parser, default="cpu")


def points_to_score(args: argparse.Namespace, standardization) -> tuple[torch.Tensor, str]:
    """The points in the model's (standardized) units, and a name for where they came from."""
    from flowforge.datafiles import read_points
    from flowforge.runs import load_data, read_config

    if args.data is None:
        _, heldout = load_data(read_config(args.run))
        return heldout.points, "held-out set"
    points = read_points(args.data, standardization.width)
    return torch.as_tensor(standardization.transform(points), dtype=torch.float32), str(args.data)


def scores(model, x: torch.Tensor, log_abs_det: float) -> tuple[NLLEstimate, NLLEstimate]:
    """NLL in the model's units, and in the data's original units (with the standardization's
    log-Jacobian: ``-(log q(standardize(x)) + log_abs_det)``), both in nats per point."""
    ll = log_likelihood(model, x).double()
    return nll_estimate(ll), nll_estimate(ll + log_abs_det)


def as_json(standardized: NLLEstimate, original: NLLEstimate) -> str:
    from flowforge.files import finite_or_none

    record = {
        "nll": standardized.mean,
        "nll_original_units": original.mean,
        "stderr": standardized.stderr,
        "n": standardized.n,
    }
    return json.dumps(finite_or_none(record))


def as_text(source: str, standardized: NLLEstimate, original: NLLEstimate) -> str:
    return (
        f"{source}: NLL {standardized.mean:.4f} ± {standardized.stderr:.4f} nats per point "
        f"(n={standardized.n}, standardized units as trained)\n"
        f"{' ' * len(source)}  {original.mean:.4f} ± {original.stderr:.4f} nats per point "
        "in the data's original units"
    )


def run(args: argparse.Namespace) -> int:
    from flowforge.runs import load

    try:
        device = options.device(args.device)
    except ValueError as error:
        raise UserError(str(error)) from None
    model, standardization = load(args.run, device)
    x, source = points_to_score(args, standardization)
    standardized, original = scores(model, x, standardization.log_abs_det)
    if standardized.n_outside:
        print(
            f"note: {standardized.n_outside} of {standardized.n} points lie outside the model's "
            "support (log-likelihood -inf), so the NLL is infinite",
            file=sys.stderr,
        )
    print(as_json(standardized, original) if args.json else as_text(source, standardized, original))
    return 0
