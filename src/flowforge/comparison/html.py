"""A self-contained ``report.html`` for a comparison: the table, the figure, the details."""

from __future__ import annotations

import base64
import html
import json

from flowforge.comparison.run import Comparison
from flowforge.comparison.table import row_to_dict, to_markdown

NOTES = """
<ul>
<li><b>held-out NLL</b>: mean −log q(x) over the held-out points, nats per point.</li>
<li><b>gap to H</b>: held-out NLL minus the true entropy H (errors added in quadrature).</li>
<li><b>KL(p‖q) paired</b>: mean of log p<sub>true</sub>(x) − log q(x) over the same held-out
points, with its standard error; ∞ when some points have q(x) = 0.</li>
<li><b>−inf</b>: share of held-out points to which the model gives zero density.</li>
<li><b>energy</b>, <b>MMD²</b> (RBF kernel exp(−|a−b|²/2h²); <i>median</i>: h is the median
distance between held-out points; <i>fine</i>: h is the noise's standard deviation in model
units, the thickness of a moon) and <b>sliced W1</b>: distances between the model's samples and
the held-out points. Energy and MMD² are unbiased, so a perfect model scores 0 ± noise. The
rows in italics are the floors: fresh samples of the true distribution (random angles), and a
fresh <code>make_moons</code> draw (evenly spaced angles, exactly half per moon), which sits
below the honest floor.</li>
</ul>
"""


def _table_html(markdown: str) -> str:
    """The Markdown table as an HTML table (cells escaped, emphasis dropped)."""
    rows = [line for line in markdown.splitlines() if line.startswith("|")]
    cells = [[c.strip().strip("*") for c in r.strip("|").split("|")] for r in rows]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cells[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in cells[2:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def to_html(c: Comparison, figure_png: bytes) -> str:
    """The whole report as one HTML string, the figure embedded as a data URL."""
    markdown = to_markdown(c)
    intro = html.escape(markdown.splitlines()[0])
    image = base64.b64encode(figure_png).decode("ascii")
    details = "".join(
        f"<details><summary>{html.escape(r.name)}</summary><pre>"
        f"{html.escape(json.dumps(row_to_dict(r)['summary'], indent=1))}</pre></details>"
        for r in c.rows
        if r.summary
    )
    setup = html.escape(json.dumps({**vars(c.setup), **c.plan.to_dict()}))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>flowforge compare</title>
<style>body{{font-family:sans-serif;max-width:70em;margin:2em auto}}
table{{border-collapse:collapse;font-size:90%}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}
td:first-child{{text-align:left}}img{{max-width:100%}}</style></head><body>
<h1>Model families on the two-moons data, scored against the true density</h1>
<p>{intro}</p>
{_table_html(markdown)}
{NOTES}
<img alt="densities and samples of each model" src="data:image/png;base64,{image}">
<h2>What each model chose or saw</h2>
{details}
<h2>Settings</h2><pre>{setup}</pre>
</body></html>
"""
