"""``flowforge train --resume RUN``: what may change on resume, and a finished run left alone.

A resumed run takes every setting from its ``config.json``; only ``CHANGEABLE`` (how it
runs, not what it computes) may be given again: ``--device``, ``--quiet`` and
``--timeout``. A run whose training finished (its ``metrics.json`` is written) is not
trained or written again: ``--resume`` says so and exits 0, or exits 2 when the run
diverged (then resuming cannot help).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from flowforge.errors import InputError
from flowforge.workbench.runs.config import RunConfig

CHANGEABLE = ("--device", "--quiet", "--timeout")


def check_resume(args: argparse.Namespace, run_options: tuple[str, ...]) -> None:
    """``InputError`` naming every option given with ``--resume`` that would do nothing."""
    given = [name for name in run_options if getattr(args, name) is not None]
    if given:
        flags = ", ".join("--" + name.replace("_", "-") for name in given)
        raise InputError(
            f"--resume continues a run with the settings in its config.json; drop {flags} "
            f"(only {', '.join(CHANGEABLE)} may change)"
        )


def finished(folder: Path, config: RunConfig) -> str | None:
    """What ``--resume`` prints for a run whose training finished, or ``None`` when it has
    not; ``RunError`` (exit 2) when the finished run diverged."""
    from flowforge.workbench.cli.health import check_heldout, dimensions, recorded_heldout

    heldout = recorded_heldout(folder)
    if heldout is None:
        return None
    check_heldout(heldout.get("nll"), dimensions(config), folder, "in its metrics.json")
    return (
        f"{folder} finished training already (held-out NLL {float(heldout['nll']):.4f}); "
        f"nothing was changed: evaluate it with `flowforge eval {folder}`, redraw its "
        f"figures with `flowforge plot {folder}`, or train longer into a new --output"
    )
