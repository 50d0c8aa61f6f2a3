"""Two forms of the hand-written gradients, measured side by side with autograd.

    python -m benchmarks.handwritten_forms            # about a minute
    python -m benchmarks.handwritten_forms --quick    # a smoke run (seconds)

The notebook's model (``realnvp()``, 1,352 parameters), one CPU thread, FlatAdam over
flat parameters for all three; interleaved repetitions of 200 steps, medians and ranges
of steps per second, at batches 128 and 1,024:

- ``direct``: what ``fit`` uses. ``HandwrittenNLL`` adds each parameter's gradient to
  its ``.grad`` itself; autograd is never involved.
- ``autograd-function``: the same pieces behind a ``torch.autograd.Function`` whose
  backward returns the parameter gradients to autograd (which accumulates them, runs
  parameter hooks, and is what DistributedDataParallel needs): ``loss.backward()`` works.
- ``autograd``: ``(-model(x).mean()).backward()``.

It writes ``benchmarks/results/handwritten_forms.json``; the ratios say what composing
with autograd would cost the default training path.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import torch

from benchmarks.measure import interleaved, report_and_save, summary
from flowforge import realnvp
from flowforge.training import FlatAdam, FlatParameters, handwritten_nll
from flowforge.training.handwritten import HandwrittenNLL

RESULTS = Path(__file__).parent / "results" / "handwritten_forms.json"


class _ThroughAutograd(torch.autograd.Function):
    """The mean NLL by the hand-written pieces, its parameter gradients handed to autograd."""

    @staticmethod
    def forward(ctx, nll: HandwrittenNLL, x: torch.Tensor, *params: torch.Tensor):
        held = [p.grad for p in params]
        for p in params:
            p.grad = None  # the pieces make fresh gradients: those are returned below
        loss = nll(x)
        ctx.grads = [p.grad for p in params]
        for p, grad in zip(params, held):
            p.grad = grad
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        return (None, None, *(g * grad_loss for g in ctx.grads))


def _steps(step: Callable[[], None], steps: int) -> Callable[[], float]:
    def run() -> float:
        started = time.perf_counter()
        for _ in range(steps):
            step()
        return steps / (time.perf_counter() - started)

    return run


def measure(batch: int, steps: int, reps: int) -> dict:
    torch.manual_seed(0)
    models = {name: realnvp() for name in ("direct", "autograd-function", "autograd")}
    x = torch.randn(batch, 2, generator=torch.Generator().manual_seed(batch))
    scopes = {name: FlatParameters(m.parameters()) for name, m in models.items()}
    for scope in scopes.values():
        scope.flatten()
    try:
        optimizers = {name: FlatAdam(scope, lr=1e-3) for name, scope in scopes.items()}
        direct_nll = handwritten_nll(models["direct"])
        function_nll = handwritten_nll(models["autograd-function"])
        params = list(models["autograd-function"].parameters())
        model = models["autograd"]

        def direct() -> None:
            optimizers["direct"].zero_grad()
            direct_nll(x)
            optimizers["direct"].step()

        def through_function() -> None:
            optimizers["autograd-function"].zero_grad()
            _ThroughAutograd.apply(function_nll, x, *params).backward()
            optimizers["autograd-function"].step()

        def through_autograd() -> None:
            optimizers["autograd"].zero_grad()
            (-model(x).mean()).backward()
            optimizers["autograd"].step()

        runs = {
            "direct": _steps(direct, steps),
            "autograd-function": _steps(through_function, steps),
            "autograd": _steps(through_autograd, steps),
        }
        results = interleaved(runs, reps)
    finally:
        for scope in scopes.values():
            scope.release()
    return {name: summary(values) for name, values in results.items()}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: few steps")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    steps, reps = (20, 2) if args.quick else (200, 9)
    started = time.perf_counter()
    results = {"steps_per_repetition": steps, "batches": {}}
    lines = ["Steps per second, median [min-max] of interleaved repetitions, one thread"]
    for batch in (128, 1024):
        stats = measure(batch, steps, reps)
        results["batches"][str(batch)] = stats
        direct = stats["direct"]["median"]
        lines.append(f"  batch {batch}:")
        for name, s in stats.items():
            lines.append(
                f"    {name:18s} {s['median']:8,.0f} [{s['min']:,.0f}-{s['max']:,.0f}]"
                f"  x{s['median'] / direct:.2f} of direct"
            )
    results["seconds"] = time.perf_counter() - started
    return report_and_save(lines, results, args.out)


if __name__ == "__main__":
    main()
