"""Peak memory of the two unbounded-N operations of issue 15, item 7, at N = 10^8.

``python -m benchmarks.memory [--n N] [--out FILE]`` measures, each in a fresh process:

- ``flowforge sample RUN -n N -o FILE.npy`` on a small run trained first (the peak
  resident set size of the whole command, ``ru_maxrss`` of the child; where it is no
  larger than the training's before it, the training's is shown, an upper bound);
- ``mean_nll`` of the default RealNVP on ``N`` standard-normal points (the peak above
  the level with the points already in memory, ``benchmarks.measure.peak_extra_bytes``,
  and the points' own size).

It prints the numbers in MiB beside the 1 GiB bound and saves them (default
``benchmarks/results/memory.json``).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import report_and_save

MIB = 1024**2
BOUND = 1024 * MIB

MEAN_NLL = """
import json, sys, torch
from benchmarks.measure import peak_extra_bytes
from benchmarks.memory_probe import _points
from flowforge import mean_nll, realnvp
torch.manual_seed(0)
model, x = realnvp(), _points(int(sys.argv[1]))
mean_nll(model, x[:20_000])
extra = peak_extra_bytes(lambda: mean_nll(model, x))
print(json.dumps({"peak_extra_bytes": extra, "input_bytes": x.numel() * x.element_size()}))
"""


def _child_peak(command: list[str]) -> tuple[int, str]:
    """Run ``command``; the largest resident set size of any child so far (bytes), stdout."""
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, done.stdout


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100_000_000)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.json"))
    args = parser.parse_args(argv)
    started = time.perf_counter()
    cli = [sys.executable, "-m", "flowforge"]
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        tiny = ["--n-samples", "1500", "--n-heldout", "500", "--epochs", "1", "--quiet"]
        # ru_maxrss of the children is the largest of any child so far: the sample
        # command's own peak shows only where it exceeds the training's (then flagged).
        trained, _ = _child_peak([*cli, "train", *tiny, "--output", str(run)])
        out = Path(tmp) / "samples.npy"
        sampled, _ = _child_peak([*cli, "sample", str(run), "-n", str(args.n), "-o", str(out)])
        file_bytes = out.stat().st_size
    _, printed = _child_peak([sys.executable, "-c", MEAN_NLL, str(args.n)])
    scored = json.loads(printed)
    results = {
        "n": args.n,
        "bound_bytes": BOUND,
        "sample_peak_bytes": sampled,
        "sample_peak_is_training_peak": sampled == trained,
        "sample_file_bytes": file_bytes,
        "mean_nll_peak_extra_bytes": scored["peak_extra_bytes"],
        "mean_nll_input_bytes": scored["input_bytes"],
        "seconds": time.perf_counter() - started,
    }
    lines = [
        f"N = {args.n:,}",
        f"flowforge sample -n N: peak {sampled / MIB:,.0f} MiB (bound {BOUND / MIB:,.0f}; "
        f"file {file_bytes / MIB:,.0f} MiB)"
        + (" [the training's peak: sampling stayed below it]" if sampled == trained else ""),
        f"mean_nll on N points: {scored['peak_extra_bytes'] / MIB:,.1f} MiB above the "
        f"{scored['input_bytes'] / MIB:,.0f} MiB of points",
    ]
    return report_and_save(lines, results, args.out)


if __name__ == "__main__":
    main()
