"""The flow families beyond RealNVP, flowforge beside zuko: the same architecture in
both libraries, measured side by side in one process on one CPU thread.

    pip install torch==2.13.0 -e '.[bench]'
    python -m benchmarks.families            # about 3 minutes
    python -m benchmarks.families --quick    # a smoke run (seconds)
    python -m benchmarks.families --preset   # the quality preset on three seeds (a minute)

Prints, per family (NICE, MAF, autoregressive NSF, coupling NSF), training steps per
second at batch 1,024 (flowforge through ``fit``, the path ``flowforge train`` uses: with
hand-written gradients wherever every piece has them, NSF and MAF included; zuko through
the notebook's ``train`` loop, as in ``speed.py``), and ``log_prob`` and ``sample``
throughput on many points, as medians [min-max] of interleaved repetitions with the
ratio flowforge / zuko; writes ``benchmarks/results/families.json``. ``log_prob`` is
measured for both libraries the same way: one call on all the points (``raw``) and in
chunks of each size of ``CHUNKS`` under the same loop, the best chunk size of each
library kept for the ratio. zuko is skipped (with a note) where it is not installed.
``--preset`` measures ``flowforge train --preset quality`` instead (three seeds: CPU
seconds, KL to the exact moons density on fresh points), into
``benchmarks/results/families_preset.json``.

The pairs, on two-dimensional data with a standard normal base:

- NICE: 4 additive couplings, MLP ``1 -> 32 -> 32 -> 1``, then a learned per-column
  scale (flowforge ``nice()``; zuko ``NICE(transforms=4, hidden_features=(32, 32))``).
- MAF: 5 affine MADE layers with hidden layers ``(32, 32)``, columns reversed between
  them (``maf()``; zuko ``MAF(transforms=5, hidden_features=(32, 32))``).
- NSF: 5 MADE layers with a rational-quadratic spline of 8 bins, hidden ``(64, 64)``
  (``nsf()``: bound 4; zuko ``NSF(transforms=5, bins=8)``: bound 5). The same parameter
  count (checked). zuko's spline maps data to latent in its forward direction, so its
  ``log_prob`` evaluates the spline and its sampling solves the quadratic; flowforge's
  maps latent to data, so ``log_prob`` solves the quadratic.
- NSF coupling: 5 spline couplings (``nsf(coupling=True)``, Split/Swap, each network
  ``1 -> 64 -> 64 -> 23``) beside zuko ``NSF(..., passes=2)``, whose masked networks
  read both columns (on two columns, the same as its autoregressive NSF): flowforge has
  fewer parameters for the same widths (both counts printed).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.contenders import Contender, flowforge_flow, zuko_flow
from benchmarks.measure import interleaved, report_and_save, summary
from benchmarks.speed import _cell, environment, fit_steps, notebook_steps
from flowforge.evaluate import DEFAULT_CHUNK
from flowforge.families import FAMILIES as FLOW_FAMILIES

RESULTS = Path(__file__).parent / "results" / "families.json"
BATCH = 1024

# family -> (flowforge builder options, zuko constructor call), both for 2-D data: the
# families of flowforge.families.FAMILIES that zuko has with the same architecture.
COUNTERPARTS: dict[str, tuple[dict, Callable[[], torch.nn.Module]]] = {
    "nice": (
        {"couplings": 4, "hidden": 32},
        lambda: _zuko().flows.NICE(2, transforms=4, hidden_features=(32, 32)),
    ),
    "maf": (
        {"layers": 5, "hidden": 32},
        lambda: _zuko().flows.MAF(2, transforms=5, hidden_features=(32, 32)),
    ),
    "nsf": (
        {"layers": 5, "hidden": 64, "bins": 8},
        lambda: _zuko().flows.NSF(2, transforms=5, bins=8, hidden_features=(64, 64)),
    ),
    # zuko's coupling NSF (passes=2) on two columns: a masked network over both columns,
    # the first column's spline constant (so, on 2-D data, zuko's autoregressive NSF);
    # flowforge's couples through Split/Swap, one column per layer, its network reading
    # the other column only: fewer parameters for the same widths (both counts printed).
    "nsf-coupling": (
        {"layers": 5, "hidden": 64, "bins": 8, "coupling": True},
        lambda: _zuko().flows.NSF(2, transforms=5, bins=8, hidden_features=(64, 64), passes=2),
    ),
}
FAMILIES = [name for name in COUNTERPARTS if name.split("-")[0] in FLOW_FAMILIES]
# Chunk sizes tried for every contender's log_prob on many points (the best is kept).
CHUNKS = (4096, DEFAULT_CHUNK)


def flowforge_model(family: str) -> torch.nn.Module:
    """The family's flowforge flow on 2-D data, as its zuko counterpart is built."""
    return FLOW_FAMILIES[family.split("-")[0]].build(2, **COUNTERPARTS[family][0])


