"""Markdown tables of the benchmark results, rendered from ``benchmarks/results/*.json``.

One piece of code renders a result everywhere: the docs site's benchmarks page (the
``results-table`` directive of ``docs/_ext/results.py``) and the README's headline
table both call :func:`render`. Where a benchmark script has its own report or table
function (``speed.report_training``, ``families.report``, ``digits.table``, ...) it is
used as it is; the rest is laid out here from the same JSON.

    python -m benchmarks.tables speed     # print one result's Markdown
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
MIB = 1024**2

# What regenerates each results file.
COMMANDS = {
    "speed": "python -m benchmarks.speed",
    "families": "python -m benchmarks.families",
    "families_preset": "python -m benchmarks.families --preset",
    "toy_suite": "python -m benchmarks.toy_suite",
    "digits": "python -m benchmarks.digits",
    "distributed": "python -m benchmarks.distributed",
    "memory": "python -m benchmarks.memory",
    "instructions": "python -m benchmarks.instructions",
    "sbi": "python -m benchmarks.sbi",
    "importance_broad": "python -m benchmarks.importance_broad",
    "sampling": "python -m benchmarks.sampling",
}


def load(name: str, results: Path = RESULTS) -> dict:
    """The parsed ``results/<name>.json``.

    Raises:
        FileNotFoundError: naming the file and the command that writes it.
    """
    path = results / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: `{COMMANDS.get(name, '?')}` writes it")
    return json.loads(path.read_text(encoding="utf-8"))


def _sharing(load: float) -> str:
    """What a load average says of a one-thread benchmark: above about 1.5, other
    processes were running beside it."""
    return "other processes shared them" if load > 1.5 else "nothing else was running"


def _text(lines: list[str]) -> str:
    """A benchmark script's own printed report, as a fenced text block."""
    body = "\n".join(line.rstrip() for line in lines).strip("\n")
    return f"```text\n{body}\n```\n"


def _range(s: dict, digits: int = 0, scale: float = 1.0) -> str:
    return (
        f"{s['median'] / scale:,.{digits}f} "
        f"[{s['min'] / scale:,.{digits}f}–{s['max'] / scale:,.{digits}f}]"
    )


def _pm(e: dict | None, digits: int = 4) -> str:
    if e is None:
        return "—"
    if isinstance(e["mean"], str) or math.isinf(e["mean"]):
        return "∞"
    return f"{e['mean']:.{digits}f} ± {e['stderr']:.{digits}f}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")  # a literal bar inside a Markdown table cell


