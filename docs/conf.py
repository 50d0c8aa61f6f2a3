"""Sphinx configuration of flowforge's documentation site.

Build it with ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (the
``docs`` extra installs what it needs). Warnings are errors; the tutorials are MyST
notebooks that myst-nb executes on every build, on the CPU.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))  # the benchmarks package, whose reports render the results
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

from flowforge.version import __version__  # noqa: E402

project = "flowforge"
author = "the flowforge developers"
copyright = "2026, the flowforge developers"  # noqa: A001
release = version = __version__

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "sphinxarg.ext",
    "sphinx_copybutton",
    "results",
    "apinames",
]

exclude_patterns = ["_build", "**.ipynb_checkpoints", "jupyter_execute"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}

# MyST and the executed tutorials.
myst_enable_extensions = ["colon_fence", "dollarmath", "deflist"]
myst_heading_anchors = 3
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_merge_streams = True
nb_render_markdown_format = "myst"  # Markdown outputs (tables) rendered as MyST

# The API reference, from the docstrings (Google style: Args/Returns/Example).
autosummary_generate = True
autosummary_ignore_module_all = False  # a namespace documents what its __all__ exports
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Curly quotes and ellipses, but no dashes: "--dataset" in a help text stays two hyphens.
smartquotes_action = "qe"

html_theme = "furo"
html_title = f"flowforge {release}"
html_static_path: list[str] = []


def _no_builtin_docstrings(app, what, name, obj, options, lines: list[str]) -> None:
    """Drop the docstring a data constant inherits from its type (a dict's "dict() -> ...")."""
    inherited = getattr(type(obj), "__doc__", None)
    if what in ("data", "attribute") and isinstance(inherited, str) and lines:
        if "\n".join(lines).strip() == inherited.strip():
            lines.clear()


def _module_signature(app, what, name, obj, options, signature, return_annotation):
    """``()`` for a layer without an ``__init__`` of its own, not ``nn.Module``'s
    ``(*args, **kwargs)``: ``FactorOut()`` takes no arguments."""
    import torch

    if what == "class" and isinstance(obj, type) and issubclass(obj, torch.nn.Module):
        if obj.__init__ is torch.nn.Module.__init__:
            return "()", return_annotation
    return None


def setup(app) -> None:
    app.connect("autodoc-process-docstring", _no_builtin_docstrings)
    app.connect("autodoc-process-signature", _module_signature)
