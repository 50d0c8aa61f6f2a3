"""Digits: flowforge's multi-scale flow against zuko's MAF and NSF, in the same CPU budget.

    python -m benchmarks.digits                          # 3 models × 3 seeds × 120 s of CPU
    python -m benchmarks.digits --budget 30 --seeds 0    # one seed, 30 s per model
    python -m benchmarks.digits --quick                  # a smoke run (seconds)

Run it where zuko is installed (``pip install zuko``); models whose library is missing
are skipped with a note. Every model sees the same data and is trained and scored the
same way:

- scikit-learn's digits, the fixed split of ``flowforge.workbench.data.digit_splits`` (1,257
  training, 180 validation, 360 test images of 8×8 pixels, values 0–16);
- uniform dequantization ``(k + u) / 17`` with fresh noise every step, then the logit
  pre-transform with ``alpha = 0.05``: each model is a ``DequantizedFlow`` whose
  data-side layers are flowforge's ``Logit`` (and, for flowforge, its multi-scale
  layers); zuko's flows see the logit-transformed flattened 64-D vectors;
- Adam with batches of 64 and a cosine learning-rate decay over the budget, one thread;
  the budget is CPU seconds of the training process (robust to a busy machine),
  validation included; after every epoch the validation NLL is measured and the best
  epoch's weights are kept;
- the score is the test set's bits per dimension, ``-log_prob / (64 ln 2)``, where
  ``log_prob`` includes the dequantization's ``-64 log 17`` (see
  ``flowforge.dequantization``), with a fixed dequantization noise.

Writes ``benchmarks/results/digits.json`` and ``docs/digits.png`` (64 samples of each
model, the first seed's, beside 64 test images) and prints the table (mean ± standard
deviation over seeds; each seed's bits/dim in the JSON).
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import math
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks.measure import save_results
from flowforge import multiscale
from flowforge.dequantization import DequantizedFlow, bits_per_dim
from flowforge.evaluate import mean_nll
from flowforge.layers import Logit, initialize_actnorm
from flowforge.threads import cpu_threads
from flowforge.workbench.data import DIGITS, digit_splits

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "digits.json"
FIGURE = ROOT / "docs" / "digits.png"
ALPHA = 0.05
BATCH_SIZE = 64


class ZukoBase(torch.nn.Module):
    """A zuko flow (a lazy distribution) as the base of a ``DequantizedFlow``: the
    64-D logit-space vectors are modelled by zuko alone."""

    def __init__(self, flow: torch.nn.Module, width: int) -> None:
        super().__init__()
        self.flow = flow
        self.width = width

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return self.flow().log_prob(z)

    def sample(self, n: int) -> torch.Tensor:
        return self.flow().sample((n,))


def _zuko_model(make: Callable[[], torch.nn.Module]) -> DequantizedFlow:
    return DequantizedFlow(
        ZukoBase(make(), DIGITS.dims),
        Logit(ALPHA),
        levels=DIGITS.levels,
        image_shape=DIGITS.shape,
    )


def flowforge_multiscale() -> DequantizedFlow:
    return multiscale(DIGITS.shape, levels=DIGITS.levels, alpha=ALPHA)


def zuko_maf() -> DequantizedFlow:
    import zuko

    return _zuko_model(
        lambda: zuko.flows.MAF(DIGITS.dims, transforms=5, hidden_features=(256, 256))
    )


def zuko_nsf() -> DequantizedFlow:
    import zuko

    return _zuko_model(
        lambda: zuko.flows.NSF(DIGITS.dims, transforms=3, hidden_features=(512, 512), bins=8)
    )


@dataclass(frozen=True)
class Model:
    """A contender: its library (``None`` for flowforge), peak learning rate and builder."""

    library: str | None
    lr: float
    build: Callable[[], DequantizedFlow]
    description: str


# Each library's best variant by validation bits/dim in 60 s runs of seed 0 (the guide's
# comparing page, docs/guide/comparing.md, lists the variants tried).
MODELS: dict[str, Model] = {
    "flowforge-multiscale": Model(
        None,
        3e-3,
        flowforge_multiscale,
        "flowforge multiscale: 2 checkerboard steps, 2 scales × 4 Glow steps, spline "
        "couplings (8 bins), conv nets of 64 channels, split priors",
    ),
    "zuko-maf": Model("zuko", 1e-3, zuko_maf, "zuko.flows.MAF: 5 transforms, MADE 256×2"),
    "zuko-nsf": Model("zuko", 5e-4, zuko_nsf, "zuko.flows.NSF: 3 transforms, 8 bins, MADE 512×2"),
}


def available(names: list[str]) -> tuple[list[str], list[str]]:
    """The models whose library is installed, and those whose library is missing."""
    present, missing = [], []
    for name in names:
        library = MODELS[name].library
        (present if library is None or importlib.util.find_spec(library) else missing).append(name)
    return present, missing


def cosine_rate(lr: float, fraction: float, warmup_fraction: float = 0.02) -> float:
    """The learning rate at ``fraction`` of the budget: linear warm-up, then cosine to 0."""
    if fraction < warmup_fraction:
        return lr * (fraction + 1e-3) / warmup_fraction
    return 0.5 * lr * (1 + math.cos(math.pi * min(1.0, fraction)))


def train_for_budget(
    model: DequantizedFlow,
    train: torch.Tensor,
    validation: torch.Tensor,
    *,
    lr: float,
    budget: float,
    seed: int,
) -> dict:
    """Train with Adam until ``budget`` CPU seconds have passed; keep the best validation
    epoch's weights. Returns what happened (steps, epochs, seconds, validation NLLs)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    started_cpu, started_wall = time.process_time(), time.perf_counter()
    best, best_state, curve, steps = math.inf, None, [], 0
    while time.process_time() - started_cpu < budget:
        model.train()
        for batch in torch.randperm(len(train), generator=generator).split(BATCH_SIZE):
            fraction = (time.process_time() - started_cpu) / budget
            if fraction >= 1:
                break
            for group in optimizer.param_groups:
                group["lr"] = cosine_rate(lr, fraction)
            loss = -model(train[batch]).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            steps += 1
        curve.append(mean_nll(model, validation).mean)  # eval mode: the fixed noise
        if curve[-1] < best:
            best, best_state = curve[-1], copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return {
        "steps": steps,
        "epochs": len(curve),
        "cpu_seconds": time.process_time() - started_cpu,
        "wall_seconds": time.perf_counter() - started_wall,
        "validation_nll": curve,
        "best_epoch": curve.index(best) + 1 if curve else None,
    }


