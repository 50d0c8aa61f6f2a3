"""Column plans on and off (``flowforge.evaluate.COLUMN_PLANS``), side by side in one
process on one CPU thread: ``model.log_prob(x)`` without gradients, and ``sample(n)``,
for the families of ``benchmarks/families.py`` built as it builds them.

    python -m benchmarks.column_plans                 # maf and nsf, about a minute
    python -m benchmarks.column_plans nsf-coupling    # any of families.COUNTERPARTS

Prints points per second, the median [min-max] of ``REPS`` interleaved repetitions, and
the ratio plan on / plan off of the medians. Writes nothing.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

import flowforge.evaluate as evaluate
from benchmarks.families import COUNTERPARTS, flowforge_model
from benchmarks.measure import interleaved, summary

REPS = 5
POINTS = (1_000_000, 100_000)
SAMPLES = 100_000


def _rate(plans: bool, fn: Callable[[], object], count: int) -> Callable[[], float]:
    def run() -> float:
        evaluate.COLUMN_PLANS = plans
        try:
            started = time.perf_counter()
            fn()
            return count / (time.perf_counter() - started)
        finally:
            evaluate.COLUMN_PLANS = True

    return run


def measure(family: str) -> None:
    """Print the rates plan on and off, and their ratio, for one family."""
    torch.manual_seed(0)
    model = flowforge_model(family).eval()
    print(f"{family}: {[type(layer).__name__ for layer in model.flow][:3]} ...", flush=True)
    cases: list[tuple[str, Callable[[], object], int]] = []
    for n in POINTS:
        x = torch.randn(n, model.width, generator=torch.Generator().manual_seed(1))
        cases.append((f"log_prob {n:,}", lambda x=x: model.log_prob(x), n))
    cases.append((f"sample {SAMPLES:,}", lambda: model.sample(SAMPLES), SAMPLES))
    with torch.no_grad():
        for label, fn, count in cases:
            runs = {"on": _rate(True, fn, count), "off": _rate(False, fn, count)}
            got = {name: summary(values) for name, values in interleaved(runs, REPS).items()}
            cells = [
                f"{name} {s['median']:,.0f} [{s['min']:,.0f}-{s['max']:,.0f}]"
                for name, s in got.items()
            ]
            ratio = got["on"]["median"] / got["off"]["median"]
            print(f"  {label:>18}: {'  '.join(cells)} pts/s  on/off x{ratio:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("families", nargs="*", help=f"of {', '.join(COUNTERPARTS)}")
    families = parser.parse_args().families or ["maf", "nsf"]
    if unknown := set(families) - set(COUNTERPARTS):
        parser.error(f"unknown families {sorted(unknown)}; choose from {list(COUNTERPARTS)}")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, median of {REPS}", flush=True)
    for family in families:
        measure(family)


if __name__ == "__main__":
    main()
