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
from flowforge.workbench.runs.image_kind import Images
from flowforge.workbench.runs.kinds import Scored, run_kind

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
    args: argparse.Namespace, config, standardization
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], str]:
    """The points in the model's (standardized) units, the context the run's model needs
    for them (a conditional run's one-hot labels), and a name for where they came from."""
    from flowforge.workbench.datafiles import read_points
    from flowforge.workbench.runs.config import load_data

    kind = run_kind(config)
    if args.data is None:
        _, heldout = load_data(config)
        return heldout.points, kind.context(heldout), kind.heldout_name
    kind.check_points_file(args.run, args.data)
    points = read_points(args.data, standardization.width)
    x = torch.as_tensor(standardization.transform(points), dtype=torch.float32)
    return x, (), str(args.data)


def scores(
    model, x: torch.Tensor, log_abs_det: float, *context: torch.Tensor
) -> tuple[Scored, NLLEstimate]:
    """The points scored in the model's units, and their NLL in the data's original units
    (with the standardization's log-Jacobian: ``-(log q(standardize(x)) + log_abs_det)``),
    both in nats per point."""
    ll = log_likelihood(model, x, *context, exact=True)  # float64; overflow rescored
    return Scored(x, context, ll, nll_estimate(ll)), nll_estimate(ll + log_abs_det)


def _stored_entropy(run: Path) -> NLLEstimate | None:
    """The true entropy ``flowforge train`` stored in ``metrics.json``, if it is there."""
    from flowforge.workbench.runs.config import RunError, read_metrics
    from flowforge.workbench.scoring.truth import ENTROPY_SAMPLES

    try:
        heldout = read_metrics(run)["heldout"]
        return NLLEstimate(heldout["true_entropy"], heldout["true_entropy_stderr"], ENTROPY_SAMPLES)
    except (RunError, KeyError, TypeError):  # no metrics, or an older run's: estimate it
        return None


def as_json(scored: Scored, original: NLLEstimate, extra: dict) -> str:
    """One JSON object: the NLL in both units, its standard error and ``n``, then what
    the run's kind scores beside it (``extra``)."""
    from flowforge.workbench.files import json_safe

    standardized = scored.estimate
    record = {
        "nll": standardized.mean,
        "nll_original_units": original.mean,
        "stderr": standardized.stderr,
        "n": standardized.n,
        **extra,
    }
    return json.dumps(json_safe(record))


def truth_scores(args: argparse.Namespace, config, model, scored: Scored, folder: Path) -> dict:
    """What the run's kind scores beside the NLL. For points, the floor comparison (the gap
    to the true entropy, the paired KL, or sample distances) means something only for
    points drawn from the truth: the run's own held-out set, never a file's points."""
    kind = run_kind(config)
    if args.data is not None and not isinstance(kind, Images):
        return {}
    return kind.scores(config, model, scored, entropy=_stored_entropy(folder))


def run(args: argparse.Namespace) -> int:
    from flowforge.workbench.cli.health import check_run
    from flowforge.workbench.runs.config import load_model, read_config, run_folder

    try:
        device = options.device(args.device)
    except ValueError as error:
        raise InputError(str(error)) from None
    folder = run_folder(args.run)
    config = read_config(folder)
    model = load_model(folder, config)
    check_run(folder, config, model)
    model = model.to(device)
    if "target" in config.extra:  # flowforge train --target: scored by its diagnosis
        return _eval_target(args, folder, config, model)
    standardization = config.standardization
    x, context, source = points_to_score(args, config, standardization)
    scored, original = scores(model, x, standardization.log_abs_det, *context)
    extra = truth_scores(args, config, model, scored, folder)
    if scored.estimate.n_outside:
        print(
            f"note: {scored.estimate.n_outside} of {scored.estimate.n} points lie outside the "
            "model's support (log-likelihood -inf), so the NLL is infinite",
            file=sys.stderr,
        )
    if args.data is not None and not extra:
        print(
            f"note: no gap to the true entropy or KL(truth ‖ model) for {args.data}: they "
            f"hold only for points drawn from the truth, as `flowforge eval {args.run}` "
            "scores the held-out set",
            file=sys.stderr,
        )
    if args.json:
        print(as_json(scored, original, extra))
    else:
        print(run_kind(config).eval_text(source, scored.estimate, original, extra))
    return 0


def _eval_target(args: argparse.Namespace, folder: Path, config, model) -> int:
    """A target run's diagnosis (``flowforge.importance.diagnose``), redrawn from its seed."""
    from flowforge.workbench.files import json_safe
    from flowforge.workbench.runs.target_kind import diagnosis_of

    if args.data is not None:
        raise InputError(
            f"{folder} samples a target density and has no data to score; leave out --data "
            "to print its diagnosis (ESS, log Z with error bars, the broad-proposal check)"
        )
    diagnosis = diagnosis_of(model.cpu(), config)
    if args.json:
        print(json.dumps(json_safe(diagnosis.as_dict())))
    else:
        print(run_kind(config).eval_text(str(folder), diagnosis))
    return 0