def _table(header: list[str], rows: list[list[str]], align: str = "---:") -> str:
    """A Markdown table: the first column left-aligned, the others as ``align`` says."""
    lines = [
        "| " + " | ".join(header) + " |",
        "|---|" + "|".join([align] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def environment(name: str, results: dict | None = None) -> str:
    """One line: where the result was measured (CPUs, threads, versions)."""
    results = load(name) if results is None else results
    env = results.get("environment")
    if env is None:  # digits.json keeps its versions at the top
        versions = results.get("versions", {})
        parts = [f"{k} {v}" for k, v in versions.items() if v]
        return "Measured with " + ", ".join(parts) + "." if parts else ""
    parts = [f"{env['cpus']} CPUs ({env.get('cpu_model') or env['processor']})"]
    if "torch_threads" in env:
        parts.append(f"{env['torch_threads']} torch thread per process")
    versions = env.get("versions") or {"torch": env.get("torch")}
    parts.append(", ".join(f"{k} {v}" for k, v in versions.items() if v))
    parts.append(f"Python {env['python']}")
    return "Measured on " + "; ".join(parts) + "."


def speed_headline(results: dict) -> str:
    """Training steps per second of every contender at every batch size (median)."""
    training = results["training"]
    batches = list(training)
    names = list(training[batches[0]]["steps_per_second"])
    header = ["contender", *(f"batch {b} (steps/s)" for b in batches)]
    rows = [
        [f"`{n}`", *(f"{training[b]['steps_per_second'][n]['median']:,.0f}" for b in batches)]
        for n in names
    ]
    return _table(header, rows)


def speed_throughput(results: dict) -> str:
    """``log_prob`` and ``sample`` on many points: every library's plain call and the
    same call in chunks of its own best size, million points per CPU-second (median)."""
    result = results["throughput"]
    names = list(result["score"])
    header = [
        "contender",
        "`log_prob(x)` plain",
        "`log_prob` chunked (best chunk)",
        "`sample(n)` plain",
        "`sample` chunked (best chunk)",
    ]
    rows = []
    for name in names:
        cells = [f"`{name}`"]
        for operation in ("score", "sample"):
            s = result[operation][name]
            cells.append(f"{s['raw']['median'] / 1e6:.2f}")
            cells.append(f"{s['chunked']['median'] / 1e6:.2f} ({s['best_chunk']:,})")
        rows.append(cells)
    load = results["environment"].get("load_average")
    model = results["environment"].get("cpu_model")
    on = f" ({model})" if model else ""
    caption = (
        ""
        if not load
        else (
            f"\nLoad average {load[0]} on {results['environment']['cpus']} CPUs{on} when the "
            f"run began ({_sharing(load[0])}; ratios are side by side, interleaved).\n"
        )
    )
    return _table(header, rows) + caption


def speed(results: dict) -> str:
    """The speed benchmark: headline tables, then ``speed.py``'s own report."""
    from benchmarks import speed as script

    names = list(results["notes"])
    notes = _table(
        ["contender", "what it is"], [[f"`{n}`", v] for n, v in results["notes"].items()], "---"
    )
    lines = script.report_training(results["training"], names)
    lines += script.report_throughput(results["throughput"], results["memory"], names)
    lines += script.report_time(results["time_to_nll"])
    lines += script.targets(results, names)
    tables = speed_headline(results) + "\n" + speed_throughput(results)
    return notes + "\n" + tables + "\n" + _text(lines)


def families(results: dict) -> str:
    """Per family, flowforge beside zuko: a table of medians, then ``families.py``'s report."""
    from benchmarks import families as script

    rows = []
    for family, entry in results["families"].items():
        for who in entry["steps_per_second"]:
            rows.append(
                [
                    family,
                    who,
                    f"{entry['parameters'][who]:,}",
                    _range(entry["steps_per_second"][who]),
                    _range(entry["score_points_per_second"][who], 2, 1e6),
                    _range(entry["sample_points_per_second"][who], 2, 1e6),
                ]
            )
    header = [
        "family",
        "library",
        "parameters",
        f"train steps/s (batch {results['batch']})",
        "log_prob M points/s (chunked)",
        "sample M points/s",
    ]
    return _table(header, rows) + "\n" + _text(script.report(results))


def families_preset(results: dict) -> str:
    """``flowforge train --preset quality`` on three seeds: seconds and KL to the truth."""
    from benchmarks import families as script

    preset = results["preset"]
    rows = [
        [
            str(t["seed"]),
            f"{t['cpu_seconds']:.1f}",
            f"{t['wall_seconds']:.1f}",
            f"{t['kl_fresh']:.5f} ± {t['kl_fresh_stderr']:.5f}",
            f"{t['kl_heldout']:.5f} ± {t['kl_heldout_stderr']:.5f}",
        ]
        for t in preset["trials"]
    ]
    n = preset["trials"][0]["fresh_points"]
    header = [
        "seed",
        "CPU s (EM + fit)",
        "wall s",
        f"KL, {n:,} fresh points",
        "KL, the run's held-out set",
    ]
    return _table(header, rows) + "\n" + _text(script.preset_report(results))


def toy_suite(results: dict) -> str:
    """The toy suite's table, laid out as ``toy_suite.table`` lays out its Markdown."""
    from benchmarks.toy_suite import HEADER as header

    rows = []
    for name, entry in results["sets"].items():
        by_name = {r["model"]: r for r in entry["rows"]}
        best = by_name[entry["best"]]
        floor = next(r for r in entry["rows"] if r["kind"] == "floor")["distances"]
        d = best["distances"]
        seconds = sum(r["train_seconds"] for r in entry["rows"] if r["kind"] == "model")
        rows.append(
            [
                name,
                _pm(entry["true_entropy"]),
                f"{best['model']} ({min(best['summary']['validation_nll']):.4f})",
                _pm(best["heldout_nll"]),
                _pm(best["gap_to_entropy"]),
                _pm(best["kl_paired"]),
                f"{d['energy']:.1e} ({floor['energy']:.1e})",
                f"{d['sliced_w1']:.4f} ({floor['sliced_w1']:.4f})",
                f"{seconds:.0f}",
            ]
        )
    return _table(header, rows)


def headline(results: dict) -> str:
    """The README's headline: per toy set, the best flow's held-out NLL beside the true
    entropy, and its paired KL from the truth (``toy_suite.json``)."""
    rows = []
    for name, entry in results["sets"].items():
        best = {r["model"]: r for r in entry["rows"]}[entry["best"]]
        rows.append(
            [
                name,
                f"`{best['model']}`",
                _pm(best["heldout_nll"]),
                _pm(entry["true_entropy"]),
                _pm(best["kl_paired"]),
            ]
        )
    header = ["toy set", "best flow", "held-out NLL", "true entropy H", "KL(truth ‖ flow)"]
    return _table(header, rows)


def digits(results: dict) -> str:
    """``digits.table``: test bits per dimension per model, and what each model is."""
    from benchmarks import digits as script

    models = _table(
        ["model", "what it is", "peak lr"],
        [[f"`{n}`", m["description"], f"{m['lr']}"] for n, m in results["models"].items()],
        "---",
    )
    return script.table(results) + "\n\n" + models


def distributed(results: dict) -> str:
    """Steps per second of ``fit`` in one process and in two (gloo), as ``distributed.report``."""
    rows = []
    for case, entry in results["steps_per_second"].items():
        hidden, batch = (part.split()[1] for part in case.split(", "))
        one, two = entry["one_process"], entry["two_processes"]
        rows.append(
            [
                hidden,
                f"{int(batch):,}",
                _range(one),
                _range(two),
                f"×{entry['ratio_of_medians']:.2f}",
            ]
        )
    table = _table(["hidden width", "global batch", "1 process", "2 processes", "2 / 1"], rows)
    reduce = results["allreduce_microseconds"]
    return table + (
        f"\nOne all-reduce of {reduce['numbers']:,} float32 numbers (gloo, loopback): "
        f"{reduce['median']:.0f} µs.\n"
    )


def memory(results: dict) -> str:
    """Peak memory of ``flowforge sample -n N`` and ``mean_nll`` on N points, in MiB."""
    n = results["n"]
    rows = [
        [
            f"`flowforge sample -n {n:,}`",
            f"{results['sample_peak_bytes'] / MIB:,.0f}",
            f"{results['sample_file_bytes'] / MIB:,.0f} (the file written)",
        ],
        [
            f"`mean_nll` on {n:,} points",
            f"{results['mean_nll_peak_extra_bytes'] / MIB:,.0f} (above the points)",
            f"{results['mean_nll_input_bytes'] / MIB:,.0f} (the points)",
        ],
    ]
    table = _table(["operation", "peak MiB", "data MiB"], rows)
    return table + f"\nThe bound: {results['bound_bytes'] / MIB:,.0f} MiB.\n"


def instructions(results: dict) -> str:
    """Instructions per training step (callgrind), per contender and batch size."""
    batches = list(results["batches"])
    names = list(results["batches"][batches[0]])
    rows = [[f"`{n}`", *(f"{results['batches'][b][n]:,.0f}" for b in batches)] for n in names]
    return _table(["contender", *(f"batch {b}" for b in batches)], rows)


def sbi(results: dict) -> str:
    """``sbi.table``: NPE's posterior against the exact one, flowforge beside sbi's MAF."""
    from benchmarks import sbi as script

    return script.table(results)


def importance_broad(results: dict) -> str:
    """``importance_broad.table``: which broad proposal sees a dropped mode."""
    from benchmarks import importance_broad as script

    return script.table(results)


def sampling(results: dict) -> str:
    """``sampling.table``: flowforge beside normflows and zuko as samplers."""
    from benchmarks import sampling as script

    return script.table(results)


RENDERERS: dict[str, Callable[[dict], str]] = {
    "speed": speed,
    "speed_throughput": speed_throughput,
    "families": families,
    "families_preset": families_preset,
    "toy_suite": toy_suite,
    "headline": headline,
    "digits": digits,
    "distributed": distributed,
    "memory": memory,
    "instructions": instructions,
    "sbi": sbi,
    "importance_broad": importance_broad,
    "sampling": sampling,
}


# The results file each renderer reads, where it is not the renderer's own name.
SOURCES = {"headline": "toy_suite", "speed_throughput": "speed"}

# The README's generated block: its first and last lines.
README_START = "<!-- headline table: python -m benchmarks.tables --readme README.md -->"
README_END = "<!-- end of the headline table -->"


# The README's generated speed block (``speed_throughput``): its first and last lines.
SPEED_START = "<!-- speed table: python -m benchmarks.tables --readme README.md -->"
SPEED_END = "<!-- end of the speed table -->"


def render(name: str, results: Path = RESULTS) -> str:
    """The Markdown of benchmark ``name`` (``speed``, ``families``, ``toy_suite``, ...).

    Args:
        name: a key of :data:`RENDERERS`, the stem of ``results/<name>.json``.
        results: the folder holding the results files.

    Returns:
        Markdown: tables, and where the script prints a report of its own, that report
        as a fenced text block.

    Raises:
        KeyError: for a name without a renderer, listing those there are.
    """
    if name not in RENDERERS:
        raise KeyError(f"no table for {name!r}; there are: {', '.join(RENDERERS)}")
    return RENDERERS[name](load(SOURCES.get(name, name), results))


def readme_with_headline(text: str, results: Path = RESULTS) -> str:
    """``text`` (the README) with its headline block rendered anew from the results.

    Raises:
        ValueError: when the README has no ``README_START``/``README_END`` block.
    """
    if README_START not in text or README_END not in text:
        raise ValueError(f"the README has no block between {README_START!r} and {README_END!r}")
    before, rest = text.split(README_START, 1)
    _, after = rest.split(README_END, 1)
    return f"{before}{README_START}\n{render('headline', results)}{README_END}{after}"


def readme_with_speed(text: str, results: Path = RESULTS) -> str:
    """``text`` (the README) with its speed block rendered anew from ``speed.json``
    (unchanged when it has no such block)."""
    if SPEED_START not in text or SPEED_END not in text:
        return text
    before, rest = text.split(SPEED_START, 1)
    _, after = rest.split(SPEED_END, 1)
    return f"{before}{SPEED_START}\n{render('speed_throughput', results)}{SPEED_END}{after}"


if __name__ == "__main__":
    if sys.argv[1:2] == ["--readme"]:
        path = Path(sys.argv[2])
        text = readme_with_headline(path.read_text(encoding="utf-8"))
        path.write_text(readme_with_speed(text), encoding="utf-8")
    else:
        for arg in sys.argv[1:] or list(RENDERERS):
            print(render(arg))