# Families built from the same MADE networks in both libraries: equal parameter counts.
SAME_PARAMETERS = ("maf", "nsf")


def _zuko():
    import zuko

    return zuko


@dataclass(frozen=True)
class Plan:
    """Sizes of one run."""

    steps: int  # training steps per repetition
    reps: int
    points: int  # scored and sampled per repetition
    throughput_reps: int


FULL = Plan(steps=60, reps=5, points=200_000, throughput_reps=3)
QUICK = Plan(steps=3, reps=1, points=2_000, throughput_reps=1)


def flowforge_contender(family: str) -> Contender:
    torch.manual_seed(0)
    return flowforge_flow(flowforge_model(family), "flowforge", f"flowforge.{family}()")


def zuko_contender(family: str) -> Contender:
    torch.manual_seed(0)
    flow = COUNTERPARTS[family][1]()
    return zuko_flow(flow, f"zuko.flows.{type(flow).__name__}")


def _rate(fn: Callable[[], object], count: int) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        fn()
        return count / (time.perf_counter() - started)

    return run


def measure_family(family: str, plan: Plan, with_zuko: bool) -> dict:
    """Steps per second, and points per second of scoring and sampling, for one family."""
    built = {"flowforge": flowforge_contender(family)}
    if with_zuko:
        built["zuko"] = zuko_contender(family)
        if family in SAME_PARAMETERS and built["zuko"].parameters != built["flowforge"].parameters:
            raise RuntimeError(
                f"{family}: flowforge has {built['flowforge'].parameters} parameters, zuko "
                f"{built['zuko'].parameters}; the pair is no longer the same architecture"
            )
    points = torch.randn(BATCH * plan.steps, 2, generator=torch.Generator().manual_seed(0))
    x = torch.randn(plan.points, 2, generator=torch.Generator().manual_seed(1))
    train = {"flowforge": fit_steps(built["flowforge"].model, points, BATCH)[0]}
    if with_zuko:
        train["zuko"] = notebook_steps(built["zuko"], points, BATCH)
    scorers = {name: _scorers(c) for name, c in built.items()}
    score = {
        f"{name} {how}": _rate(lambda f=f: f(x), plan.points)
        for name, ways in scorers.items()
        for how, f in ways.items()
    }
    scored = _summaries(interleaved(score, plan.throughput_reps))
    sample = {
        name: _rate(lambda c=c: c.sample(plan.points), plan.points) for name, c in built.items()
    }
    return {
        "parameters": {name: c.parameters for name, c in built.items()},
        "notes": {name: c.note for name, c in built.items()},
        "steps_per_second": _summaries(interleaved(train, plan.reps)),
        "score_points_per_second": _best_chunked(scored, built),
        "score_all": scored,
        "sample_points_per_second": _summaries(interleaved(sample, plan.throughput_reps)),
    }


