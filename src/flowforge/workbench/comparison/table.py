"""The comparison as data (``results.json``) and as a table (``results.md``)."""

from __future__ import annotations

import math

from flowforge.evaluate import NLLEstimate
from flowforge.workbench.comparison.run import Comparison, Row
from flowforge.workbench.files import json_safe
from flowforge.workbench.scoring.metrics import PairedEstimate

TIMING_KEYS = ("train_seconds", "sample_seconds")


def _estimate(e: NLLEstimate | PairedEstimate | None) -> dict | None:
    if e is None:
        return None
    return {
        "mean": e.mean,
        "stderr": e.stderr,
        "n": e.n,
        "n_outside": e.n_outside,
    }


def row_to_dict(row: Row) -> dict:
    """One row, JSON-ready (``flowforge.workbench.files.json_safe``: infinities as ``"inf"``)."""
    return json_safe(
        {
            "model": row.name,
            "kind": row.kind,
            "heldout_nll": _estimate(row.nll),
            "gap_to_entropy": _estimate(row.gap),
            "kl_paired": _estimate(row.kl),
            "outside_support": row.outside,
            "distances": row.distances.to_dict(),
            "train_seconds": row.train_seconds,
            "sample_seconds": row.sample_seconds,
            "summary": row.summary,
        }
    )


def to_dict(c: Comparison) -> dict:
    """Everything in the table, JSON-ready (infinities as ``"inf"``)."""
    return json_safe(
        {
            "setup": {**vars(c.setup)},
            "plan": c.plan.to_dict(),
            "true_entropy": _estimate(c.entropy),
            "heldout_nll_of_truth": _estimate(c.heldout_truth),
            "bandwidths": c.bandwidths,
            "rows": [row_to_dict(r) for r in c.rows],
        }
    )


def without_timings(results: dict) -> dict:
    """``results`` with wall times removed: what two runs with one seed must share (the
    rows' seconds, and the flow's time rule, which is made of measured seconds)."""
    rows = [
        {
            **{k: v for k, v in r.items() if k not in TIMING_KEYS},
            "summary": {k: v for k, v in r["summary"].items() if k != "time_rule"},
        }
        for r in results["rows"]
    ]
    return {**results, "rows": rows}


def _pm(e: NLLEstimate | PairedEstimate | None) -> str:
    if e is None:
        return "—"
    if math.isinf(e.mean):
        return "∞"
    return f"{e.mean:.4f} ± {e.stderr:.4f}"


def _cells(row: Row) -> list[str]:
    d = row.distances
    seconds = (
        "—" if row.train_seconds is None else f"{row.train_seconds:.1f} / {row.sample_seconds:.2f}"
    )
    return [
        f"**{row.name}**" if row.kind == "model" else f"*{row.name}*",
        "—" if row.nll is None else ("∞" if math.isinf(row.nll.mean) else f"{row.nll.mean:.4f}"),
        _pm(row.gap),
        _pm(row.kl),
        "—" if row.outside is None else f"{100 * row.outside:.1f}%",
        f"{d.energy:.2e}",
        f"{d.mmd2['median']:.2e}",
        f"{d.mmd2['fine']:.2e}",
        f"{d.sliced_w1:.4f}",
        seconds,
    ]


def _truth_line(c: Comparison) -> str:
    """The true entropy and the truth's held-out NLL, or why there are none."""
    if c.entropy is None or c.heldout_truth is None:
        return f"{c.truth.no_density_message()}; the sample distances are the scores."
    return (
        f"True entropy H = {c.entropy.mean:.4f} ± {c.entropy.stderr:.4f} nats "
        f"(Monte Carlo, n = {c.entropy.n}); the truth's NLL on the {c.heldout_truth.n} "
        f"held-out points is {c.heldout_truth.mean:.4f} ± {c.heldout_truth.stderr:.4f}."
    )


def time_line(c: Comparison) -> str:
    """What the training times say: measured, and the flow's against the slowest other's."""
    line = "Training seconds are measured wall time on this machine."
    flow = next((r for r in c.rows if r.name == "flow" and "time_rule" in r.summary), None)
    if flow is None or flow.summary["time_rule"]["slowest_other_model"] is None:
        return line
    rule = flow.summary["time_rule"]
    relation = "at least as long as" if rule["met"] else "for less time than"
    how = "fixed by --flow-epochs" if rule["fixed_epochs"] else "chosen by the time rule"
    return (
        f"{line} The flow trained {flow.train_seconds:.1f} s ({flow.summary['epochs']} "
        f"epochs, {how}), {relation} the slowest other model, "
        f"{rule['slowest_other_model']} ({rule['target_seconds']:.1f} s)."
    )


def to_markdown(c: Comparison) -> str:
    """The results table in Markdown, with the entropy and the bandwidths above it."""
    h = c.bandwidths
    header = [
        "model",
        "held-out NLL",
        "gap to H",
        "KL(p‖q) paired",
        "−inf",
        "energy",
        f"MMD² median h={h['median']:.2f}",
        f"MMD² fine h={h['fine']:.2f}",
        "sliced W1",
        "train / sample s",
    ]
    lines = [
        f"Data: {c.setup.dataset}. {_truth_line(c)}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
    ]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in c.rows]
    lines += ["", time_line(c)]
    return "\n".join(lines) + "\n"
