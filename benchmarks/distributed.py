"""How data-parallel training scales: ``fit`` in one process and in two gloo processes.

    python -m benchmarks.distributed             # 5 rounds (about two minutes)
    python -m benchmarks.distributed --quick     # a smoke run (seconds, plus start-up)

The notebook's model (4 affine couplings, hidden width 16, 1,352 parameters) trains on
the moons at global batches of 128, 1,024 and 8,192 rows, with one CPU thread per
process: in this process alone, then in two processes (``torch.multiprocessing``,
gloo on 127.0.0.1) that split every batch between them. Rounds alternate one process
and two (the two stay started between rounds, waiting on a queue), so a noisy
neighbour slows both alike. A rate is optimizer steps per second of ``fit``'s training
loop (``History.train_seconds``: without start-up, validation or process creation).

Prints the medians with their ranges and the ratio two / one, and writes
``benchmarks/results/distributed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

from benchmarks.measure import cpu_count, summary

RESULTS = Path(__file__).parent / "results" / "distributed.json"
BATCHES = (128, 1024, 8192)
_data: dict[int, torch.Tensor] = {}


def points(n: int) -> torch.Tensor:
    """``n`` standardized moons points (made once per size and process)."""
    from flowforge import two_moons_splits

    if n not in _data:
        _data[n] = two_moons_splits(n, 2, seed=0)[0].points
    return _data[n]


def steps_per_second(batch: int, steps: int, seed: int) -> float:
    """Train the notebook's model for ``steps`` steps of global batch ``batch``."""
    from flowforge import fit
    from flowforge.builders import realnvp

    torch.manual_seed(seed)
    model = realnvp(width=2)
    history = fit(
        model,
        points(batch * steps),
        epochs=1,
        batch_size=batch,
        lr=1e-3,
        schedule="constant",
        warmup=0,
        seed=seed,
        progress=False,
        threads=1,
    )
    return steps / history.train_seconds[0]


def worker(rank: int, port: int, commands: list, results) -> None:
    """One of two processes: measure each ``(batch, steps, seed)`` it is sent, until None."""
    from flowforge.training.distributed import distributed

    os.environ.update(
        RANK=str(rank),
        WORLD_SIZE="2",
        LOCAL_RANK=str(rank),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    with distributed("cpu"):
        while (command := commands[rank].get()) is not None:
            rate = steps_per_second(*command)
            if rank == 0:
                results.put(rate)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def measure(batches: tuple[int, ...], steps: int, rounds: int) -> dict[int, dict[str, list]]:
    """Rates for every batch: ``{batch: {"one": [...], "two": [...]}}``, ``rounds`` each
    after one warm-up round; one process and two alternate, in rotating batch order."""
    context = mp.get_context("spawn")
    commands, results = [context.Queue(), context.Queue()], context.Queue()
    workers = mp.spawn(worker, args=(free_port(), commands, results), nprocs=2, join=False)
    rates = {batch: {"one": [], "two": []} for batch in batches}
    try:
        for round_ in range(rounds + 1):
            shift = round_ % len(batches)
            for batch in batches[shift:] + batches[:shift]:
                one = steps_per_second(batch, steps, seed=round_)
                for queue in commands:
                    queue.put((batch, steps, round_))
                two = results.get(timeout=600)
                if round_:  # round 0 warms up both
                    rates[batch]["one"].append(one)
                    rates[batch]["two"].append(two)
    finally:
        for queue in commands:
            queue.put(None)
        workers.join()
    return rates


def report(rates: dict[int, dict[str, list]]) -> list[str]:
    lines = [
        "| global batch | 1 process | 2 processes | 2 / 1 |",
        "|---|---|---|---|",
    ]
    for batch, runs in rates.items():
        one, two = (summary(runs[k]) for k in ("one", "two"))
        cells = [f"{s['median']:,.0f} [{s['min']:,.0f}–{s['max']:,.0f}]" for s in (one, two)]
        ratio = two["median"] / one["median"]
        lines.append(f"| {batch:,} | {cells[0]} | {cells[1]} | ×{ratio:.2f} |")
    return lines


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": cpu_count(),
        "torch": torch.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few steps, 1 round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds (5)")
    parser.add_argument("--steps", type=int, default=100, help="steps per measurement (100)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    rounds, steps = (1, 10) if args.quick else (args.rounds, args.steps)
    torch.set_num_threads(1)
    started = time.perf_counter()
    rates = measure(BATCHES, steps, rounds)
    results = {
        "environment": environment(),
        "plan": {"batches": list(BATCHES), "steps": steps, "rounds": rounds},
        "steps_per_second": {
            str(batch): {
                "one_process": summary(runs["one"]),
                "two_processes": summary(runs["two"]),
                "ratio_of_medians": statistics.median(runs["two"]) / statistics.median(runs["one"]),
            }
            for batch, runs in rates.items()
        },
        "seconds": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"training steps per second, median [min–max] of {rounds} round(s) of {steps} steps:")
    print("\n".join(report(rates)))
    print(f"written to {args.out}")
    return results


if __name__ == "__main__":
    main()
