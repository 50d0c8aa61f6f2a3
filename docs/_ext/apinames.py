"""A Sphinx directive listing ``flowforge.__all__``, each name linked to where it is documented.

``{flowforge-names}`` renders a table of every top-level name with the first line of its
docstring, linked to its page in the API reference: the namespace that exports it
(``flowforge.layers.AffineCoupling``) or else the module that defines it
(``flowforge.flow.NormalizingFlow``). The list is read from ``flowforge.__all__`` at
build time, so it cannot drift from the package.
"""

from __future__ import annotations

import importlib
import inspect

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

# The namespaces whose pages document what they export, in the order they are searched.
NAMESPACES = (
    "flowforge.layers",
    "flowforge.transformers",
    "flowforge.nets",
    "flowforge.distributions",
    "flowforge.families",
    "flowforge.training",
    "flowforge.workbench.data",
)


def documented_at(name: str) -> str:
    """The dotted path under which the API reference documents ``flowforge.<name>``."""
    import flowforge

    for space in NAMESPACES:
        if name in getattr(importlib.import_module(space), "__all__", ()):
            return f"{space}.{name}"
    return f"{getattr(flowforge, name).__module__}.{name}"


def summary(obj: object) -> str:
    """The first line of ``obj``'s docstring, with table bars escaped."""
    doc = inspect.getdoc(obj) or ""
    return doc.split("\n\n")[0].replace("\n", " ").replace("|", "\\|")


class FlowforgeNames(SphinxDirective):
    """A table of ``flowforge.__all__``: name (linked) and summary."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        import flowforge

        lines = ["| name | what it is |", "|---|---|"]
        for name in flowforge.__all__:
            target = documented_at(name)
            lines.append(f"| {{py:obj}}`{name} <{target}>` | {summary(getattr(flowforge, name))} |")
        container = nodes.container(classes=["flowforge-names"])
        self.state.nested_parse(StringList(lines, source="flowforge.__all__"), 0, container)
        return [container]


def setup(app: Sphinx) -> dict:
    """Register the ``flowforge-names`` directive."""
    app.add_directive("flowforge-names", FlowforgeNames)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
