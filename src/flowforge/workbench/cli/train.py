"""``flowforge train``: the notebook's experiment (moons, RealNVP, maximum likelihood) as a run,
on the moons, any data set of the toy suite, or the digits' images (``--dataset``)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np

from flowforge.errors import InputError
from flowforge.families import FAMILIES
from flowforge.training import DEFAULT_RECIPE
from flowforge.training.distributed import DEFAULT_TIMEOUT
from flowforge.workbench.cli import options, train_target
from flowforge.workbench.cli.model_options import (
    add_model_arguments,
    apply_preset,
    check_model_size,
    declared_options,
    model_options_from,
)
from flowforge.workbench.cli.outputs import check_output_folder, writing
from flowforge.workbench.cli.resume import check_resume, finished
from flowforge.workbench.data import DATASETS, DataSet, PointData, names_help
from flowforge.workbench.runs.config import RunConfig, read_config
from flowforge.workbench.runs.kinds import SIZES, new_kind, run_kind

HELP = (
    "train a flow on the two moons, a toy data set or the digits and write a run folder "
    "(weights, metrics, figures, report)"
)

DEFAULT_DATASET = "two_moons"
# Data options the command line sets; each data set takes some of them (DataSet.options).
DATA_FLAGS = ("noise",)
# Recipe options the command line sets; DEFAULT_RECIPE and the data set fill in the rest.
RECIPE_FLAGS = ("epochs", "batch_size", "lr", "schedule", "warmup", "ema")
# Options that define a run; --resume takes them all from the run's config.json.
RUN_OPTIONS = (
    "dataset",
    *SIZES,
    *DATA_FLAGS,
    "preset",
    "model",
    *declared_options(),
    "conditional",
    *RECIPE_FLAGS,
    "no_shuffle",
    "seed",
    "output",
    *train_target.TARGET_OPTIONS,
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    _add_data_arguments(parser)
    model = parser.add_argument_group(
        "model (the notebook's 10.5 a; each family's defaults in brackets)"
    )
    add_model_arguments(model)
    model.add_argument(
        "--conditional",
        action="store_const",
        const=True,
        help="learn p(x | moon): condition every layer on the one-hot moon label",
    )
    _add_recipe_arguments(parser)
    _add_run_arguments(parser)
    train_target.add_arguments(parser)


def _add_data_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (the notebook's section 10.5, or the toy suite)")
    data.add_argument(
        "--dataset",
        type=options.dataset_name,
        metavar="NAME",
        help=f"data set (default: two_moons): one of {names_help()}",
    )
    data.add_argument(
        "--n-samples",
        type=options.at_least_two,
        help=f"training points (default: {SIZES['n_samples']})",
    )
    data.add_argument(
        "--n-heldout",
        type=options.at_least_two,
        help=f"held-out points (default: {SIZES['n_heldout']})",
    )
    data.add_argument(
        "--noise",
        type=options.non_negative_float,
        help="two_moons only: the moons' noise (default: 0.1)",
    )


def _add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    recipe = parser.add_argument_group("training (defaults: flowforge.DEFAULT_RECIPE)")
    recipe.add_argument(
        "--epochs",
        type=options.positive_int,
        help=f"passes over the data (default: {DEFAULT_RECIPE.epochs})",
    )
    recipe.add_argument(
        "--batch-size",
        type=options.positive_int,
        help=f"points per step (default: {DEFAULT_RECIPE.batch_size})",
    )
    recipe.add_argument(
        "--lr",
        type=options.positive_float,
        help=f"Adam's peak learning rate (default: {DEFAULT_RECIPE.lr})",
    )
    recipe.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        help=f"learning-rate schedule (default: {DEFAULT_RECIPE.schedule})",
    )
    recipe.add_argument(
        "--warmup",
        type=options.non_negative_int,
        help=f"steps of linear learning-rate warm-up (default: {DEFAULT_RECIPE.warmup})",
    )
    recipe.add_argument(
        "--ema",
        type=options.unit_fraction,
        metavar="DECAY",
        help="decay of the weight average that is evaluated and kept, in [0, 1); 0: none "
        f"(default: {DEFAULT_RECIPE.ema})",
    )
    recipe.add_argument(
        "--no-shuffle",
        action="store_const",
        const=True,
        help="visit the points in the same order every epoch (the notebook's loader)",
    )


def _add_run_arguments(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=options.seed, help="data, init and batch order (default: 0)")
    options.add_device(run, default=None, when_none="auto on a new run; on --resume, the run's")
    run.add_argument("--output", "-o", type=Path, help="run folder (default: runs/<time>)")
    run.add_argument(
        "--resume", type=Path, metavar="RUN", help="continue an interrupted run from its checkpoint"
    )
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument(
        "--timeout",
        type=options.positive_float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help="under torchrun: how long a process waits for the others before the run "
        "fails (default: %(default)g)",
    )


def _value(args: argparse.Namespace, name: str, default):
    value = getattr(args, name)
    return default if value is None else value


def recipe_from(args: argparse.Namespace, dataset: DataSet | None = None) -> dict:
    """``fit``'s keyword arguments: ``DEFAULT_RECIPE``, then the data set's own defaults
    (``DataSet.recipe``), then the options given."""
    recipe = {**DEFAULT_RECIPE.to_dict(), **(dataset.recipe if dataset is not None else {})}
    for name in RECIPE_FLAGS:
        recipe[name] = _value(args, name, recipe[name])
    recipe["shuffle"] = not args.no_shuffle
    return recipe


def data_options_from(args: argparse.Namespace, data: DataSet) -> dict:
    """The data set's options: those given, else its defaults. Raises ``InputError`` for an
    option it does not take, and for ``--conditional`` on a set without ``p(x | label)``."""
    chosen = {}
    for flag in DATA_FLAGS:
        value = getattr(args, flag)
        if flag in data.options:
            chosen[flag] = data.options[flag] if value is None else value
        elif value is not None:
            takes = ", ".join(f"--{f}" for f in data.options) or "no data options"
            raise InputError(f"--{flag} does not apply to --dataset {data.name}; it takes {takes}")
    if args.conditional and not data.conditional:
        known = ", ".join(name for name, d in DATASETS.items() if d.conditional)
        raise InputError(
            f"--conditional needs the true p(x | label), which flowforge knows for {known}; "
            f"train --dataset {data.name} without it"
        )
    return chosen


class NewRun(NamedTuple):
    """A run about to be made: its configuration and its data, drawn once."""

    config: RunConfig
    train: PointData
    heldout: PointData


def new_run(args: argparse.Namespace) -> NewRun:
    """The run the options describe: its configuration, and the training and held-out
    data it is trained and scored on (the standardization fitted to the training part)."""
    apply_preset(args)  # --preset's options, where none was given
    dataset = DATASETS[_value(args, "dataset", DEFAULT_DATASET)]
    kind = new_kind(dataset, bool(args.conditional))
    sizes = {name: getattr(args, name) for name in SIZES}
    data = {**kind.sizes(dataset, sizes), **data_options_from(args, dataset)}
    family = FAMILIES[_value(args, "model", kind.default_model)]
    kind.check_family(family, dataset)
    model = model_options_from(args, family)
    seed = _value(args, "seed", 0)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # the error below says it all
            train, heldout = dataset.splits(seed=seed, **data)
    except ValueError as error:  # e.g. a noise so large that the points are not finite
        given = ", ".join(f"--{k.replace('_', '-')} {v}" for k, v in data.items())
        raise InputError(
            f"--dataset {dataset.name} cannot be drawn with {given} ({error}); "
            "choose smaller values"
        ) from None
    config = RunConfig(
        model=family.name,
        model_options={**kind.model_options(train), **model},
        data={"name": dataset.name, **data},
        standardization=train.standardization,
        recipe=recipe_from(args, dataset),
        seed=seed,
        device=args.device or "auto",
        extra=kind.config_extra(train),
    )
    check_model_size(config)
    return NewRun(config, train, heldout)


def default_output() -> Path:
    """A new, empty ``runs/<date-time>`` folder (``-2``, ``-3``, ... when that one is
    taken), made atomically, so two launches in the same second never share one."""
    from flowforge.workbench.runs.claim import claim_new_run

    return claim_new_run(Path("runs") / time.strftime("%Y%m%d-%H%M%S"))


def _summary(config: RunConfig, outcome) -> str:
    lines = run_kind(config).summary(
        outcome.heldout, outcome.history.epochs, outcome.metrics["heldout"]
    )
    lines += [
        f"run folder: {outcome.folder} (config.json, model.safetensors, metrics.json, "
        "figures, report.html)",
        f"evaluate it: flowforge eval {outcome.folder}",
    ]
    return "\n".join(lines)


def _diverged(error: FloatingPointError, folder: Path, config: RunConfig) -> str:
    """The one-line explanation of a diverged run: what is kept, and the likely cause."""
    from flowforge.workbench.runs.config import CHECKPOINT

    kept = (
        f"the last good epoch is kept in {folder / CHECKPOINT}"
        if (folder / CHECKPOINT).exists()
        else "no epoch completed"
    )
    hint = ""
    if config.model_options.get("base") == "uniform":
        hint = (
            "; with a uniform base the NLL is infinite as soon as the flow maps a point "
            "outside the base's support (the notebook's question 10.6 b)"
        )
    return f"{error}; {kept}{hint}"


def _check_outcome(outcome, config: RunConfig) -> None:
    """``RunError`` when the finished run's weights are not finite or its held-out NLL is
    NaN, infinite or absurd: such a run is never reported as a success (and ``eval`` and
    ``sample`` refuse it)."""
    from flowforge.workbench.cli.health import check_heldout, check_weights, dimensions

    check_weights(outcome.model, outcome.folder)
    after = f"after {outcome.history.epochs} epoch{'s' * (outcome.history.epochs != 1)}"
    check_heldout(outcome.heldout.mean, dimensions(config), outcome.folder, after)


def _device(name: str):
    """The device ``name`` names, this process's own GPU under ``torchrun``."""
    from flowforge.training.distributed import local_device

    try:
        return local_device(options.device(name))
    except ValueError as error:
        raise InputError(str(error)) from None