def run_one(name: str, seed: int, budget: float, splits) -> tuple[dict, DequantizedFlow]:
    """Build model ``name`` with ``seed``, train it for ``budget`` CPU seconds, score it;
    returns the record and the trained model."""
    spec = MODELS[name]
    torch.manual_seed(seed)
    model = spec.build()
    initialize_actnorm(model, splits.train.points)  # flowforge's ActNorms; no-op for zuko
    record = train_for_budget(
        model, splits.train.points, splits.validation.points, lr=spec.lr, budget=budget, seed=seed
    )
    test = mean_nll(model, splits.test.points)
    record.update(
        test_nll=test.mean,
        test_bpd=bits_per_dim(test.mean, DIGITS.dims),
        test_bpd_stderr=bits_per_dim(test.stderr, DIGITS.dims),
        validation_bpd=bits_per_dim(min(record["validation_nll"]), DIGITS.dims),
        parameters=sum(p.numel() for p in model.parameters()),
    )
    return record, model


def figure(models: dict[str, DequantizedFlow], data: torch.Tensor, path: Path) -> Path:
    """Samples of each model (seed 0's) beside test images, one grid of 64 each."""
    from matplotlib.figure import Figure

    from flowforge.workbench.figures.images import plot_image_grid
    from flowforge.workbench.figures.runs import save_figure

    fig = Figure(figsize=(3.2 * (len(models) + 1), 3.6))
    axes = fig.subplots(1, len(models) + 1, squeeze=False)[0]
    torch.manual_seed(0)
    for ax, (name, model) in zip(axes, models.items()):
        with torch.no_grad():
            samples = model.eval().sample(64)
        plot_image_grid(samples, DIGITS.shape, ax=ax, levels=DIGITS.levels, title=name)
    plot_image_grid(data[:64], DIGITS.shape, ax=axes[-1], levels=DIGITS.levels, title="test data")
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_figure(fig, path)