def _scorers(contender: Contender) -> dict[str, Callable[[torch.Tensor], torch.Tensor]]:
    """A contender's ``log_prob`` of many points without gradients: in one call (``raw``)
    and in chunks of each size of ``CHUNKS``, the same loop for every library."""
    log_prob = contender.log_prob  # the library's own call, here without gradients

    def chunked(size: int) -> Callable[[torch.Tensor], torch.Tensor]:
        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.cat([log_prob(part) for part in x.split(size)])

        return run

    def raw(x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return log_prob(x)

    return {"raw": raw, **{f"chunk {size}": chunked(size) for size in CHUNKS}}


def _best_chunked(scored: dict, built: dict) -> dict:
    """Each contender's fastest chunked ``log_prob`` (its best-tried chunk size)."""
    best = {}
    for name in built:
        ways = {k: v for k, v in scored.items() if k.startswith(f"{name} chunk")}
        key = max(ways, key=lambda k: ways[k]["median"])
        best[name] = {**ways[key], "chunk": int(key.rsplit(" ", 1)[1])}
    return best


def _summaries(results: dict[str, list[float]]) -> dict:
    return {name: summary(values) for name, values in results.items()}


def _ratio(stats: dict) -> str:
    if "zuko" not in stats or "flowforge" not in stats:
        return ""
    return f"  x{stats['flowforge']['median'] / stats['zuko']['median']:.2f}"


def report(results: dict) -> list[str]:
    lines = [
        "",
        f"Training steps/s (batch {BATCH}), log_prob and sample points/s: median [min-max];",
        "log_prob chunked: each library's best chunk size of "
        f"{', '.join(map(str, results.get('chunks', CHUNKS)))} (the same loop for both)",
    ]
    for family, entry in results["families"].items():
        params = ", ".join(f"{n} {p:,}" for n, p in entry["parameters"].items())
        lines.append(f"  {family} (parameters: {params})")
        for key, label in (
            ("steps_per_second", "train steps/s"),
            ("score_points_per_second", "log_prob chunked"),
            ("sample_points_per_second", "sample pts/s"),
        ):
            stats = entry[key]
            cells = "  ".join(f"{n} {_cell(s, 0)}" for n, s in stats.items())
            lines.append(f"    {label:16s} {cells}{_ratio(stats)}")
        every = entry.get("score_all", {})
        raw = {k.split(" ")[0]: v for k, v in every.items() if k.endswith(" raw")}
        if raw:
            cells = "  ".join(f"{n} {_cell(s, 0)}" for n, s in raw.items())
            lines.append(f"    {'log_prob raw':16s} {cells}{_ratio(raw)}")
    return lines


PRESET_RESULTS = RESULTS.with_name("families_preset.json")
PRESET_SEEDS = (0, 1, 2)
FRESH_POINTS = 100_000  # scored per seed, drawn apart from the training and held-out sets
KL_TARGET = 1e-3
SECONDS_TARGET = 10.0


def preset_trial(
    seed: int, preset: str = "quality", fresh: int = FRESH_POINTS, extra: tuple[str, ...] = ()
) -> dict:
    """``flowforge train --preset PRESET --seed SEED`` as the command line trains it
    (its data, model, EM fit of the mixture, ``fit`` with per-epoch validation), timed in
    CPU seconds (``time.process_time``, one thread) and wall seconds, then scored by the
    paired KL to the exact moons density on ``fresh`` new points."""
    from flowforge.evaluate import log_likelihood
    from flowforge.initialize import initialize_from_data
    from flowforge.training import fit
    from flowforge.workbench.cli.main import build_parser
    from flowforge.workbench.cli.train import new_run
    from flowforge.workbench.runs.kinds import build_model
    from flowforge.workbench.scoring.metrics import paired_kl
    from flowforge.workbench.scoring.truth import true_density

    flags = ["train", "--preset", preset, "--seed", str(seed), *extra]
    args = build_parser().parse_args(flags)
    prepared = new_run(args)
    config = prepared.config
    cpu, wall = time.process_time(), time.perf_counter()
    torch.manual_seed(config.seed)
    model = build_model(config)
    initialize_from_data(model, prepared.train.points, seed=config.seed)
    history = fit(
        model,
        prepared.train.points,
        validation=prepared.heldout.points,
        **config.recipe,
        seed=config.seed,
        restore_best=False,
        progress=False,
    )
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    truth = true_density(config.data, config.standardization)
    points = truth.sample(fresh, seed=1_000_003 + seed)
    model_lp = log_likelihood(model, points.to(torch.float32)).double()
    kl = paired_kl(truth.log_prob(points), model_lp)
    heldout = log_likelihood(model, prepared.heldout.points).double()
    kl_heldout = paired_kl(truth.log_prob(prepared.heldout.points), heldout)
    return {
        "seed": seed,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "train_seconds": sum(history.train_seconds),
        "kl_fresh": kl.mean,
        "kl_fresh_stderr": kl.stderr,
        "kl_heldout": kl_heldout.mean,
        "kl_heldout_stderr": kl_heldout.stderr,
        "fresh_points": fresh,
    }


def measure_preset(seeds: tuple[int, ...] = PRESET_SEEDS) -> dict:
    """``preset_trial`` for every seed, with the preset's command and targets."""
    from flowforge.workbench.cli.model_options import preset_text

    # One small untimed run first: the process's one-time costs (first calls, memory
    # pools) are not the preset's.
    preset_trial(
        0, fresh=1000, extra=("--n-samples", "4096", "--n-heldout", "1024", "--epochs", "1")
    )
    trials = [preset_trial(seed) for seed in seeds]
    return {
        "command": "flowforge train --preset quality",
        "expands_to": "flowforge train " + preset_text("quality"),
        "targets": {"kl": KL_TARGET, "cpu_seconds": SECONDS_TARGET},
        "trials": trials,
        "met": all(
            t["kl_fresh"] <= KL_TARGET and t["cpu_seconds"] <= SECONDS_TARGET for t in trials
        ),
    }


def preset_report(results: dict) -> list[str]:
    p = results["preset"]
    lines = [
        "",
        f"{p['command']}  (= {p['expands_to']})",
        "seconds: fit and the mixture's EM fit, CPU (one thread) and wall; KL(truth || model)"
        " in nats, paired, on fresh points and on the run's held-out set",
    ]
    for t in p["trials"]:
        lines.append(
            f"  seed {t['seed']}: CPU {t['cpu_seconds']:.1f} s, wall {t['wall_seconds']:.1f} s;"
            f" KL fresh {t['kl_fresh']:.5f} ± {t['kl_fresh_stderr']:.5f}"
            f" (n={t['fresh_points']:,}), held-out {t['kl_heldout']:.5f}"
        )
    verdict = "met" if p["met"] else "NOT met"
    lines.append(
        f"  target KL <= {p['targets']['kl']} in <= {p['targets']['cpu_seconds']:.0f} s on every"
        f" seed: {verdict}"
    )
    return lines


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    parser.add_argument("--out", type=Path, default=None, help="where to write the JSON")
    parser.add_argument(
        "--preset",
        action="store_true",
        help="instead: train `flowforge train --preset quality` on three seeds and score it",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    torch.set_num_threads(1)  # both libraries alike
    if args.preset:
        started = time.perf_counter()
        seeds = PRESET_SEEDS[:1] if args.quick else PRESET_SEEDS
        results = {"environment": environment(), "preset": measure_preset(seeds)}
        results["seconds"] = time.perf_counter() - started
        return report_and_save(preset_report(results), results, args.out or PRESET_RESULTS)
    args.out = args.out or RESULTS
    with_zuko = importlib.util.find_spec("zuko") is not None
    started = time.perf_counter()
    results: dict = {"environment": environment(), "plan": plan.__dict__, "batch": BATCH}
    results["chunks"] = list(CHUNKS)
    results["families"] = {f: measure_family(f, plan, with_zuko) for f in FAMILIES}
    results["seconds"] = time.perf_counter() - started
    lines = report(results)
    if not with_zuko:
        lines.append("zuko is not installed: flowforge alone (pip install -e '.[bench]')")
    return report_and_save(lines, results, args.out)


if __name__ == "__main__":
    main()