def _create(output: Path, config: RunConfig) -> Path:
    """``start_run`` (which undoes a start that fails, the folder included when it made
    it); a file-system error is an ``InputError`` naming the file."""
    from flowforge.workbench.files import file_error
    from flowforge.workbench.runs.experiment import start_run

    try:
        with writing(output):
            return start_run(output, config)
    except OSError as error:
        raise InputError(file_error(error)) from None


def _start(args: argparse.Namespace, world) -> tuple[Path, RunConfig, NewRun | None]:
    """The first process draws the data and creates the run folder; every process gets
    its path and configuration (or the error), the first also the data."""
    from flowforge.training.distributed import broadcast_object

    prepared = folder = config = error = None
    if world.is_main:
        try:
            if args.output is not None:
                check_output_folder(args.output)
            prepared = new_run(args)
            config = prepared.config
            folder = _create(args.output or default_output(), config)
        except InputError as raised:
            if not world.distributed:
                raise
            error = str(raised)
    folder, config, error = broadcast_object((folder, config, error), world)
    if error is not None:
        raise InputError(error)
    return folder, config, prepared


def _check_batch(config: RunConfig | None, args: argparse.Namespace, world) -> None:
    """``InputError`` when the global batch cannot be split between the processes (before
    a run folder is made for nothing)."""
    batch = config.recipe["batch_size"] if config is not None else None
    batch = batch or _value(args, "batch_size", DEFAULT_RECIPE.batch_size)
    if world.size > batch:
        raise InputError(
            f"batch size {batch} (the global batch) cannot be split between "
            f"{world.size} processes; use --batch-size {world.size} or more, or fewer "
            "processes"
        )


