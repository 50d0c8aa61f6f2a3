"""A self-contained ``report.html`` for a comparison: the table, the figure, the details."""

from __future__ import annotations

import html
import json

from flowforge.workbench.comparison.run import Comparison
from flowforge.workbench.comparison.table import row_to_dict, time_line, to_markdown

NOTES = """
<ul>
<li><b>held-out NLL</b>: mean −log q(x) over the held-out points, nats per point.</li>
<li><b>gap to H</b>: held-out NLL minus the true entropy H (errors added in quadrature).</li>
<li><b>KL(p‖q) paired</b>: mean of log p<sub>true</sub>(x) − log q(x) over the same held-out
points, with its standard error; ∞ when some points have q(x) = 0.</li>
<li><b>−inf</b>: share of held-out points to which the model gives zero density.</li>
<li><b>energy</b>, <b>MMD²</b> (RBF kernel exp(−|a−b|²/2h²); <i>median</i>: h is the median
distance between held-out points; <i>fine</i>: h is the width of the data's finest feature in
model units, e.g. the noise's standard deviation, the thickness of a moon) and <b>sliced W1</b>:
distances between the model's samples and the held-out points. Energy and MMD² are unbiased,
so a perfect model scores 0 ± noise. The rows in italics are the floors: a fresh sample of the
true distribution and, for the moons, a fresh <code>make_moons</code> draw (evenly spaced
angles, exactly half per moon), which sits below the honest floor.</li>
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
    """The whole report as one HTML page (``flowforge.workbench.report``'s), the figure embedded."""
    from flowforge.workbench.report import figure, page, table

    markdown = to_markdown(c)
    details = "".join(
        f"<details><summary>{html.escape(r.name)}</summary><pre>"
        f"{html.escape(json.dumps(row_to_dict(r)['summary'], indent=1))}</pre></details>"
        for r in c.rows
        if r.summary
    )
    settings = {
        **vars(c.setup),
        **c.plan.to_dict(),
        **{f"bandwidth_{k}": v for k, v in c.bandwidths.items()},
    }
    caption = (
        "Top: log-density (black: zero density) or the GAN discriminator's P(real); "
        "bottom: 2,000 samples over the truth's contour"
    )
    return page(
        f"Model families on the {c.setup.dataset} data, scored against the truth",
        [
            f"<p>{html.escape(markdown.splitlines()[0])}</p>",
            _table_html(markdown),
            f"<p>{html.escape(time_line(c))}</p>",
            NOTES,
            figure(figure_png, caption),
            "<h2>What each model chose or saw</h2>",
            details,
            "<h2>Settings</h2>",
            table(settings.items()),
        ],
    )
