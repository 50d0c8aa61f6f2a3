"""Which broad proposal lets ``flowforge.importance.diagnose`` see a missing mode?

Exact samplers of each 2-D target (``TargetSampler``) stand in for a perfect flow (how
often is it flagged: the false-alarm rate), and exact samplers of some of its modes for a
flow that dropped the rest (how often is that flagged: the power), each diagnosed with
every broad proposal, ``n`` samples, ``reps`` repetitions. Writes
``benchmarks/results/importance_broad.json``.

    OMP_NUM_THREADS=1 python -m benchmarks.importance_broad [--reps 30] [--n 100000]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from benchmarks.speed import environment
from flowforge import targets
from flowforge.importance import TargetSampler, diagnose

RESULTS = Path(__file__).resolve().parent / "results" / "importance_broad.json"
BROADS = ("uniform", "gaussian", "defensive")
# (target, modes kept or None for all, what it stands for)
CASES = (
    ("two-moons", None, "exact"),
    ("two-moons", [0], "one moon of two"),
    ("circular-mixture", None, "exact"),
    ("circular-mixture", list(range(7)), "7 of 8 modes"),
    ("ring-mixture", None, "exact"),
    ("ring-mixture", [1], "outer ring only"),
    ("banana", None, "exact"),
    ("funnel", None, "exact"),
    ("gmm40", None, "exact"),
    ("gmm40", list(range(39)), "39 of 40 modes"),
    ("gmm40", list(range(30)), "30 of 40 modes"),
)


def run_case(name: str, keep, broad: str, n: int, reps: int, seed: int) -> dict:
    target = targets.get(name)
    flagged_gap = flagged_modes = 0
    gaps, broad_se, broad_ess = [], [], []
    for r in range(reps):
        g = torch.Generator().manual_seed(seed + 1000 * r)
        sampler = TargetSampler(target, keep=keep, generator=g)
        d = diagnose(sampler, target, n, broad=broad, generator=g, grid=0)
        flagged_gap += any(w.startswith("the flow's log Z-hat") for w in d.warnings)
        flagged_modes += any(w.startswith("modes") for w in d.warnings)
        gaps.append(d.log_z - d.broad_log_z)
        broad_se.append(d.broad_log_z_se)
        broad_ess.append(d.broad_ess)
    median = lambda v: sorted(v)[len(v) // 2]  # noqa: E731
    return {
        "target": name,
        "kept": "all" if keep is None else len(keep),
        "broad": broad,
        "reps": reps,
        "flagged_by_broad": flagged_gap,
        "flagged_by_modes": flagged_modes,
        "median_gap": median(gaps),
        "median_broad_se": median(broad_se),
        "median_broad_ess": median(broad_ess),
    }


def table(results: dict) -> str:
    """The Markdown table: per case, how often each broad proposal flagged it."""
    rows = results["rows"]
    cases = list(dict.fromkeys((r["target"], r["case"]) for r in rows))
    broads = list(dict.fromkeys(r["broad"] for r in rows))
    reps = rows[0]["reps"]
    head = "| target | sampler | " + " | ".join(f"`{b}`: flagged, se" for b in broads)
    lines = [head + " | flagged by mode mass |", "|---|---|" + "---:|" * (len(broads) + 1)]
    for target, case in cases:
        mine = {r["broad"]: r for r in rows if (r["target"], r["case"]) == (target, case)}
        cells = [
            f"{mine[b]['flagged_by_broad']}/{reps}, {mine[b]['median_broad_se']:.4f}"
            for b in broads
        ]
        modes = mine[broads[0]]["flagged_by_modes"]
        lines.append(f"| {target} | {case} | " + " | ".join(cells) + f" | {modes}/{reps} |")
    lines.append(
        f"\nHow often `diagnose` flagged an exact sampler (false alarms) or one that dropped "
        f'modes (power), {reps} repetitions of {results["n"]:,} samples; "se" is the median '
        "standard error of the broad proposal's log Z-hat (nats). `defensive` (the default) "
        "mixes the sampler half and half with the uniform on the target's box."
    )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    rows, began = [], time.process_time()
    for i, (name, keep, label) in enumerate(CASES):
        for broad in BROADS:
            row = run_case(name, keep, broad, args.n, args.reps, seed=i)
            row["case"] = label
            rows.append(row)
            print(
                f"{name:17s} {label:16s} {broad:9s} broad flags {row['flagged_by_broad']:3d}/"
                f"{args.reps}  mode flags {row['flagged_by_modes']:3d}  gap "
                f"{row['median_gap']:+.4f}  broad se {row['median_broad_se']:.4f}"
                f"  broad ESS {100 * row['median_broad_ess']:.2f} %",
                flush=True,
            )
    out = {
        "command": f"python -m benchmarks.importance_broad --reps {args.reps} --n {args.n}",
        "n": args.n,
        "environment": environment(),
        "cpu_seconds": round(time.process_time() - began, 1),
        "rows": rows,
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
