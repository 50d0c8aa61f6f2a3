"""How fast the notebook's flow trains and scores in flowforge, beside the notebook's own
code, zuko, nflows and normflows: one process, one CPU thread for every library.

    pip install torch==2.13.0 -e '.[bench]'
    python -m benchmarks.speed              # the full run (several minutes)
    python -m benchmarks.speed --quick      # a smoke run of every section (seconds)

Prints tables of medians, min-max ranges and ratios, and writes
``benchmarks/results/speed.json``. Libraries that are not installed are skipped.

Sections:

1. Training steps per second at batches 128, 1,024 and 8,192 (interleaved
   repetitions). The notebook's code and the peers run the notebook's ``train``
   loop (a ``DataLoader`` and ``torch.optim.Adam``); flowforge runs ``fit``, the path
   ``flowforge train`` uses: eagerly with its hand-written gradients (the default),
   eagerly with autograd (``gradients="autograd"``), and with ``compile=True``
   (autograd through the compiled model; compile time apart).
2. ``log_prob`` and ``sample`` throughput on 1,000,000 points: each library's plain
   call under ``torch.no_grad`` (``model.log_prob(x)``, ``model.sample(n)``), and the
   same call cut into chunks of the size a sweep found fastest for that library,
   interleaved; rates are points per CPU-second of the one thread (the wall-clock
   rates are kept in the JSON). Then the peak memory of one plain call, in a fresh
   process; flowforge also scores 100,000,000 points to show its memory stays bounded.
   Beside them, the ceiling no eager implementation passes: the model's matrix
   products alone (every conditioner layer's ``W @ h`` into a preallocated buffer, no
   bias, no activation, no coupling arithmetic) on as many points, in the chunk size that
   suits them best.
3. Seconds of training until the held-out NLL (20,000 points) first reaches 1.9,
   checked after every epoch with the clock paused: the notebook's recipe (batch
   128, Adam at 1e-3, no shuffling) in every library, and flowforge's default
   recipe; then the whole default ``flowforge train`` (training, evaluation,
   figures and report) as a command, and its final held-out NLL.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import torch

import flowforge
import flowforge.training
from benchmarks import contenders, seed_notebook
from benchmarks.measure import cpu_count, interleaved, report_and_save, summary
from flowforge.workbench.data import two_moons_splits

TARGET_NLL = 1.9
PEERS = ["zuko", "nflows", "normflows"]
RESULTS = Path(__file__).parent / "results" / "speed.json"


@dataclass(frozen=True)
class Plan:
    """Sizes of one benchmark run."""

    batches: tuple[tuple[int, int], ...]  # (batch size, steps per repetition)
    reps: int
    points: int  # for throughput
    throughput_reps: int
    huge_points: int  # flowforge scores this many points once (0: skip)
    seed_recipe_cap: float  # seconds of training before giving up on NLL 1.9
    default_seeds: int
    full_runs: int
    train_points: int
    compile: bool  # also measure fit(compile=True) (tens of seconds to compile)


FULL = Plan(
    ((128, 300), (1024, 150), (8192, 20)), 5, 1_000_000, 3, 100_000_000, 60.0, 5, 1, 100_000, True
)
QUICK = Plan(((128, 20), (1024, 10), (8192, 2)), 2, 20_000, 2, 0, 2.0, 1, 1, 20_000, False)


# --- 1. training steps per second ------------------------------------------------


class _LogProbModel(torch.nn.Module):
    """A contender seen as the notebook's model: ``parameters()`` and ``log_prob(x)``."""

    def __init__(self, contender: contenders.Contender) -> None:
        super().__init__()
        self.inner = contender.model
        self._log_prob = contender.log_prob

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        return self._log_prob(x)


def notebook_steps(contender: contenders.Contender, points: torch.Tensor, batch: int) -> Callable:
    """Steps per second of the notebook's ``train`` loop over ``points``."""
    model = _LogProbModel(contender)
    loader = seed_notebook.seed_loader(points, batch)
    steps = math.ceil(len(points) / batch)

    def run() -> float:
        started = time.perf_counter()
        seed_notebook.train(model, loader, num_epochs=1)
        return steps / (time.perf_counter() - started)

    return run


