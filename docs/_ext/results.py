"""A Sphinx directive that renders a benchmark's results file at build time.

In a MyST page::

    ```{results-table} speed
    ```

loads ``benchmarks/results/speed.json`` and inserts what ``benchmarks.tables.render``
makes of it (the same Markdown the README's headline table comes from), preceded by the
environment it was measured in and followed by the command that regenerates it. The
results file is a dependency of the page, so editing it rebuilds the page.
"""

from __future__ import annotations

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

from benchmarks import tables


class ResultsTable(SphinxDirective):
    """``{results-table} NAME``: the tables of ``benchmarks/results/NAME.json``."""

    required_arguments = 1
    has_content = False

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        path = tables.RESULTS / f"{name}.json"
        self.env.note_dependency(str(path))
        try:
            markdown = tables.render(name)
            where = tables.environment(name)
        except (KeyError, FileNotFoundError) as error:
            raise self.error(f"results-table {name}: {error}") from error
        command = tables.COMMANDS[name]
        text = "\n\n".join(
            part
            for part in (
                where,
                markdown,
                f"Regenerate it with `{command}` (writes `benchmarks/results/{name}.json`).",
            )
            if part
        )
        container = nodes.container(classes=["results-table"])
        self.state.nested_parse(
            StringList(text.splitlines(), source=str(path)), self.content_offset, container
        )
        return [container]


def setup(app: Sphinx) -> dict:
    """Register the ``results-table`` directive."""
    app.add_directive("results-table", ResultsTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
