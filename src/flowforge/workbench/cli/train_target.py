"""``flowforge train --target NAME``: a flow trained as a sampler of a known density
(``flowforge.targets``), written as a run folder (``runs.target_kind``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flowforge.errors import InputError
from flowforge.workbench.cli import options

# What --target runs are trained with unless given: the measured defaults of fit_target.
RECIPE = {
    "method": "modes",
    "steps": 3000,
    "time_budget": None,
    "batch_size": 512,
    "lr": 1e-3,
    "schedule": "cosine",
    "warmup": 100,
    "ema": 0.98,
}
# Options of a target run (each taken from config.json on --resume).
TARGET_OPTIONS = (
    "target",
    "method",
    "iterations",
    "time_budget",
    "components",
    "df",
    "diagnosis_samples",
)
# The model options a sampler takes from the command line (training.sampler.sampler).
MODEL_FLAGS = ("layers", "hidden", "bins", "base", "components", "df")
# Sample-based options that a target run does not take.
NOT_FOR_TARGETS = (
    "dataset",
    "n_samples",
    "n_heldout",
    "noise",
    "model",
    "conditional",
    "epochs",
    "no_shuffle",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from flowforge.training.target import METHODS

    group = parser.add_argument_group(
        "sampling a target density (--target; then --batch-size, --lr, --schedule, "
        "--warmup, --ema, --seed set fit_target's recipe and --layers, --hidden, --bins, --base "
        "the sampler's)"
    )
    group.add_argument(
        "--target",
        metavar="NAME",
        help="train a sampler of this target "
        "(flowforge.targets.NAMES) by fit_target instead of fitting data",
    )
    group.add_argument(
        "--method", choices=METHODS, help=f"how fit_target trains (default: {RECIPE['method']})"
    )
    group.add_argument(
        "--iterations",
        type=options.positive_int,
        help=f"optimizer steps (default: {RECIPE['steps']})",
    )
    group.add_argument(
        "--components",
        type=options.positive_int,
        help="components of the sampler's mixture base (default: 64 up to 4 dimensions, else 1)",
    )
    group.add_argument(
        "--df",
        type=options.degrees_of_freedom,
        metavar="DF",
        help="Student-t components of the sampler's mixture base with DF degrees of freedom, "
        "or inf for Gaussian ones (default: 5 for a target without bounds, else inf)",
    )
    group.add_argument(
        "--diagnosis-samples",
        type=options.at_least_two,
        metavar="N",
        help="samples the diagnosis draws from the flow and from the broad proposal "
        "(default: 100000)",
    )
    group.add_argument(
        "--time-budget",
        type=options.positive_float,
        metavar="CPU_SECONDS",
        help="train for this many CPU seconds (at most --iterations steps)",
    )


def is_target_run(config) -> bool:
    return "target" in config.extra


def _check(args: argparse.Namespace) -> None:
    import flowforge.targets as targets

    if args.target not in targets.NAMES:
        raise InputError(
            f"unknown target {args.target!r}; choose one of {', '.join(targets.NAMES)}"
        )
    given = [n for n in NOT_FOR_TARGETS if getattr(args, n, None) not in (None, False)]
    if given:
        flags = ", ".join("--" + n.replace("_", "-") for n in given)
        raise InputError(f"--target trains on a density, not data: drop {flags}")


def recipe_from(args: argparse.Namespace) -> dict:
    recipe = dict(RECIPE)
    for name in recipe:
        value = getattr(args, "iterations" if name == "steps" else name, None)
        if value is not None:
            recipe[name] = value
    return recipe


def model_from(args: argparse.Namespace) -> dict:
    """The sampler's options given (``--layers``, ``--hidden``, ``--bins``); the rest are
    ``training.sampler``'s defaults."""
    return {k: getattr(args, k) for k in MODEL_FLAGS if getattr(args, k, None) is not None}


def run(args: argparse.Namespace, resume_config=None) -> int:
    from flowforge.workbench.cli.outputs import check_output_folder
    from flowforge.workbench.cli.train import default_output
    from flowforge.workbench.runs.experiment import start_run
    from flowforge.workbench.runs.target_kind import target_config, train_target_run

    if resume_config is None:
        _check(args)
        if args.output is not None:
            check_output_folder(args.output)
        seed = 0 if args.seed is None else args.seed
        config = target_config(
            args.target, model_from(args), recipe_from(args), seed, args.diagnosis_samples
        )
        folder = start_run(args.output or default_output(), config)
    else:
        config, folder = resume_config, Path(args.resume)
    metrics = train_target_run(folder, config, progress=not args.quiet)
    d = metrics["diagnosis"]
    print(
        "\n".join(
            [
                *d.get("warnings", []),
                f"ESS {100 * d['ess']:.1f} %, log Ẑ {d['log_z']:.4f} ± {d['log_z_se']:.4f} "
                f"(broad proposal: {d['broad_log_z']:.4f} ± {d['broad_log_z_se']:.4f})",
                *(
                    [f"log Ẑ − log Z = {d['log_z_error']:+.4f}"]
                    if d.get("log_z_error") is not None
                    else []
                ),
                f"run folder: {folder} (config.json, model.safetensors, metrics.json, "
                "figures, report.html)",
                f"evaluate it: flowforge eval {folder}",
            ]
        )
    )
    return 0