def fit_steps(
    model: torch.nn.Module,
    points: torch.Tensor,
    batch: int,
    compile: bool = False,
    gradients: str = "auto",
) -> tuple[Callable, dict]:
    """Steps per second of ``flowforge.fit`` (training time only); compile time apart."""
    steps = math.ceil(len(points) / batch)
    info: dict = {}

    def run() -> float:
        history = flowforge.fit(
            model,
            points,
            epochs=1,
            batch_size=batch,
            lr=1e-3,
            schedule="constant",
            progress=False,
            compile=compile,
            gradients=gradients,
        )
        info.setdefault("compile_seconds", history.compile_seconds)
        return steps / history.train_seconds[0]

    return run, info


def training_speed(names: list[str], plan: Plan) -> dict:
    """Section 1: steps per second per batch size, interleaved repetitions."""
    out = {}
    for batch, steps in plan.batches:
        points = torch.randn(batch * steps, 2, generator=torch.Generator().manual_seed(batch))
        runs, compile_info = {}, {}
        for name in names:
            contender = contenders.build(name)
            if name.startswith("flowforge"):
                runs[name], _ = fit_steps(contender.model, points, batch)
            else:
                runs[name] = notebook_steps(contender, points, batch)
        if "flowforge" in names:  # the same model and loop, gradients by autograd
            runs["flowforge-autograd"], _ = fit_steps(
                contenders.build("flowforge").model, points, batch, gradients="autograd"
            )
        if plan.compile:
            compiled = contenders.build("flowforge")
            runs["flowforge-compiled"], compile_info = fit_steps(
                compiled.model, points, batch, compile=True
            )
        results = interleaved(runs, plan.reps)
        out[str(batch)] = {
            "steps_per_repetition": steps,
            "steps_per_second": {name: summary(values) for name, values in results.items()},
            "compile_seconds": compile_info.get("compile_seconds"),
        }
    return out


# --- 2. throughput and memory ---------------------------------------------------


CHUNKS = (2048, 4096, 8192, 16384, 32768, 65536, 131072)


