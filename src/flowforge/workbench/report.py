"""A run's ``report.html``: one self-contained page, figures embedded as base64 PNG, and numbers."""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
th { background: #f3f3f3; }
figure { margin: 1.5em 0; }
img { max-width: 100%; }
figcaption { color: #555; }
"""


def _format(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_format(v)}" for k, v in value.items())
    return str(value)


def table(rows: Iterable[tuple[str, Any]]) -> str:
    """An HTML table of ``(name, value)`` rows, every cell escaped."""
    body = "".join(
        f"<tr><th>{html.escape(str(name))}</th><td>{html.escape(_format(value))}</td></tr>"
        for name, value in rows
    )
    return f"<table>{body}</table>"


def figure(png: bytes, caption: str) -> str:
    """A ``<figure>`` with the PNG embedded as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
        f"<figcaption>{alt}</figcaption></figure>"
    )


def metric_rows(
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    first_rows: Iterable[tuple[str, Any]] = (),
) -> list[tuple[str, Any]]:
    """The numbers a reader wants first: ``first_rows`` (what the run's kind measures
    before all else, such as bits per dimension), the result, then how it was obtained."""
    heldout = metrics.get("heldout", {})
    return [
        *first_rows,
        ("held-out NLL (nats per point, standardized)", heldout.get("nll")),
        ("standard error", heldout.get("stderr")),
        ("held-out points", heldout.get("n")),
        ("held-out NLL in original units", heldout.get("nll_original_units")),
        ("true entropy H of the data (nats, Monte Carlo)", heldout.get("true_entropy")),
        ("gap of the held-out NLL to H", heldout.get("gap_to_entropy")),
        ("KL(truth ‖ model), paired on the held-out points", heldout.get("kl_paired")),
        ("its standard error", heldout.get("kl_paired_stderr")),
        ("no true density", heldout.get("no_true_density")),
        ("sample distances to the held-out points", heldout.get("sample_distances")),
        ("final training NLL (epoch mean)", metrics.get("final_train_nll")),
        ("epochs", metrics.get("epochs")),
        ("training time (s, all epochs)", metrics.get("train_seconds")),
        ("wall time of the last session (s)", metrics.get("wall_seconds")),
        ("parameters", metrics.get("parameters")),
        ("device", metrics.get("device")),
        ("model", f"{config['model']['name']} ({_format(config['model']['options'])})"),
        ("data", _format(config["data"])),
        ("recipe", _format(config["recipe"])),
        ("seed", config.get("seed")),
        ("versions", _format(metrics.get("versions", {}))),
    ]


def page(title: str, parts: Iterable[str]) -> str:
    """A self-contained HTML page: the title as heading, then ``parts`` (HTML) in order."""
    head = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    return "\n".join([*head, *parts, "</body></html>"]) + "\n"


def render(
    title: str,
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    figures: Iterable[tuple[bytes, str]],
    first_rows: Iterable[tuple[str, Any]] = (),
) -> str:
    """The report page: a title, the numbers table (``first_rows`` first, see
    ``metric_rows``), then each ``(png, caption)`` figure."""
    rows = metric_rows(config, metrics, first_rows)
    return page(title, [table(rows), *(figure(png, caption) for png, caption in figures)])


def render_run(
    folder: Path,
    config: Mapping,
    metrics: Mapping,
    captions: Mapping[str, str],
    first_rows: Iterable[tuple[str, Any]] = (),
) -> str:
    """The report of the run in ``folder``, embedding the PNG files named in ``captions``."""
    figures = [
        ((folder / name).read_bytes(), caption)
        for name, caption in captions.items()
        if (folder / name).is_file()
    ]
    return render(f"flowforge run {folder.name}", config, metrics, figures, first_rows)
