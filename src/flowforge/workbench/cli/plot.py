"""``flowforge plot RUN``: redraw a run's figures and its report."""

from __future__ import annotations

import argparse
from pathlib import Path

from flowforge.workbench.cli.outputs import writing

HELP = "redraw a run's figures (PNG) and report.html from its weights and metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", type=Path, metavar="RUN", help="a run folder from flowforge train")


def run(args: argparse.Namespace) -> int:
    from flowforge.workbench.runs.config import (
        load_data,
        load_model,
        read_config,
        read_metrics,
        run_folder,
    )
    from flowforge.workbench.runs.experiment import write_outputs

    folder = run_folder(args.run)
    config = read_config(folder)
    metrics = read_metrics(folder)
    model = load_model(folder, config)
    train, _ = load_data(config)
    with writing(folder):
        written = write_outputs(folder, model, train.points, config, metrics)
    for path in written:
        print(f"wrote {path}")
    return 0
