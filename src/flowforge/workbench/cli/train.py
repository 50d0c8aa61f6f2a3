"""``flowforge train``: the notebook's experiment (moons, RealNVP, maximum likelihood) as a run,
on the moons, any data set of the toy suite, or the digits' images (``--dataset``)."""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

from flowforge.errors import InputError
from flowforge.families import BASES, BUILDERS
from flowforge.training import DEFAULT_RECIPE
from flowforge.training.distributed import DEFAULT_TIMEOUT
from flowforge.workbench.cli import options
from flowforge.workbench.data import DATASETS, DataSet
from flowforge.workbench.runs.config import RunConfig, read_config

HELP = (
    "train a flow on the two moons, a toy data set or the digits and write a run folder "
    "(weights, metrics, figures, report)"
)

DATA_DEFAULTS = {"n_samples": 100_000, "n_heldout": 20_000}
DEFAULT_DATASET = "two_moons"
# Data options the command line sets; each data set takes some of them (DataSet.options).
DATA_FLAGS = ("noise",)
DEFAULT_MODEL = "realnvp"
# Builder options the command line sets; each builder takes some of them (its defaults
# fill in what is not given; an option a builder does not take is an error).
MODEL_FLAGS = (
    "couplings",
    "layers",
    "hidden",
    "bins",
    "scales",
    "steps",
    "coupling",
    "zero_init",
    "base",
)
DEFAULT_IMAGE_MODEL = "multiscale"
# Builder options an image data set fills in (from its ImageFormat): an image model
# takes them, a model of points does not.
IMAGE_OPTIONS = ("image_shape", "levels")
SWITCHES = ("coupling", "zero_init")  # recorded in config.json only when given
# Options that define a run; --resume takes them all from the run's config.json.
RUN_OPTIONS = (
    "dataset",
    "n_samples",
    "n_heldout",
    *DATA_FLAGS,
    "model",
    *MODEL_FLAGS,
    "conditional",
    "epochs",
    "batch_size",
    "lr",
    "schedule",
    "no_shuffle",
    "seed",
    "output",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data (the notebook's section 10.5, or the toy suite)")
    data.add_argument(
        "--dataset",
        type=options.dataset_name,
        metavar="NAME",
        help=f"data set (two_moons): one of {', '.join(DATASETS)}",
    )
    data.add_argument("--n-samples", type=options.at_least_two, help="training points (100000)")
    data.add_argument("--n-heldout", type=options.at_least_two, help="held-out points (20000)")
    data.add_argument(
        "--noise", type=options.non_negative_float, help="two_moons only: the moons' noise (0.1)"
    )
    model = parser.add_argument_group("model (the notebook's 10.5 a)")
    model.add_argument(
        "--model",
        choices=sorted(BUILDERS),
        help="model family (realnvp; multiscale for --dataset digits)",
    )
    model.add_argument(
        "--couplings", type=options.positive_int, help="coupling layers: realnvp (4), nice (4)"
    )
    model.add_argument(
        "--layers", type=options.positive_int, help="layers: maf (5), iaf (5), nsf (5)"
    )
    model.add_argument(
        "--hidden", type=options.positive_int, help="hidden width (realnvp 16, nsf 64, others 32)"
    )
    model.add_argument("--bins", type=options.at_least_two, help="spline bins: nsf, multiscale (8)")
    model.add_argument(
        "--scales", type=options.positive_int, help="multiscale: scales of the multi-scale flow (2)"
    )
    model.add_argument("--steps", type=options.positive_int, help="multiscale: steps per scale (4)")
    model.add_argument(
        "--coupling",
        action="store_const",
        const=True,
        help="nsf: spline coupling layers instead of autoregressive ones",
    )
    model.add_argument(
        "--zero-init", action="store_const", const=True, help="start the flow at the identity"
    )
    model.add_argument(
        "--base",
        choices=sorted(BASES),
        help="base distribution (normal); 'mixture' is fitted to the data by EM before training",
    )
    model.add_argument(
        "--conditional",
        action="store_const",
        const=True,
        help="learn p(x | moon): condition every layer on the one-hot moon label",
    )
    recipe = parser.add_argument_group("training (defaults: flowforge.DEFAULT_RECIPE)")
    recipe.add_argument("--epochs", type=options.positive_int, help=f"({DEFAULT_RECIPE.epochs})")
    recipe.add_argument(
        "--batch-size", type=options.positive_int, help=f"({DEFAULT_RECIPE.batch_size})"
    )
    recipe.add_argument(
        "--lr", type=options.positive_float, help=f"Adam's peak ({DEFAULT_RECIPE.lr})"
    )
    recipe.add_argument(
        "--schedule",
        choices=("cosine", "constant"),
        help=f"learning-rate schedule ({DEFAULT_RECIPE.schedule})",
    )
    recipe.add_argument(
        "--warmup",
        type=options.non_negative_int,
        help=f"steps of linear learning-rate warm-up ({DEFAULT_RECIPE.warmup})",
    )
    recipe.add_argument(
        "--ema",
        type=options.unit_fraction,
        metavar="DECAY",
        help="decay of the weight average that is evaluated and kept, in [0, 1); 0: none "
        f"({DEFAULT_RECIPE.ema})",
    )
    recipe.add_argument(
        "--no-shuffle",
        action="store_const",
        const=True,
        help="visit the points in the same order every epoch (the notebook's loader)",
    )
    run = parser.add_argument_group("run")
    run.add_argument("--seed", type=options.non_negative_int, help="data, init and batch order (0)")
    options.add_device(run, default=None)
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
        f"fails ({DEFAULT_TIMEOUT:g})",
    )


def _value(args: argparse.Namespace, name: str, default):
    value = getattr(args, name)
    return default if value is None else value


def recipe_from(args: argparse.Namespace, dataset: DataSet | None = None) -> dict:
    """``fit``'s keyword arguments: ``DEFAULT_RECIPE``, then the data set's own defaults
    (``DataSet.recipe``), then the options given."""
    recipe = {**DEFAULT_RECIPE.to_dict(), **(dataset.recipe if dataset is not None else {})}
    for name in ("epochs", "batch_size", "lr", "schedule", "warmup", "ema"):
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


def _sizes_for(args: argparse.Namespace, dataset: DataSet) -> dict:
    """``n_samples`` and ``n_heldout`` for a set of points; none for an image set, whose
    split is fixed (``InputError`` if they are given)."""
    if dataset.image is None:
        return {k: _value(args, k, v) for k, v in DATA_DEFAULTS.items()}
    given = [f"--{k.replace('_', '-')}" for k in DATA_DEFAULTS if getattr(args, k) is not None]
    if given:
        raise InputError(
            f"--dataset {dataset.name} has a fixed training/validation/test split; "
            f"drop {', '.join(given)}"
        )
    return {}


def image_options_for(dataset: DataSet, name: str) -> dict:
    """The image shape and pixel levels an image model takes from an image set; ``InputError``
    when the model and the data set do not go together (images need an image model)."""
    parameters = inspect.signature(BUILDERS[name]).parameters
    image_model = all(option in parameters for option in IMAGE_OPTIONS)
    image_models = [m for m, b in BUILDERS.items() if "levels" in inspect.signature(b).parameters]
    if dataset.image is None:
        if image_model:
            raise InputError(
                f"--model {name} models images of discrete pixels; train it on an image data "
                f"set ({', '.join(n for n, d in DATASETS.items() if d.image)})"
            )
        return {}
    if not image_model:
        raise InputError(
            f"--dataset {dataset.name} holds images of discrete pixels, which need an image "
            f"model that dequantizes them: --model {' or '.join(image_models)}"
        )
    return {"image_shape": list(dataset.image.shape), "levels": dataset.image.levels}


def config_from(args: argparse.Namespace) -> RunConfig:
    """The run's configuration from the options; fits the data's standardization."""
    dataset = DATASETS[_value(args, "dataset", DEFAULT_DATASET)]
    data = _sizes_for(args, dataset)
    data.update(data_options_from(args, dataset))
    seed = _value(args, "seed", 0)
    train, _ = dataset.splits(seed=seed, **data)
    default_model = DEFAULT_MODEL if dataset.image is None else DEFAULT_IMAGE_MODEL
    name = _value(args, "model", default_model)
    model = model_options_from(args, name)
    model.update(image_options_for(dataset, name))
    extra = {}
    if args.conditional:
        classes = int(train.labels.max()) + 1
        model["context_width"] = classes
        extra["context"] = {"kind": "label", "classes": classes}
    return RunConfig(
        model=name,
        model_options=model if dataset.image else {"width": train.points.shape[1], **model},
        data={"name": dataset.name, **data},
        standardization=train.standardization,
        recipe=recipe_from(args, dataset),
        seed=seed,
        device=args.device or "auto",
        extra=extra,
    )


def model_options_from(args: argparse.Namespace, name: str) -> dict:
    """The builder's options: those given, else the builder's own defaults.

    Raises ``InputError`` for an option that builder does not take.
    """
    parameters = inspect.signature(BUILDERS[name]).parameters
    chosen = {}
    for flag in MODEL_FLAGS:
        value = getattr(args, flag)
        if flag in parameters:
            if value is not None or flag not in SWITCHES:
                chosen[flag] = parameters[flag].default if value is None else value
        elif value is not None:
            takes = ", ".join(f"--{f.replace('_', '-')}" for f in MODEL_FLAGS if f in parameters)
            raise InputError(
                f"--{flag.replace('_', '-')} does not apply to --model {name}; it takes {takes}"
            )
    return chosen


def default_output() -> Path:
    """``runs/<date-time>``, with a suffix if that folder exists already."""
    base = Path("runs") / time.strftime("%Y%m%d-%H%M%S")
    folder, n = base, 2
    while folder.exists():
        folder, n = base.with_name(f"{base.name}-{n}"), n + 1
    return folder


def _check_resume(args: argparse.Namespace) -> None:
    given = [name for name in RUN_OPTIONS if getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(
            f"--resume continues a run with the settings in its config.json; drop {flags} "
            "(only --device and --quiet may change)"
        )


def _floor_line(heldout: dict) -> list[str]:
    """The gap to the true entropy and the paired KL, or the sample distances of a data set
    without a known density, when the run's metrics have them."""
    from flowforge.workbench.scoring.truth import describe_truth

    line = describe_truth(heldout)
    return [f"  {line}"] if line else []


def _bits_line(heldout: dict) -> list[str]:
    """The held-out (test) bits per dimension of a run on images."""
    if "bits_per_dim" not in heldout:
        return []
    return [
        f"  test bits/dim: {heldout['bits_per_dim']:.4f} ± {heldout['bits_per_dim_stderr']:.4f} "
        f"({heldout['dims']} pixels, {heldout['levels']} levels, uniform dequantization)"
    ]


def _summary(outcome) -> str:
    if "bits_per_dim" in outcome.metrics["heldout"]:  # images: the digits' test set
        which, per, units = "test", "image", "pixel units"
    else:
        which, per, units = "held-out", "point", "standardized units"
    lines = [
        f"{which} NLL after {outcome.history.epochs} epochs: {outcome.heldout.mean:.4f} ± "
        f"{outcome.heldout.stderr:.4f} nats per {per} (n={outcome.heldout.n}, {units})",
        *_floor_line(outcome.metrics["heldout"]),
        *_bits_line(outcome.metrics["heldout"]),
        f"run folder: {outcome.folder} (config.json, model.safetensors, metrics.json, "
        "figures, report.html)",
        f"evaluate it: flowforge eval {outcome.folder}",
    ]
    return "\n".join(lines)


def _diverged(error: FloatingPointError, folder: Path) -> str:
    """The one-line explanation of a diverged run: what is kept, and the likely cause."""
    from flowforge.workbench.runs.config import CHECKPOINT

    kept = (
        f"the last good epoch is kept in {folder / CHECKPOINT}"
        if (folder / CHECKPOINT).exists()
        else "no epoch completed"
    )
    hint = ""
    if read_config(folder).model_options.get("base") == "uniform":
        hint = (
            "; with a uniform base the NLL is infinite as soon as the flow maps a point "
            "outside the base's support (the notebook's question 10.6 b)"
        )
    return f"{error}; {kept}{hint}"


def _device(name: str):
    """The device ``name`` names, this process's own GPU under ``torchrun``."""
    from flowforge.training.distributed import local_device

    try:
        return local_device(options.device(name))
    except ValueError as error:
        raise InputError(str(error)) from None


def _start(args: argparse.Namespace, world) -> Path:
    """The first process creates the run folder; every process gets its path (or error)."""
    from flowforge.training.distributed import broadcast_object
    from flowforge.workbench.runs.experiment import start_run

    folder = error = None
    if world.is_main:
        try:
            folder = start_run(args.output or default_output(), config_from(args))
        except InputError as raised:
            if not world.distributed:
                raise
            error = str(raised)
    folder, error = broadcast_object((folder, error), world)
    if error is not None:
        raise InputError(error)
    return folder


def run(args: argparse.Namespace) -> int:
    from flowforge.training.distributed import DistributedError, LaunchError, distributed
    from flowforge.workbench.runs.experiment import train_run

    if args.resume is not None:
        _check_resume(args)
    name = args.device or (read_config(args.resume).device if args.resume else "auto")
    with distributed(_device(name), args.timeout) as (world, device):
        batch = read_config(args.resume).recipe["batch_size"] if args.resume else None
        batch = batch or _value(args, "batch_size", DEFAULT_RECIPE.batch_size)
        if world.size > batch:
            raise InputError(  # before a run folder is made for nothing
                f"batch size {batch} (the global batch) cannot be split between "
                f"{world.size} processes; use --batch-size {world.size} or more, or fewer "
                "processes"
            )
        folder = args.resume if args.resume is not None else _start(args, world)
        try:
            outcome = train_run(folder, device=device, progress=not args.quiet)
        except FloatingPointError as error:
            raise InputError(_diverged(error, folder)) from None
        except DistributedError as error:
            raise InputError(f"{error}: flowforge train --resume {folder}") from None
        except LaunchError as error:
            raise InputError(str(error)) from None
        except KeyboardInterrupt:
            if world.is_main:
                print(f"stopped; continue with: flowforge train --resume {folder}", file=sys.stderr)
            raise
    if world.is_main:
        print(_summary(outcome))
    return 0
