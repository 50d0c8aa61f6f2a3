"""The toy suite: the best of two flows on every set, scored against the truth, in one figure.

    python -m benchmarks.toy_suite                    # every toy set (about 15 minutes on 2 cores)
    python -m benchmarks.toy_suite --sets rings,pinwheel
    python -m benchmarks.toy_suite --quick            # a smoke run: tiny data, seconds per set

Each set is drawn and scored exactly as ``flowforge compare --dataset NAME --models
nsf-mixture,nsf-mixture-wide`` does (100,000 training points of which the last 10,000
validate, 20,000 held-out points, seed 0, one thread): both candidates are trained, the
one with the lower validation NLL is the set's best flow, and its held-out NLL, gap to
the true entropy and paired KL (where the density is known) and its sample distances
(energy and sliced W1, next to those of a fresh sample of the truth) make the table.

Writes ``docs/toy_suite.png`` (per set: the true log-density or a note, the data, the
best flow's log-density), ``benchmarks/results/toy_suite.json`` (every comparison's
numbers) and ``benchmarks/results/toy_suite.md`` (the table), and prints the table.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from benchmarks.measure import save_results
from flowforge.families import FAMILIES
from flowforge.threads import cpu_threads
from flowforge.workbench.comparison import Comparison, Plan, Setup, run_comparison
from flowforge.workbench.comparison.figure import (
    LIMIT,
    LOG_DENSITY_RANGE,
    no_density_panel,
    plane_grid,
    surface_panel,
    top_of_scale,
)
from flowforge.workbench.comparison.run import TRUTH, Row
from flowforge.workbench.comparison.table import to_dict
from flowforge.workbench.data import TOYS

# The mixture-base recipes the families declare for `flowforge compare` (nsf-mixture and
# nsf-mixture-wide): the suite's two candidates.
CANDIDATES = tuple(
    entry.name
    for family in FAMILIES.values()
    for entry in family.compare
    if entry.options.get("base") == "mixture"
)
FULL = {"n_train": 100_000, "n_heldout": 20_000, "samples": 10_000, "entropy_samples": 200_000}
QUICK = {"n_train": 2_000, "n_heldout": 600, "samples": 300, "entropy_samples": 2_000}
ROOT = Path(__file__).resolve().parents[1]
FIGURE = ROOT / "docs" / "toy_suite.png"
RESULTS = ROOT / "benchmarks" / "results" / "toy_suite.json"
SHOWN_POINTS = 5_000
# The columns of the suite's table (also rendered from the JSON by benchmarks.tables).
HEADER = [
    "set",
    "true entropy H",
    "best flow (validation NLL)",
    "held-out NLL",
    "gap to H",
    "KL(p‖q) paired",
    "energy (truth's)",
    "sliced W1 (truth's)",
    "train s (both)",
]


def validation_nll(row: Row) -> float:
    """The best validation NLL a flow reached (the epoch whose weights it kept)."""
    return min(row.summary["validation_nll"])


def best_row(c: Comparison) -> Row:
    """The model row with the lowest validation NLL."""
    return min((r for r in c.rows if r.kind == "model"), key=validation_nll)


def compare_set(name: str, sizes: dict, log) -> Comparison:
    """Both candidates on toy set ``name``, as ``flowforge compare --dataset name`` runs them."""
    setup = Setup(**sizes, dataset=name)
    plan = Plan(100.0, round(setup.n_train * (1 - setup.validation_fraction)), setup.seed)
    return run_comparison(CANDIDATES, plan, setup, log=lambda line: log(f"{name}: {line}"))


def _pm(e) -> str:
    if e is None:
        return "—"
    return "∞" if math.isinf(e.mean) else f"{e.mean:.4f} ± {e.stderr:.4f}"


def table_row(name: str, c: Comparison) -> str:
    """One line of the suite's table (nats; distances in model units, floor in brackets)."""
    best, floor = best_row(c), next(r for r in c.rows if r.name == TRUTH).distances
    d = best.distances
    cells = [
        name,
        _pm(c.entropy),
        f"{best.name} ({validation_nll(best):.4f})",
        _pm(best.nll),
        _pm(best.gap),
        _pm(best.kl),
        f"{d.energy:.1e} ({floor.energy:.1e})",
        f"{d.sliced_w1:.4f} ({floor.sliced_w1:.4f})",
        f"{sum(r.train_seconds for r in c.rows if r.kind == 'model'):.0f}",
    ]
    return "| " + " | ".join(cells) + " |"