def chunked_score(score: Callable, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """``score`` of ``x`` cut into chunks of ``chunk`` rows, into one preallocated result."""
    out = torch.empty(len(x))
    for start in range(0, len(x), chunk):
        out[start : start + chunk] = score(x[start : start + chunk])
    return out


def chunked_sample(sample: Callable, n: int, chunk: int) -> torch.Tensor:
    """``n`` draws of ``sample`` in chunks of ``chunk``, into one preallocated result."""
    out = torch.empty(n, 2)
    for start in range(0, n, chunk):
        out[start : start + chunk] = sample(min(chunk, n - start))
    return out


def _calls(contender: contenders.Contender, x: torch.Tensor, chunk: int | None) -> dict:
    """The two operations of a contender, raw (``chunk`` None) or chunked."""
    n = len(x)
    if chunk is None:
        return {"score": lambda: contender.score(x), "sample": lambda: contender.sample(n)}
    return {
        "score": lambda: chunked_score(contender.score, x, chunk),
        "sample": lambda: chunked_sample(contender.sample, n, chunk),
    }


def _rates(fn: Callable, n: int) -> tuple[float, float]:
    """Points per second of one call of ``fn``: by CPU time and by the wall clock."""
    cpu, wall = time.process_time(), time.perf_counter()
    fn()
    return n / (time.process_time() - cpu), n / (time.perf_counter() - wall)


def _sweep(calls: Callable[[int], dict[str, Callable]], sizes: tuple, n: int) -> dict:
    """Per operation of ``calls(size)``, the best CPU rate at each chunk size (the sizes
    in rotating order, twice), and the fastest size."""
    rates: dict = {}
    for rep in range(2):
        for size in sizes[rep:] + sizes[:rep]:
            for op, fn in calls(size).items():
                rates.setdefault(op, {}).setdefault(size, []).append(_rates(fn, n)[0])
    out = {}
    for op, per_size in rates.items():
        fastest = {size: max(values) for size, values in per_size.items()}
        out[op] = {"best": max(fastest, key=fastest.get), "points_per_second": fastest}
    return out


def sweep_chunks(contender: contenders.Contender, x: torch.Tensor, sizes: tuple) -> dict:
    """Per operation (``score``, ``sample``), the CPU rate at each chunk size and the best
    size: each library gets the chunking that suits it best."""
    return _sweep(lambda size: _calls(contender, x, size), sizes, len(x))


def throughput(names: list[str], plan: Plan) -> dict:
    """Section 2a: points per second of ``score`` and ``sample`` on ``plan.points``,
    each library's plain call and the same call cut into chunks of its own best size
    (a sweep first), all in one rotation of interleaved repetitions."""
    x = torch.randn(plan.points, 2, generator=torch.Generator().manual_seed(1))
    sizes = tuple(c for c in CHUNKS if c < plan.points) or (plan.points // 4,)
    built = {name: contenders.build(name) for name in names}
    sweeps = {name: sweep_chunks(c, x, sizes) for name, c in built.items()}
    runs = {}
    for name, contender in built.items():
        for op in ("score", "sample"):
            best = sweeps[name][op]["best"]
            runs[(name, op, "raw")] = _calls(contender, x, None)[op]
            runs[(name, op, "chunked")] = _calls(contender, x, best)[op]
    keys = list(runs)
    for key in keys:  # warm up
        runs[key]()
    cpu: dict = {key: [] for key in keys}
    wall: dict = {key: [] for key in keys}
    for rep in range(plan.throughput_reps):
        shift = rep * len(keys) // max(plan.throughput_reps, 1)
        for key in keys[shift:] + keys[:shift]:
            c, w = _rates(runs[key], plan.points)
            cpu[key].append(c)
            wall[key].append(w)
    out: dict = {"points": plan.points, "chunk_sizes": list(sizes), "clock": "cpu"}
    for op in ("score", "sample"):
        out[op] = {
            name: {
                "raw": summary(cpu[(name, op, "raw")]),
                "chunked": summary(cpu[(name, op, "chunked")]),
                "best_chunk": sweeps[name][op]["best"],
                "sweep": {str(k): v for k, v in sweeps[name][op]["points_per_second"].items()},
                "raw_wall": summary(wall[(name, op, "raw")]),
                "chunked_wall": summary(wall[(name, op, "chunked")]),
            }
            for name in names
        }
    if "flowforge" in built:
        model = built["flowforge"].model
        out["products_only"] = products_only(model, plan.points, sizes, plan.throughput_reps)
    return out


def products_only(model: torch.nn.Module, points: int, sizes: tuple, reps: int) -> dict:
    """Points per CPU-second of ``model``'s matrix products alone: for each chunk of
    columns, every ``torch.nn.Linear``'s ``W @ h`` (feature-major, into preallocated
    buffers, through each conditioner's layers in order), nothing else; at the best of
    the chunk ``sizes`` (swept like every contender's). The BLAS's speed at these shapes
    is the ceiling of any eager evaluation."""
    weights = [m.weight.detach() for m in model.modules() if isinstance(m, torch.nn.Linear)]
    width = max(max(w.shape) for w in weights)
    flops = 2 * sum(w.numel() for w in weights)

    @functools.cache  # one set of buffers per chunk size, touched before it is timed
    def products(chunk: int) -> Callable[[], None]:
        h = torch.randn(width, chunk)
        buffers = [torch.zeros(width, chunk), torch.zeros(width, chunk)]

        def run() -> None:
            for _ in range(0, points, chunk):
                for i, w in enumerate(weights):
                    torch.mm(w, h[: w.shape[1]], out=buffers[i % 2][: w.shape[0]])

        return run

    swept = _sweep(lambda size: {"products": products(size)}, sizes, points)["products"]
    chunk = swept["best"]
    rates = [_rates(products(chunk), points)[0] for _ in range(reps)]
    return {
        "chunk": chunk,
        "sweep": {str(k): v for k, v in swept["points_per_second"].items()},
        "flop_per_point": flops,
        "points_per_second": summary(rates),
        "gflop_per_second": max(rates) * flops / 1e9,
    }


def _probe(name: str, operation: str, points: int) -> dict:
    command = [sys.executable, "-m", "benchmarks.memory_probe", name, operation, str(points)]
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run(command, capture_output=True, text=True, cwd=root, check=False)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def memory(names: list[str], plan: Plan) -> dict:
    """Section 2b: peak memory above the starting level, each call in a fresh process."""
    out = {
        f"{operation}_{plan.points}": {name: _probe(name, operation, plan.points) for name in names}
        for operation in ("score", "sample")
    }
    if plan.huge_points:
        out[f"score_{plan.huge_points}"] = {
            "flowforge": _probe("flowforge", "score", plan.huge_points)
        }
    return out


# --- 3. time to a held-out NLL of 1.9 -----------------------------------------


def heldout_nll(contender: contenders.Contender, heldout: torch.Tensor) -> float:
    with torch.no_grad():
        return float(-contender.score(heldout).double().mean())


def seed_recipe_time(name: str, train: torch.Tensor, heldout: torch.Tensor, cap: float) -> dict:
    """Training seconds until NLL <= 1.9 with the notebook's recipe, in library ``name``."""
    contender = contenders.build(name)
    loader = seed_notebook.seed_loader(train, 128)
    clock = {"trained": 0.0, "since": time.perf_counter(), "epochs": 0, "nll": math.nan}

    def after_epoch(epoch: int) -> bool:
        clock["trained"] += time.perf_counter() - clock["since"]
        clock["epochs"], clock["nll"] = epoch + 1, heldout_nll(contender, heldout)
        clock["since"] = time.perf_counter()
        return clock["nll"] > TARGET_NLL and clock["trained"] < cap

    if name.startswith("flowforge"):
        with flowforge.training.adam(contender.model.parameters(), lr=1e-3) as optimizer:
            for epoch in range(100):
                flowforge.train(contender.model, loader, 1, optimizer=optimizer, progress=False)
                if not after_epoch(epoch):
                    break
    else:
        seed_notebook.train(_LogProbModel(contender), loader, 100, 1e-3, callback=after_epoch)
    reached = clock["nll"] <= TARGET_NLL
    return {
        "seconds": clock["trained"] if reached else None,
        "trained_seconds": clock["trained"],
        "epochs": clock["epochs"],
        "heldout_nll": clock["nll"],
        "reached": reached,
    }


class _Reached(Exception):
    pass


def default_recipe_time(seed: int, train: torch.Tensor, heldout: torch.Tensor) -> dict:
    """Training seconds until NLL <= 1.9 with ``fit`` and the default recipe."""
    contender = contenders.build("flowforge", seed)
    record: dict = {"reached": False}

    def check(state: flowforge.training.TrainState) -> None:
        nll = heldout_nll(contender, heldout)
        record.update(epochs=state.epoch, heldout_nll=nll, seconds=sum(state.history.train_seconds))
        if nll <= TARGET_NLL:
            record["reached"] = True
            raise _Reached

    try:
        flowforge.fit(contender.model, train, progress=False, seed=seed, callbacks=[check])
    except _Reached:
        pass
    if not record["reached"]:
        record["seconds"] = None
    return record


def default_run(plan: Plan) -> dict:
    """``flowforge train`` with its defaults (training, evaluation, figures, report),
    timed as a command; the final held-out NLL from the run's ``metrics.json``."""
    import tempfile

    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run"
        command = [sys.executable, "-m", "flowforge", "train", "--quiet", "--output", str(out)]
        if plan.train_points != 100_000:
            command += ["--n-samples", str(plan.train_points)]
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, cwd=root, check=False)
        seconds = time.perf_counter() - started
        if done.returncode != 0:
            return {"error": done.stderr.strip()[-500:], "seconds": seconds}
        metrics = json.loads((out / "metrics.json").read_text())
    return {
        "seconds": seconds,
        "train_seconds": metrics["train_seconds"],
        "final_heldout_nll": metrics["heldout"]["nll"],
        "stderr": metrics["heldout"]["stderr"],
        "epochs": metrics["epochs"],
    }


def time_to_target(names: list[str], plan: Plan) -> dict:
    """Section 3."""
    train, heldout = two_moons_splits(plan.train_points, 20_000, seed=0)
    x, h = train.points, heldout.points
    seed_recipe = {
        name: seed_recipe_time(name, x, h, plan.seed_recipe_cap)
        for name in names
        if name != "flowforge-exp"
    }
    default = [default_recipe_time(seed, x, h) for seed in range(plan.default_seeds)]
    full = [default_run(plan) for _ in range(plan.full_runs)]
    return {
        "recipe": flowforge.training.DEFAULT_RECIPE.to_dict(),
        "seed_recipe": seed_recipe,
        "default_recipe": default,
        "default_recipe_seconds": summary(
            [r["seconds"] if r["seconds"] is not None else math.inf for r in default]
        ),
        "default_run": full,
    }


# --- report ------------------------------------------------------------------


def _cell(s: dict, digits: int = 0) -> str:
    return f"{s['median']:,.{digits}f} [{s['min']:,.{digits}f}-{s['max']:,.{digits}f}]"


def _best_other(stats: dict, of: list[str]) -> tuple[str, float]:
    candidates = [(stats[n]["median"], n) for n in of if n in stats]
    value, name = max(candidates)
    return name, value


def report_training(result: dict, names: list[str]) -> list[str]:
    lines = ["", "Training steps per second, median [min-max] of interleaved repetitions"]
    others = [n for n in names if not n.startswith("flowforge")]
    for batch, entry in result.items():
        stats = entry["steps_per_second"]
        seed_rate = stats["seed"]["median"]
        best_name, best_rate = _best_other(stats, others)
        lines.append(f"  batch {batch}:")
        for name, s in stats.items():
            ratio = s["median"] / seed_rate
            extra = ""
            if name.startswith("flowforge"):
                extra = f"  x{s['median'] / best_rate:.2f} vs fastest other ({best_name})"
            lines.append(f"    {name:19s} {_cell(s):>28s}  x{ratio:.2f} vs seed{extra}")
        if entry.get("compile_seconds") is not None:
            lines.append(
                f"    (flowforge-compiled: compile {entry['compile_seconds']:.1f} s apart)"
            )
    return lines


def _others(stats: dict, name: str) -> list[str]:
    """The contenders ``name`` is compared with: every library but flowforge's own."""
    return [n for n in stats if not n.startswith("flowforge")]


def _best_chunked(stats: dict, of: list[str]) -> tuple[str, float]:
    value, name = max((stats[n]["chunked"]["median"], n) for n in of)
    return name, value


def report_throughput(result: dict, mem: dict, names: list[str]) -> list[str]:
    points = result.get("points", 0)
    lines = [
        "",
        f"Throughput on {points:,} points, million points per CPU-second of the one thread,",
        "median [min-max] of interleaved repetitions: each library's plain call (under",
        "torch.no_grad), and the same call cut into chunks of the size its own sweep found",
        "fastest (sizes " + ", ".join(f"{c:,}" for c in result.get("chunk_sizes", [])) + ")",
    ]
    for operation in ("score", "sample"):
        stats = result[operation]
        others = _others(stats, "flowforge")
        best_name, best = _best_chunked(stats, others)
        lines.append(
            f"  {operation} ({'model.log_prob(x)' if operation == 'score' else 'model.sample(n)'}):"
        )
        lines.append(f"    {'':15s} {'plain call':>22s} {'chunked':>22s}  best chunk")
        for name, s in stats.items():
            raw = {k: v / 1e6 for k, v in s["raw"].items() if k != "n"}
            chunked = {k: v / 1e6 for k, v in s["chunked"].items() if k != "n"}
            ratio = ""
            if name.startswith("flowforge"):
                ratio = (
                    f"  plain x{s['raw']['median'] / best:.2f}, chunked "
                    f"x{s['chunked']['median'] / best:.2f} the best other chunked ({best_name})"
                )
            lines.append(
                f"    {name:15s} {_cell(raw, 2):>22s} {_cell(chunked, 2):>22s}  "
                f"{s['best_chunk']:>7,}{ratio}"
            )
    lines.append("")
    lines.append("Peak memory above the starting level, one plain call in a fresh process (MiB)")
    for key, per_name in mem.items():
        cells = []
        for name, probe in per_name.items():
            value = probe.get("peak_extra_bytes")
            cells.append(f"{name} {value / 2**20:,.0f}" if value is not None else f"{name} -")
        lines.append(f"  {key}: " + ", ".join(cells))
    return lines


def report_time(result: dict) -> list[str]:
    lines = ["", f"Seconds of training to a held-out NLL of {TARGET_NLL}"]
    for name, r in result["seed_recipe"].items():
        when = f"{r['seconds']:.2f} s" if r["reached"] else f"not in {r['trained_seconds']:.0f} s"
        lines.append(
            f"  notebook recipe, {name:10s} {when:>14s}  ({r['epochs']} epochs, "
            f"NLL {r['heldout_nll']:.3f})"
        )
    d = result["default_recipe_seconds"]
    recipe = result["recipe"]
    lines.append(
        f"  flowforge default recipe   {_cell(d, 2)} s over {d['n']} seeds  "
        f"(batch {recipe['batch_size']}, lr {recipe['lr']}, {recipe['schedule']}, "
        f"{recipe['epochs']} epochs)"
    )
    for r in result["default_run"]:
        lines.append(
            f"  flowforge train: {r['seconds']:.1f} s in all ({r['train_seconds']:.1f} s "
            f"training and validation), final held-out NLL {r['final_heldout_nll']:.4f} "
            f"± {r['stderr']:.4f}"
        )
    return lines


def targets(results: dict, names: list[str]) -> list[str]:
    """The issue's targets, each with the measured value."""
    lines = ["", "Targets"]
    tt = results["time_to_nll"]
    t = tt["default_recipe_seconds"]["median"]
    lines.append(f"  default recipe reaches NLL 1.9 in <= 0.5 s: {t:.2f} s  {_ok(t <= 0.5)}")
    runs = tt["default_run"]
    worst_time = max(r["seconds"] for r in runs)
    worst_nll = max(r["final_heldout_nll"] for r in runs)
    lines.append(
        f"  default run < 30 s with final NLL <= 1.865: {worst_time:.1f} s, "
        f"{worst_nll:.4f}  {_ok(worst_time < 30 and worst_nll <= 1.865)}"
    )
    for batch in ("128", "1024"):
        stats = results["training"][batch]["steps_per_second"]
        others = [n for n in names if not n.startswith("flowforge")]
        best_name, best = _best_other(stats, others)
        for name in ("flowforge", "flowforge-compiled"):
            if name not in stats:
                continue
            rate, seed_rate = stats[name]["median"], stats["seed"]["median"]
            lines.append(
                f"  batch {batch}: {name} {rate:,.0f} steps/s = x{rate / seed_rate:.2f}"
                f" the seed, x{rate / best:.2f} the fastest other ({best_name})  "
                f"{_ok(rate >= 3 * best)}"
            )
    for operation in ("score", "sample"):
        stats = results["throughput"][operation]
        others = _others(stats, "flowforge")
        if not others:
            continue
        best_name, best = _best_chunked(stats, others)
        raw = stats["flowforge"]["raw"]["median"]
        own = stats["flowforge"]["chunked"]["median"]
        call = "log_prob(x)" if operation == "score" else "sample(n)"
        lines.append(
            f"  {call} on {results['throughput']['points']:,} points: x{raw / best:.2f} the best "
            f"other chunked ({best_name}, chunk {stats[best_name]['best_chunk']:,})  "
            f"{_ok(raw >= 3 * best)}"
        )
        lines.append(
            f"  {call}: {raw / 1e6:.1f} M points/s (CPU time), >= 15  {_ok(raw >= 15e6)}; "
            f"x{raw / own:.2f} flowforge's own best chunking  {_ok(raw >= 0.9 * own)}"
        )
    products = results["throughput"].get("products_only")
    if products is not None:
        rate = products["points_per_second"]["median"]
        plain_score = results["throughput"]["score"]["flowforge"]["raw"]["median"]
        lines.append(
            f"  the ceiling: the model's matrix products alone run at {rate / 1e6:.1f} M "
            f"points/s ({products['gflop_per_second']:.0f} GFLOP/s, "
            f"{products['flop_per_point']:,} FLOP per point, chunk {products['chunk']:,}); "
            f"log_prob(x) reaches {plain_score / rate:.0%} of it"
        )
    return lines


def _ok(flag: bool) -> str:
    return "met" if flag else "NOT met"


def _load() -> list[float] | None:
    """The machine's 1, 5 and 15 minute load averages (other processes share the CPUs)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def cpu_model() -> str | None:
    """The CPU's model name (``/proc/cpuinfo``), or ``None`` where it cannot be read: the
    rates differ much between CPUs (MKL's small products, torch's vectorized kernels)."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None


def environment() -> dict:
    versions = {}
    for package in ("torch", "zuko", "nflows", "normflows", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_model": cpu_model(),
        "cpus": cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average": _load(),
        "versions": versions,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    torch.set_num_threads(1)  # every library alike
    wanted = ["seed", "flowforge", "flowforge-exp", *PEERS]
    names, missing = contenders.available(wanted)
    notes = {name: contenders.build(name).note for name in names}
    started = time.perf_counter()
    results = {"environment": environment(), "plan": plan.__dict__, "notes": notes}
    results["missing"] = missing
    results["training"] = training_speed(names, plan)
    results["throughput"] = throughput(names, plan)
    results["memory"] = memory(names, plan)
    results["time_to_nll"] = time_to_target(names, plan)
    results["seconds"] = time.perf_counter() - started
    results["environment"]["load_average_after"] = _load()
    lines = [f"{name:14s} {note}" for name, note in notes.items()]
    load = results["environment"].get("load_average"), results["environment"]["load_average_after"]
    if None not in load:
        lines.append(
            f"load average (1, 5, 15 min) on {results['environment']['cpus']} CPUs: "
            f"{load[0]} at the start, {load[1]} at the end"
        )
    if missing:
        lines.append(f"not installed, skipped: {', '.join(missing)}")
    lines += report_training(results["training"], names)
    lines += report_throughput(results["throughput"], results["memory"], names)
    lines += report_time(results["time_to_nll"])
    lines += targets(results, names)
    return report_and_save(lines, results, args.out)


if __name__ == "__main__":
    main()
