"""How data-parallel training scales: ``fit`` in one process and in two gloo processes.

    python -m benchmarks.distributed             # 5 rounds (about two minutes)
    python -m benchmarks.distributed --quick     # a smoke run (seconds, plus start-up)

The notebook's model (4 affine couplings, hidden width 16, 1,352 parameters) trains on
the moons at global batches of 128, 1,024 and 8,192 rows, and the same model 8 times
wider (hidden width 128, 68,104 parameters) at 8,192, with one CPU thread per process:
in this process alone, then in two processes (``torch.multiprocessing``, gloo on
127.0.0.1) that split every batch between them. Rounds alternate one process and two
(the two stay started between rounds, waiting on a queue), so a noisy neighbour slows
both alike. A rate is optimizer steps per second of ``fit``'s training loop
(``History.train_seconds``: without start-up, validation or process creation). Last,
the two processes time one all-reduce of 1,352 numbers, what DDP adds to each step.

Prints the medians with their ranges and the ratio two / one, and writes
``benchmarks/results/distributed.json``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch
import torch.multiprocessing as mp

from benchmarks.measure import cpu_count, save_results, summary
from flowforge.training.distributed import free_port

RESULTS = Path(__file__).parent / "results" / "distributed.json"
# (hidden width, global batch, steps per measurement as a fraction of --steps)
CASES = ((16, 128, 1.0), (16, 1024, 1.0), (16, 8192, 1.0), (128, 8192, 0.2))
PARAMETERS = 1352  # the notebook's model
_data: dict[int, torch.Tensor] = {}


def points(n: int) -> torch.Tensor:
    """``n`` standardized moons points (made once per size and process)."""
    from flowforge.workbench.data import two_moons_splits

    if n not in _data:
        _data[n] = two_moons_splits(n, 2, seed=0)[0].points
    return _data[n]


def steps_per_second(hidden: int, batch: int, steps: int, seed: int) -> float:
    """Train the notebook's model (``hidden`` units wide) for ``steps`` steps of global
    batch ``batch``."""
    from flowforge import fit
    from flowforge.families import realnvp

    torch.manual_seed(seed)
    model = realnvp(width=2, hidden=hidden)
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


def allreduce_microseconds(numbers: int, reps: int) -> float:
    """Median time of one all-reduce (sum) of ``numbers`` float32 values, in microseconds:
    what DistributedDataParallel adds to every step for a model of that many parameters."""
    import torch.distributed as dist

    values, times = torch.ones(numbers), []
    for _ in range(reps):
        started = time.perf_counter()
        dist.all_reduce(values)
        times.append(time.perf_counter() - started)
    return 1e6 * statistics.median(times)


def worker(rank: int, port: int, commands: list, results) -> None:
    """One of two processes: measure each ``(hidden, batch, steps, seed)`` it is sent, or the
    all-reduce when the batch is ``"allreduce"``, until it is sent None."""
    from flowforge.training.distributed import distributed, loopback_environment

    os.environ.update(loopback_environment(rank, 2, port))
    torch.set_num_threads(1)
    with distributed("cpu"):
        while (command := commands[rank].get()) is not None:
            if command[0] == "allreduce":
                rate = allreduce_microseconds(*command[1:])
            else:
                rate = steps_per_second(*command)
            if rank == 0:
                results.put(rate)


def measure(steps: int, rounds: int) -> tuple[dict[tuple, dict[str, list]], float]:
    """Rates for every case: ``{(hidden, batch): {"one": [...], "two": [...]}}``,
    ``rounds`` each after one warm-up round; one process and two alternate, in rotating
    order. Also the median all-reduce time of the notebook model's gradient (µs)."""
    context = mp.get_context("spawn")
    commands, results = [context.Queue(), context.Queue()], context.Queue()
    workers = mp.spawn(worker, args=(free_port(), commands, results), nprocs=2, join=False)
    rates = {case[:2]: {"one": [], "two": []} for case in CASES}
    try:
        for round_ in range(rounds + 1):
            shift = round_ % len(CASES)
            for hidden, batch, fraction in CASES[shift:] + CASES[:shift]:
                command = (hidden, batch, max(2, round(fraction * steps)), round_)
                one = steps_per_second(*command)
                for queue in commands:
                    queue.put(command)
                two = results.get(timeout=600)
                if round_:  # round 0 warms up both
                    rates[hidden, batch]["one"].append(one)
                    rates[hidden, batch]["two"].append(two)
        for queue in commands:
            queue.put(("allreduce", PARAMETERS, 50 * steps))
        allreduce = results.get(timeout=600)
    finally:
        for queue in commands:
            queue.put(None)
        workers.join()
    return rates, allreduce


def report(rates: dict[tuple, dict[str, list]]) -> list[str]:
    lines = [
        "| hidden width | global batch | 1 process | 2 processes | 2 / 1 |",
        "|---|---|---|---|---|",
    ]
    for (hidden, batch), runs in rates.items():
        one, two = (summary(runs[k]) for k in ("one", "two"))
        cells = [f"{s['median']:,.0f} [{s['min']:,.0f}–{s['max']:,.0f}]" for s in (one, two)]
        ratio = two["median"] / one["median"]
        lines.append(f"| {hidden} | {batch:,} | {cells[0]} | {cells[1]} | ×{ratio:.2f} |")
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
    rates, allreduce = measure(steps, rounds)
    results = {
        "environment": environment(),
        "plan": {"cases": [list(case) for case in CASES], "steps": steps, "rounds": rounds},
        "steps_per_second": {
            f"hidden {hidden}, batch {batch}": {
                "one_process": summary(runs["one"]),
                "two_processes": summary(runs["two"]),
                "ratio_of_medians": statistics.median(runs["two"]) / statistics.median(runs["one"]),
            }
            for (hidden, batch), runs in rates.items()
        },
        "allreduce_microseconds": {"numbers": PARAMETERS, "median": allreduce},
        "seconds": time.perf_counter() - started,
    }
    save_results(args.out, results)
    print(f"training steps per second, median [min–max] of {rounds} round(s) of {steps} steps:")
    print("\n".join(report(rates)))
    print(f"one all-reduce of {PARAMETERS:,} float32 numbers (gloo, loopback): {allreduce:.0f} µs")
    print(f"written to {args.out}")
    return results


if __name__ == "__main__":
    main()