def table(results: dict[str, Comparison]) -> str:
    """The suite's Markdown table."""
    header = HEADER
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * 8) + "|"]
    return "\n".join(lines + [table_row(n, c) for n, c in results.items()]) + "\n"


def _data_panel(ax, points: np.ndarray) -> None:
    ax.scatter(points[:, 0], points[:, 1], s=0.3, alpha=0.4, color="C3", rasterized=True)
    ax.set_xlim(-LIMIT, LIMIT)
    ax.set_ylim(-LIMIT, LIMIT)


def suite_figure(results: dict[str, Comparison]) -> Figure:
    """Columns: the sets. Rows: the true log-density (or a note), the data (training
    points), and the best flow's log-density, on one colour scale per set (nats)."""
    grid, axis = plane_grid()
    shape = (len(axis), len(axis))
    fig = Figure(figsize=(2.3 * len(results), 7.0), layout="constrained")
    axes = fig.subplots(3, len(results), squeeze=False, sharex=True, sharey=True)
    for j, (name, c) in enumerate(results.items()):
        best = best_row(c)
        flow = c.models[best.name].surface(grid).double().numpy().reshape(shape)
        truth = c.truth.log_prob(grid).numpy().reshape(shape) if c.truth.has_density else None
        vmax = top_of_scale(truth, [flow])
        if truth is None:
            no_density_panel(axes[0, j])
        else:
            surface_panel(axes[0, j], truth, "log-density", vmax - LOG_DENSITY_RANGE, vmax)
        _data_panel(axes[1, j], c.train_points[:SHOWN_POINTS].numpy())
        surface_panel(axes[2, j], flow, "log-density", vmax - LOG_DENSITY_RANGE, vmax)
        axes[0, j].set_title(name.replace("_", " "), fontsize=9)
        kl = "" if best.kl is None else f"\nKL {best.kl.mean:.4f} nats"
        axes[2, j].set_title(f"{best.name}{kl}", fontsize=7)
    for ax, label in zip(axes[:, 0], ("true density", "data", "best flow")):
        ax.set_ylabel(label, fontsize=9)
    for ax in axes.ravel():
        ax.set_aspect("equal")
        ax.tick_params(labelsize=5)
    return fig


def write(results: dict[str, Comparison], figure: Path, json_path: Path) -> None:
    from flowforge.workbench.figures.runs import save_figure
    from flowforge.workbench.files import atomic_write_text

    figure.parent.mkdir(parents=True, exist_ok=True)
    save_figure(suite_figure(results), figure)
    record = {name: {"best": best_row(c).name, **to_dict(c)} for name, c in results.items()}
    save_results(json_path, {"candidates": list(CANDIDATES), "sets": record})
    atomic_write_text(json_path.with_suffix(".md"), table(results))


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(TOYS), help="comma-separated toy sets")
    parser.add_argument("--quick", action="store_true", help="tiny data: a smoke run")
    parser.add_argument("--figure", type=Path, default=FIGURE, help=f"(default: {FIGURE})")
    parser.add_argument("--out", type=Path, default=RESULTS, help=f"(default: {RESULTS})")
    args = parser.parse_args(argv)
    args.sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in args.sets if s not in TOYS]
    if unknown or not args.sets:
        parser.error(f"unknown toy set(s) {unknown}; known: {', '.join(TOYS)}")
    return args


def main(argv: list[str] | None = None) -> dict[str, Comparison]:
    from threadpoolctl import threadpool_limits

    args = parse(argv)
    started = time.perf_counter()
    with cpu_threads(1), threadpool_limits(1):
        results = {
            name: compare_set(name, QUICK if args.quick else FULL, print) for name in args.sets
        }
        write(results, args.figure, args.out)
    print(table(results))
    print(f"wrote {args.figure}, {args.out} and its .md in {time.perf_counter() - started:.0f} s")
    return results


if __name__ == "__main__":
    main()
