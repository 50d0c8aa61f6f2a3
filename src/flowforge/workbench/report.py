"""A run's ``report.html``: one self-contained page, figures embedded as base64 PNG, and numbers.

The numbers table holds only rows that apply to the run: a row whose value is missing
(``None``) is left out. An estimate is shown with its standard error (``PlusMinus``);
a nested table (``Html``) is embedded as it is.
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1250px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
td, th { border: 1px solid #ccc; padding: 0.3em 0.8em; text-align: left; }
th { background: #f3f3f3; }
td table { margin: 0; }
.met { color: #176b2c; font-weight: bold; }
.not-met { color: #a3231b; font-weight: bold; }
figure { margin: 1.5em 0; }
img { max-width: 100%; }
figcaption { color: #555; }
"""


@dataclass(frozen=True)
class PlusMinus:
    """An estimate and its standard error, shown as ``1.8586 ± 0.0042``."""

    mean: float
    stderr: float


@dataclass(frozen=True)
class Html:
    """A cell's content that is HTML already (built from escaped parts)."""

    text: str


def plus_minus(record: Mapping[str, Any], mean: str, stderr: str) -> PlusMinus | float | None:
    """``record[mean] ± record[stderr]``; the mean alone without a standard error,
    ``None`` without a mean."""
    value = record.get(mean)
    if value is None:
        return None
    error = record.get(stderr)
    return value if error is None else PlusMinus(value, error)


def _number(value: float) -> str:
    if math.isnan(value):
        return "–"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4f}" if value == 0 or 1e-3 <= abs(value) < 1e5 else f"{value:.4g}"


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, PlusMinus):
        return f"{_number(value.mean)} ± {_number(value.stderr)}"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_setting(v)}" for k, v in value.items())
    return str(value)


def _setting(value: Any) -> str:
    """A setting as written (``0.1``, ``1e-05``, ``0``), not rounded to a precision."""
    return f"{value:g}" if isinstance(value, float) else _format(value)


def _cell(value: Any) -> str:
    return value.text if isinstance(value, Html) else html.escape(_format(value))


def _td(value: Any) -> str:
    return f"<td>{_cell(value)}</td>"


def table(rows: Iterable[tuple[str, Any]], header: Iterable[str] = ()) -> str:
    """An HTML table of ``(name, value, ...)`` rows, every cell escaped (an ``Html``
    cell is kept as it is), under an optional ``header`` row."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        f"<tr><th>{html.escape(str(name))}</th>{''.join(_td(v) for v in values)}</tr>"
        for name, *values in rows
    )
    return f"<table>{f'<tr>{head}</tr>' if head else ''}{body}</table>"


def distances_table(d: Mapping[str, Any]) -> Html:
    """The sample distances of ``SampleCheck.to_dict`` (a run's
    ``heldout.sample_distances``) as a small table: one row per distance, the model's
    samples beside a fresh sample of the data (the floor a perfect model sits at)."""
    model, floor, widths = d["model"], d["fresh_sample_of_the_data"], d["bandwidths"]
    names = {"median": "the median distance", "fine": "the data's finest feature"}
    rows = [("energy distance", model["energy"], floor["energy"])]
    distance = "{:.2e}".format
    rows += [
        (
            f"MMD² (RBF width {_number(h)}, {names.get(k, k)})",
            model["mmd2"][k],
            floor["mmd2"][k],
        )
        for k, h in widths.items()
    ]
    rows.append(("sliced Wasserstein-1", model["sliced_w1"], floor["sliced_w1"]))
    rows = [(name, distance(a), distance(b)) for name, a, b in rows]
    header = ("distance", f"{d['n']} model samples", f"{d['n']} fresh data points (floor)")
    return Html(table(rows, header))


def target_row(nll: float | None, target: float, what: str) -> tuple[str, Any]:
    """The row saying whether a held-out NLL met a ``target`` (nats; lower is better)."""
    if nll is None or math.isnan(nll):
        return (what, None)
    met = nll < target
    verdict = "met" if met else "not met"
    sign = "<" if met else "≥"
    text = f"{verdict} ({_number(nll)} {sign} {target:g})"
    return (what, Html(f'<span class="{"met" if met else "not-met"}">{html.escape(text)}</span>'))


def truth_rows(heldout: Mapping[str, Any], entropy_name: str) -> list[tuple[str, Any]]:
    """The rows of the truth's scores in ``heldout`` (``Floor`` or ``SampleCheck``
    values): the true entropy (named ``entropy_name``), the gap and the paired KL each
    with its standard error, or the note and the sample distances; none without a truth."""
    distances = heldout.get("sample_distances")
    return [
        (entropy_name, plus_minus(heldout, "true_entropy", "true_entropy_stderr")),
        (
            "gap of the held-out NLL to H (nats)",
            plus_minus(heldout, "gap_to_entropy", "gap_stderr"),
        ),
        (
            "KL(truth ‖ model), paired on the held-out points (nats)",
            plus_minus(heldout, "kl_paired", "kl_paired_stderr"),
        ),
        ("no true density", heldout.get("no_true_density") or None),
        (
            f"sample distances to {distances['n']} held-out points" if distances else "",
            distances_table(distances) if distances else None,
        ),
    ]


def run_rows(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """How the result was obtained: training, time, size, device, settings, versions."""
    return [
        ("epochs", metrics.get("epochs")),
        ("training time (s, all epochs)", _seconds(metrics.get("train_seconds"))),
        ("wall time of the last session (s)", _seconds(metrics.get("wall_seconds"))),
        ("parameters", metrics.get("parameters")),
        ("device", metrics.get("device")),
        ("model", f"{config['model']['name']} ({_format(config['model']['options'])})"),
        ("data", _format(config["data"])),
        ("recipe", _format(config["recipe"])),
        ("seed", config.get("seed")),
        ("versions", _format(metrics.get("versions", {}))),
    ]


def _seconds(value: Any) -> str | None:
    """Seconds to a tenth, as the command line prints them (``None`` when absent)."""
    return None if value is None else f"{float(value):.1f}"


def metric_rows(
    config: Mapping[str, Any],
    metrics: Mapping[str, Any],
    first_rows: Iterable[tuple[str, Any]] = (),
) -> list[tuple[str, Any]]:
    """The numbers a reader wants first: ``first_rows`` (the result as the run's kind
    measures it, see ``flowforge.workbench.runs.kinds``), then how it was obtained
    (``run_rows``); rows without a value are left out."""
    rows = [*first_rows, *run_rows(config, metrics)]
    return [(name, value) for name, value in rows if not _missing(value)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def figure(png: bytes, caption: str) -> str:
    """A ``<figure>`` with the PNG embedded as a data URI."""
    data = base64.b64encode(png).decode("ascii")
    alt = html.escape(caption)
    return (
        f'<figure><img src="data:image/png;base64,{data}" alt="{alt}">'
        f"<figcaption>{alt}</figcaption></figure>"
    )


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
