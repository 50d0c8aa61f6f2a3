"""``flowforge compare-runs RUN_A RUN_B``: two runs' densities after each coupling layer."""

from __future__ import annotations

import argparse
from pathlib import Path

from flowforge.errors import InputError

HELP = "draw the density after 0, 1, ... coupling layers of two runs in one figure (10.5 h)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", type=Path, metavar="RUN_A", help="a run folder")
    parser.add_argument("run_b", type=Path, metavar="RUN_B", help="another run folder")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        metavar="FILE",
        help="the PNG file to write (default: compare_<RUN_A>_<RUN_B>.png here)",
    )
    parser.add_argument("--force", action="store_true", help="replace FILE if it exists")


def labels(a: Path, b: Path) -> tuple[str, str]:
    """Short row labels: the folder names, or the full paths when those are equal."""
    return (a.name, b.name) if a.name != b.name else (str(a), str(b))


def run(args: argparse.Namespace) -> int:
    from matplotlib.figure import Figure

    from flowforge.workbench.cli.outputs import check_output_file, writing
    from flowforge.workbench.figures.plots import plot_compare_model_steps
    from flowforge.workbench.figures.runs import coupling_count, save_figure
    from flowforge.workbench.runs.config import load

    output = args.output or Path(f"compare_{args.run_a.name}_{args.run_b.name}.png")
    if output.suffix.lower() != ".png":
        raise InputError(f"-o {output}: the figure is written as PNG; use a name ending in .png")
    check_output_file(output, args.force, (".png",))
    models = dict(zip(labels(args.run_a, args.run_b), (load(args.run_a)[0], load(args.run_b)[0])))
    for run, model in zip((args.run_a, args.run_b), models.values()):
        if getattr(model, "width", 2) != 2:
            raise InputError(
                f"{run} models {model.width} dimensions; compare-runs draws densities in the "
                "plane, for runs on 2-D points (for images see its samples.png and latents.png)"
            )
    steps = max(coupling_count(m) for m in models.values()) + 1
    figure = Figure(figsize=(3 * steps + 1, 6.4), layout="constrained")
    plot_compare_model_steps(models, steps, fig=figure)
    with writing(output):
        save_figure(figure, output)
    print(f"wrote {output}")
    return 0
