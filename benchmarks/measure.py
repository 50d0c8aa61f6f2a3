"""Measuring side by side: interleaved repetitions, medians and ranges, peak memory."""

from __future__ import annotations

import os
import resource
import statistics
import sys
from collections.abc import Callable
from pathlib import Path

from flowforge.workbench.files import write_json


def interleaved(runs: dict[str, Callable[[], float]], reps: int) -> dict[str, list[float]]:
    """Call every run once to warm up, then ``reps`` rounds of all, in rotating order.

    Each run returns one measurement (a rate). Interleaving spreads a noisy neighbour
    over all contenders alike instead of penalizing whoever ran during the noise.
    """
    names = list(runs)
    for name in names:
        runs[name]()
    results: dict[str, list[float]] = {name: [] for name in names}
    for rep in range(reps):
        shift = rep % len(names)
        for name in names[shift:] + names[:shift]:
            results[name].append(runs[name]())
    return results


def summary(values: list[float]) -> dict[str, float]:
    """Median, minimum and maximum of repeated measurements."""
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def reset_peak_rss() -> bool:
    """Reset the kernel's peak resident set size of this process (Linux); ``False`` if not."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def rss_bytes(field: str = "VmRSS") -> int:
    """This process's resident memory (``VmRSS``) or its peak since the reset (``VmHWM``).

    Falls back to ``getrusage``'s lifetime peak where ``/proc`` is missing.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def peak_extra_bytes(fn: Callable[[], object]) -> int:
    """How far the resident memory rose above its level before ``fn()``, at its peak."""
    exact = reset_peak_rss()
    before = rss_bytes("VmRSS") if exact else rss_bytes("VmHWM")
    result = fn()
    peak = rss_bytes("VmHWM")
    del result
    return max(0, peak - before)


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def save_results(path: Path, results: dict) -> Path:
    """Write a benchmark's ``results`` to ``path`` as strict JSON, atomically (a run that
    dies midway leaves the previous results intact), making the folder if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_json(path, results)


def report_and_save(lines: list[str], results: dict, path: Path) -> dict:
    """Print a benchmark's report, closed by its duration (``results["seconds"]``) and
    where its JSON goes, then save ``results`` there; returns ``results``."""
    lines = [*lines, f"\n(benchmark took {results['seconds']:.0f} s; JSON in {path})"]
    print("\n".join(lines))
    save_results(path, results)
    return results