def summarize(runs: list[dict]) -> dict:
    values = [r["test_bpd"] for r in runs]
    spread = statistics.stdev(values) if len(values) > 1 else math.nan
    return {"test_bpd_mean": statistics.fmean(values), "test_bpd_std": spread}


def table(results: dict) -> str:
    """The Markdown table of the test bits/dim per model."""
    lines = [
        f"| model | test bits/dim (mean ± sd over {len(results['seeds'])} seeds) | "
        "per seed | parameters | epochs | steps |",
        "|---|---|---|---|---|---|",
    ]
    for name, entry in results["models"].items():
        runs, summary = entry["runs"], entry["summary"]
        per_seed = ", ".join(f"{r['test_bpd']:.3f}" for r in runs)
        spread = summary["test_bpd_std"]
        shown = f"{summary['test_bpd_mean']:.3f}" + (
            f" ± {spread:.3f}" if math.isfinite(spread) else ""
        )
        epochs = statistics.fmean(r["epochs"] for r in runs)
        steps = statistics.fmean(r["steps"] for r in runs)
        lines.append(
            f"| {name} | {shown} | {per_seed} | {runs[0]['parameters']:,} | "
            f"{epochs:.0f} | {steps:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated names")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (0,1,2)")
    parser.add_argument("--budget", type=float, default=120.0, help="CPU seconds per model")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 s, seed 0")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--figure", type=Path, default=FIGURE, help="samples beside test images (docs/digits.png)"
    )
    args = parser.parse_args(argv)
    names, missing = available([n.strip() for n in args.models.split(",") if n.strip()])
    for name in missing:
        print(f"skipping {name}: {MODELS[name].library} is not installed")
    seeds = [0] if args.quick else [int(s) for s in args.seeds.split(",")]
    budget = 3.0 if args.quick else args.budget
    splits = digit_splits()
    results = {
        "budget_cpu_seconds": budget,
        "seeds": seeds,
        "batch_size": BATCH_SIZE,
        "alpha": ALPHA,
        "split": {
            "train": len(splits.train),
            "validation": len(splits.validation),
            "test": len(splits.test),
        },
        "versions": _versions(),
        "models": {},
    }
    shown: dict[str, DequantizedFlow] = {}
    with cpu_threads(1):
        for name in names:
            runs = []
            for seed in seeds:
                record, model = run_one(name, seed, budget, splits)
                runs.append(record)
                if seed == seeds[0]:
                    shown[name] = model
                print(
                    f"{name} seed {seed}: test {runs[-1]['test_bpd']:.4f} bits/dim "
                    f"({runs[-1]['epochs']} epochs, {runs[-1]['steps']} steps)",
                    flush=True,
                )
            results["models"][name] = {
                "description": MODELS[name].description,
                "lr": MODELS[name].lr,
                "runs": runs,
                "summary": summarize(runs),
            }
    print(table(results))
    if args.figure is not None and shown:
        print(f"wrote {figure(shown, splits.test.points, args.figure)}")
    save_results(args.out, results)
    return results


def _versions() -> dict[str, str]:
    versions = {"torch": torch.__version__, "python": platform.python_version()}
    for package in ("zuko", "flowforge"):
        if importlib.util.find_spec(package):
            versions[package] = getattr(__import__(package), "__version__", "?")
    return versions


if __name__ == "__main__":
    main()
