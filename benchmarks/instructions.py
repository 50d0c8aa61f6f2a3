"""Instructions per training step, counted by valgrind's callgrind: a measure of speed that
a busy or throttled machine does not disturb.

    python -m benchmarks.instructions            # about ten minutes (valgrind is slow)
    python -m benchmarks.instructions --quick    # batch 128 only, fewer steps

Wall-clock rates on a shared machine move by tens of percent from one run to the next;
the number of instructions a step executes does not (callgrind counts the same total
twice for the same program, inputs and environment). Each contender runs in a fresh
process under callgrind twice, for ``a`` and for ``b`` steps of one epoch; the
difference divided by ``b - a`` is the cost of one step, with the import, the set-up and
the first compilation of every kernel cancelled out:

- ``seed``: the notebook's own classes and ``train`` loop (``seed_notebook.py``);
- ``flowforge``: ``fit`` on ``realnvp()`` (the same 1,352-parameter model), its default
  path (hand-written gradients, ``FlatAdam`` over flat parameters);
- ``flowforge-autograd``: the same with ``gradients="autograd"``.

Instructions are not seconds: a large batch's arithmetic runs at more instructions per
cycle than Python's dispatch, so the time ratio at batch 1,024 is larger than the
instruction ratio. The ratio is what a change to the code moves; ``benchmarks/speed.py``
measures the seconds. ``--src PATH`` measures the flowforge of another checkout's ``src``
folder (a before/after comparison: ``git worktree add /tmp/before REV``, then ``--src
/tmp/before/src``). Needs ``valgrind`` on the ``PATH``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.measure import report_and_save

RESULTS = Path(__file__).parent / "results" / "instructions.json"
ROOT = Path(__file__).resolve().parent.parent

# One epoch of ``steps`` batches, after a warm-up epoch of 5; run in a fresh process.
PROGRAM = """
import sys, torch
torch.set_num_threads(1)
name, batch, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
points = torch.randn(batch * steps, 2, generator=torch.Generator().manual_seed(batch))
torch.manual_seed(0)
if name == "seed":
    from benchmarks import seed_notebook
    model = seed_notebook.seed_model(16)
    seed_notebook.train(model, seed_notebook.seed_loader(points[: 5 * batch], batch), 1)
    seed_notebook.train(model, seed_notebook.seed_loader(points, batch), 1)
else:
    import flowforge
    model = flowforge.realnvp()
    gradients = "autograd" if name.endswith("autograd") else "auto"
    options = dict(batch_size=batch, lr=1e-3, schedule="constant", progress=False)
    flowforge.fit(model, points[: 5 * batch], epochs=1, gradients=gradients, **options)
    flowforge.fit(model, points, epochs=1, gradients=gradients, **options)
"""
CONTENDERS = ("seed", "flowforge", "flowforge-autograd")


def count(name: str, batch: int, steps: int, src: Path | None = None) -> int:
    """The instructions a fresh process executes for ``steps`` steps of ``name`` (with the
    flowforge of ``src`` when given)."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            "-c",
            PROGRAM,
            name,
            str(batch),
            str(steps),
        ]
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
        done = subprocess.run(
            command, capture_output=True, text=True, cwd=ROOT, env=env, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{name} under callgrind failed: {done.stderr.strip()[-300:]}")
        found = re.search(r"Collected\s*:\s*(\d+)", done.stderr)
        if found is None:
            raise RuntimeError(f"callgrind printed no total for {name}")
        return int(found.group(1))


def per_step(name: str, batch: int, a: int, b: int, src: Path | None = None) -> float:
    """Instructions of one step: the slope between runs of ``a`` and ``b`` steps."""
    return (count(name, batch, b, src) - count(name, batch, a, src)) / (b - a)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="batch 128 only, fewer steps")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where to write the JSON")
    parser.add_argument("--src", type=Path, help="measure the flowforge in this src folder")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        raise SystemExit("benchmarks.instructions needs valgrind (apt install valgrind)")
    plan = {128: (20, 60)} if args.quick else {128: (100, 300), 1024: (40, 120)}
    started = time.perf_counter()
    results: dict = {"steps": {str(b): list(s) for b, s in plan.items()}, "batches": {}}
    results["src"] = None if args.src is None else str(args.src)
    lines = ["Instructions per training step (callgrind), one thread"]
    for batch, (a, b) in plan.items():
        costs = {name: per_step(name, batch, a, b, args.src) for name in CONTENDERS}
        results["batches"][str(batch)] = costs
        lines.append(f"  batch {batch}:")
        for name, cost in costs.items():
            lines.append(
                f"    {name:19s} {cost / 1e6:8.3f} M  seed / this = x{costs['seed'] / cost:.2f}"
            )
    results["seconds"] = time.perf_counter() - started
    return report_and_save(lines, results, args.out)


if __name__ == "__main__":
    main()
