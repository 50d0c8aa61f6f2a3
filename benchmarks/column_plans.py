"""Column plans on and off (``flowforge.evaluate.COLUMN_PLANS``), or their networks'
column blocks on and off (``flowforge.nets.columns.BLOCK_WORK``), side by side in one
process on one CPU thread: ``model.log_prob(x)`` without gradients, and ``sample(n)``,
for the families of ``benchmarks/families.py`` built as it builds them.

    python -m benchmarks.column_plans                    # maf and nsf, about a minute
    python -m benchmarks.column_plans nsf-coupling       # any of families.COUNTERPARTS
    python -m benchmarks.column_plans --switch blocks    # blocks on and off, plans on

Prints points per second, the median [min-max] of ``REPS`` interleaved repetitions, and
the ratio on / off of the medians. Writes nothing.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import torch

import flowforge.evaluate as evaluate
import flowforge.nets.columns as column_nets
from benchmarks.families import COUNTERPARTS, flowforge_model
from benchmarks.measure import interleaved, summary

REPS = 5
POINTS = (1_000_000, 100_000)
SAMPLES = 100_000


# switch -> (module, name, value on, value off)
SWITCHES = {
    "plans": (evaluate, "COLUMN_PLANS", True, False),
    "blocks": (column_nets, "BLOCK_WORK", column_nets.BLOCK_WORK, math.inf),
}


def _rate(switch: str, on: bool, fn: Callable[[], object], count: int) -> Callable[[], float]:
    module, name, value_on, value_off = SWITCHES[switch]

    def run() -> float:
        setattr(module, name, value_on if on else value_off)
        try:
            started = time.perf_counter()
            fn()
            return count / (time.perf_counter() - started)
        finally:
            setattr(module, name, value_on)

    return run


def measure(family: str, switch: str = "plans") -> None:
    """Print the rates with ``switch`` on and off, and their ratio, for one family."""
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
            runs = {"on": _rate(switch, True, fn, count), "off": _rate(switch, False, fn, count)}
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
    parser.add_argument("--switch", choices=list(SWITCHES), default="plans")
    args = parser.parse_args()
    families = args.families or ["maf", "nsf"]
    if unknown := set(families) - set(COUNTERPARTS):
        parser.error(f"unknown families {sorted(unknown)}; choose from {list(COUNTERPARTS)}")
    torch.set_num_threads(1)
    print(f"torch {torch.__version__}, 1 thread, median of {REPS}, {args.switch}", flush=True)
    for family in families:
        measure(family, args.switch)


if __name__ == "__main__":
    main()