def run(args: argparse.Namespace) -> int:
    from flowforge.training.distributed import DistributedError, LaunchError, distributed
    from flowforge.workbench.runs.experiment import train_run

    config = prepared = None
    if args.resume is not None:
        check_resume(args, RUN_OPTIONS)
        config = read_config(args.resume)  # the one reading of config.json
        done = finished(args.resume, config)
        if done is not None:
            print(done)
            return 0
        if train_target.is_target_run(config):
            return train_target.run(args, config)
    elif args.target is not None:
        return train_target.run(args)
    name = args.device or (config.device if config is not None else "auto")
    with distributed(_device(name), args.timeout) as (world, device):
        _check_batch(config, args, world)
        folder = args.resume
        if folder is None:
            folder, config, prepared = _start(args, world)
        data = (prepared.train, prepared.heldout) if prepared is not None else None
        try:
            outcome = train_run(
                folder,
                device=device,
                progress=not args.quiet,
                world=world,
                config=config,
                data=data,
            )
        except FloatingPointError as error:
            raise InputError(_diverged(error, folder, config)) from None
        except DistributedError as error:
            raise InputError(f"{error}: flowforge train --resume {folder}") from None
        except LaunchError as error:
            raise InputError(str(error)) from None
        except KeyboardInterrupt:
            if world.is_main:
                print(f"stopped; continue with: flowforge train --resume {folder}", file=sys.stderr)
            raise
    _check_outcome(outcome, config)
    if world.is_main:
        print(_summary(config, outcome))
    return 0
