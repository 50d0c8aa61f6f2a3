"""``flowforge eval RUN``: the held-out NLL of a run, or the NLL of your own points, in nats."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from flowforge.errors import InputError
from flowforge.evaluate import NLLEstimate, log_likelihood, nll_estimate
from flowforge.workbench.cli import options

HELP = (
    "print a run's held-out NLL (nats per point, with standard error; bits/dim on the test "
    "set for images), or that of --data FILE"
)


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


def points_to_score(
    args: argparse.Namespace, standardization
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], str]:
    """The points in the model's (standardized) units, the context a conditional run's
    model needs for them (their one-hot labels), and a name for where they came from."""
    from flowforge.workbench.data import DATASETS
    from flowforge.workbench.datafiles import read_points
    from flowforge.workbench.runs.config import context_classes, load_data, read_config, run_context

    config = read_config(args.run)
    if args.data is None:
        _, heldout = load_data(config)
        name = "test set" if DATASETS[config.data["name"]].image else "held-out set"
        return heldout.points, run_context(config, heldout), name
    if context_classes(config):
        raise InputError(
            f"{args.run} is a conditional run (p(x | label)) and {args.data} has no labels; "
            "leave out --data to score the held-out set with its labels"
        )
    points = read_points(args.data, standardization.width)
    x = torch.as_tensor(standardization.transform(points), dtype=torch.float32)
    return x, (), str(args.data)


def scores(
    model, x: torch.Tensor, log_abs_det: float, *context: torch.Tensor
) -> tuple[NLLEstimate, NLLEstimate]:
    """NLL in the model's units, and in the data's original units (with the standardization's
    log-Jacobian: ``-(log q(standardize(x)) + log_abs_det)``), both in nats per point."""
    ll = log_likelihood(model, x, *context).double()
    return nll_estimate(ll), nll_estimate(ll + log_abs_det)


def _stored_entropy(run: Path) -> NLLEstimate | None:
    """The true entropy ``flowforge train`` stored in ``metrics.json``, if it is there."""
    from flowforge.workbench.runs.config import RunError, read_metrics
    from flowforge.workbench.scoring.truth import ENTROPY_SAMPLES

    try:
        heldout = read_metrics(run)["heldout"]
        return NLLEstimate(heldout["true_entropy"], heldout["true_entropy_stderr"], ENTROPY_SAMPLES)
    except (RunError, KeyError, TypeError):  # no metrics, or an older run's: estimate it
        return None


def floor_for(run: Path, model, x: torch.Tensor, *context: torch.Tensor):
    """How far the model is from the truth at ``x``: the gap to the true entropy and the
    paired KL (a ``Floor``) when the run's data has a known density, sample distances (a
    ``SampleCheck``) when it has only a sampler, else ``None``. The entropy is the one
    ``flowforge train`` stored in ``metrics.json`` when it is there. With the one-hot
    labels of a conditional run as ``context``, the truth is each point's own moon."""
    from flowforge.workbench.runs.config import read_config
    from flowforge.workbench.scoring.truth import (
        conditional_floor_of,
        true_distribution,
        truth_scores,
    )

    config = read_config(run)
    truth = true_distribution(config.data, config.standardization)
    if truth is None:
        return None
    log_q = log_likelihood(model, x, *context).cpu()
    if context:
        return conditional_floor_of(truth, x.cpu(), context[0].argmax(dim=1).cpu(), log_q)
    entropy = _stored_entropy(run) if truth.has_density else None
    return truth_scores(truth, x.cpu(), log_q, model, seed=config.seed, entropy=entropy)


def bits(model, standardized: NLLEstimate) -> dict:
    """The NLL in bits per dimension (and its standard error) for a flow over discrete
    images, as ``train`` records them (``image_metrics``); empty for other models."""
    from flowforge.workbench.runs.experiment import image_metrics

    metrics = image_metrics(model, standardized)
    return {k: metrics[k] for k in ("bits_per_dim", "bits_per_dim_stderr") if k in metrics}


def as_json(
    standardized: NLLEstimate, original: NLLEstimate, floor=None, image: dict | None = None
) -> str:
    from flowforge.workbench.files import json_safe

    record = {
        "nll": standardized.mean,
        "nll_original_units": original.mean,
        "stderr": standardized.stderr,
        "n": standardized.n,
        **(image or {}),
        **(floor.to_dict() if floor is not None else {}),
    }
    return json.dumps(json_safe(record))


def as_text(
    source: str,
    standardized: NLLEstimate,
    original: NLLEstimate,
    floor=None,
    image: dict | None = None,
) -> str:
    if image:  # images: bits per dimension first; pixel units are the model's units
        return (
            f"{source}: {image['bits_per_dim']:.4f} ± {image['bits_per_dim_stderr']:.4f} "
            f"bits/dim (NLL {standardized.mean:.4f} ± {standardized.stderr:.4f} nats per "
            f"image, n={standardized.n})"
        )
    lines = [
        f"{source}: NLL {standardized.mean:.4f} ± {standardized.stderr:.4f} nats per point "
        f"(n={standardized.n}, standardized units as trained)",
        f"{' ' * len(source)}  {original.mean:.4f} ± {original.stderr:.4f} nats per point "
        "in the data's original units",
    ]
    if floor is not None:
        lines.append(f"{' ' * len(source)}  {floor.describe()}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from flowforge.workbench.runs.config import load

    try:
        device = options.device(args.device)
    except ValueError as error:
        raise InputError(str(error)) from None
    model, standardization = load(args.run, device)
    x, context, source = points_to_score(args, standardization)
    standardized, original = scores(model, x, standardization.log_abs_det, *context)
    floor = floor_for(args.run, model, x, *context)
    if standardized.n_outside:
        print(
            f"note: {standardized.n_outside} of {standardized.n} points lie outside the model's "
            "support (log-likelihood -inf), so the NLL is infinite",
            file=sys.stderr,
        )
    image = bits(model, standardized)
    if args.json:
        print(as_json(standardized, original, floor, image))
    else:
        print(as_text(source, standardized, original, floor, image))
    return 0
