"""No command reports success for, evaluates or samples from a non-finite model.

The trainer stops a run that diverges (``DivergedError``); the commands check again on
their side, whatever the trainer did: ``flowforge train`` fails when the run it finished
has non-finite weights or a held-out NLL that is NaN, infinite or absurd, and
``flowforge eval`` and ``flowforge sample`` refuse such a run (from its weights, and from
the held-out NLL its ``metrics.json`` records). Each refusal is one line (``RunError``,
exit code 2) that names the run and what to change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from flowforge.workbench.runs.config import METRICS, WEIGHTS, RunConfig, RunError, read_json

# A held-out NLL beyond this many nats per dimension (in the model's units) is no model of
# the data: a standard normal puts a point 45 standard deviations out at 1,000 nats.
ABSURD_NLL_PER_DIM = 1e3
RETRAIN = "train it again with a smaller --lr or more --warmup"


def dimensions(config: RunConfig) -> int:
    """The dimensions of one point (or the pixels of one image) of the run's data."""
    from flowforge.workbench.runs.kinds import run_kind

    dims = getattr(run_kind(config), "dims", None)
    return int(dims if dims is not None else config.standardization.width)


def nll_problem(nll: Any, dims: int) -> str | None:
    """What is wrong with a held-out NLL (nats per point), or ``None`` when it is a number
    a model of ``dims``-dimensional data can have. ``nll`` may be as ``metrics.json``
    stores it: ``None`` for NaN, ``"inf"`` for an infinity."""
    try:
        value = math.nan if nll is None else float(nll)
    except (TypeError, ValueError):
        return f"not a number ({nll!r})"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "infinite"
    bound = ABSURD_NLL_PER_DIM * dims
    if abs(value) > bound:
        return f"{value:.4g} nats, beyond any model of the data (at most ±{bound:g})"
    return None


def non_finite_weights(model: torch.nn.Module) -> list[str]:
    """The names of the parameters and buffers of ``model`` that hold NaN or infinity."""
    tensors = [*model.named_parameters(), *model.named_buffers()]
    return [
        name
        for name, tensor in tensors
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def check_weights(model: torch.nn.Module, folder: Path) -> None:
    """``RunError`` when the run's model holds a NaN or infinite weight."""
    bad = non_finite_weights(model)
    if bad:
        more = f" and {len(bad) - 1} more" if len(bad) > 1 else ""
        raise RunError(
            f"{folder / WEIGHTS} holds NaN or infinite weights ({bad[0]}{more}): the run "
            f"diverged and cannot be used; {RETRAIN}"
        )


def check_heldout(nll: Any, dims: int, folder: Path, where: str) -> None:
    """``RunError`` when the held-out NLL ``nll`` (from ``where``) says the run diverged."""
    problem = nll_problem(nll, dims)
    if problem is not None:
        raise RunError(
            f"{folder}: the held-out NLL {where} is {problem}: the run diverged and cannot "
            f"be used; {RETRAIN}"
        )


def recorded_heldout(folder: Path) -> Mapping[str, Any] | None:
    """The ``heldout`` record of the run's ``metrics.json``; ``None`` when there is none
    (a run whose training has not finished)."""
    if not (folder / METRICS).is_file():
        return None
    metrics = read_json(folder / METRICS)
    heldout = metrics.get("heldout") if isinstance(metrics, dict) else None
    if not isinstance(heldout, dict):
        raise RunError(f"{folder / METRICS} is incomplete or damaged (it has no held-out NLL)")
    return heldout


def check_run(folder: Path, config: RunConfig, model: torch.nn.Module) -> None:
    """``RunError`` unless the run's weights are finite and its recorded held-out NLL is a
    number a model of its data can have: what ``eval`` and ``sample`` check first."""
    check_weights(model, folder)
    heldout = recorded_heldout(folder)
    if heldout is not None:
        check_heldout(heldout.get("nll"), dimensions(config), folder, f"in its {METRICS}")
