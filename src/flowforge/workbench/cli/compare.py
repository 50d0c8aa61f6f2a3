"""``flowforge compare``: flows, a GAN, mixtures, kernels and a Gaussian vs. the truth, on any
data set of ``flowforge.workbench.data.DATASETS``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from flowforge.errors import InputError
from flowforge.workbench.cli import options
from flowforge.workbench.cli.outputs import check_output_folder, writing

HELP = (
    "compare model families on the two moons or a toy data set, scored against its true "
    "density (or, without one, by sample distances)"
)


def point_sets() -> list[str]:
    """The data sets ``flowforge compare`` takes: the sets of 2-D points, not the images."""
    from flowforge.workbench.data import DATASETS

    return [name for name, entry in DATASETS.items() if entry.image is None]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from flowforge.workbench.comparison import DEFAULT_BUDGET, DEFAULT_MODELS, FAMILIES
    from flowforge.workbench.data import names_help

    parser.add_argument(
        "--dataset",
        type=options.dataset_name,
        default="two_moons",
        metavar="NAME",
        help=f"data set (default: %(default)s): one of {names_help(point_sets())}",
    )
    parser.add_argument(
        "-o", "--output", default="runs/compare", metavar="FOLDER", help="output folder"
    )
    # the option's name before issue 16, kept working but no longer shown
    parser.add_argument("--out", dest="output", help=argparse.SUPPRESS)
    parser.add_argument(
        "--budget",
        type=float,
        default=DEFAULT_BUDGET,
        help="training budget in seconds on the reference 2-core CPU, turned into fixed "
        "epochs and steps for every model but the flow, which then trains at least as long "
        "as the slowest of them took",
    )
    parser.add_argument(
        "--flow-epochs",
        type=options.positive_int,
        metavar="N",
        help="train the flow for exactly N epochs instead (two runs then give the same "
        "table; results.json records the epochs a run chose) (default: the time rule)",
    )
    parser.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated models (default: %(default)s); the other flow families: "
        + ",".join(FAMILIES),
    )
    parser.add_argument("--seed", type=options.seed, default=0, help="random seed")
    _add_size_arguments(parser)


def _add_size_arguments(parser: argparse.ArgumentParser) -> None:
    """The data's and the scores' sizes, the noise and the threads."""
    parser.add_argument(
        "--n-train", type=int, default=100_000, help="training points (incl. validation)"
    )
    parser.add_argument(
        "--n-heldout", type=int, default=20_000, help="held-out points for NLL and KL"
    )
    parser.add_argument(
        "--samples", type=int, default=10_000, help="samples per model for distances"
    )
    parser.add_argument(
        "--noise", type=float, help="two_moons only: make_moons noise (default: 0.1)"
    )
    parser.add_argument(
        "--entropy-samples",
        type=int,
        default=200_000,
        help="Monte Carlo samples for the true entropy",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="threads for torch and BLAS while this runs; these small models are fastest "
        "on one, and a fixed count keeps runs identical",
    )


def _models(spec: str) -> list[str]:
    from flowforge.workbench.comparison import MODELS

    names = [m.strip() for m in spec.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODELS]
    if unknown or not names:
        raise InputError(
            f"unknown model(s) {unknown or spec!r} in --models; choose from {', '.join(MODELS)}"
        )
    if len(set(names)) != len(names):
        raise InputError(f"--models lists a model twice: {spec}")
    return names


@contextmanager
def _threads(n: int) -> Iterator[None]:
    """Limit torch and the BLAS behind numpy and scikit-learn to ``n`` threads, then restore."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        with threadpool_limits(n):
            yield
    finally:
        torch.set_num_threads(before)


def _write(out: Path, comparison) -> None:
    from flowforge.workbench.comparison.figure import comparison_figure
    from flowforge.workbench.comparison.html import to_html
    from flowforge.workbench.comparison.table import to_dict, to_markdown
    from flowforge.workbench.figures.runs import save_figure
    from flowforge.workbench.files import atomic_write_text, write_json

    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", to_dict(comparison))
    atomic_write_text(out / "results.md", to_markdown(comparison))
    png = save_figure(comparison_figure(comparison), out / "comparison.png").read_bytes()
    atomic_write_text(out / "report.html", to_html(comparison, png))


def run(args: argparse.Namespace) -> int:
    from flowforge.workbench.comparison import Plan, Setup, run_comparison
    from flowforge.workbench.comparison.table import to_markdown
    from flowforge.workbench.data import DATASETS

    if DATASETS[args.dataset].image is not None:
        raise InputError(
            f"flowforge compare scores flows on 2-D point sets; for the images of "
            f"--dataset {args.dataset} train with `flowforge train --dataset {args.dataset}` "
            "and compare libraries with `python -m benchmarks.digits`"
        )
    check_output_folder(Path(args.output), "--output")
    models = _models(args.models)
    if args.threads < 1:
        raise InputError(f"--threads must be at least 1, got {args.threads}")
    try:
        setup = Setup(
            args.n_train,
            args.n_heldout,
            args.noise,
            args.samples,
            entropy_samples=args.entropy_samples,
            seed=args.seed,
            dataset=args.dataset,
        )
        n_fit = round(args.n_train * (1 - setup.validation_fraction))
        plan = Plan(args.budget, n_fit, args.seed, flow_epochs=args.flow_epochs)
    except ValueError as error:
        raise InputError(str(error)) from None
    started = time.perf_counter()
    with _threads(args.threads):
        comparison = run_comparison(models, plan, setup, log=print)
        with writing(Path(args.output)):
            _write(Path(args.output), comparison)
    print(to_markdown(comparison))
    print(
        f"wrote {args.output}/results.json, results.md, comparison.png, report.html "
        f"in {time.perf_counter() - started:.0f} s"
    )
    return 0
