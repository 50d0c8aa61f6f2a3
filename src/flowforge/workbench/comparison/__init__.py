"""Compare flows with other model families on the two-moons data, the true density as referee.

``run_comparison(models, plan, setup)`` fits each model and scores it;
``table.to_dict``/``to_markdown``, ``figure.comparison_figure`` and ``html.to_html``
present the result. ``flowforge compare`` runs all of it.
"""

from flowforge.workbench.comparison.plan import (
    DEFAULT_BUDGET,
    DEFAULT_MODELS,
    FAMILIES,
    MODELS,
    Plan,
)
from flowforge.workbench.comparison.run import Comparison, Row, Setup, run_comparison

__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_MODELS",
    "FAMILIES",
    "MODELS",
    "Comparison",
    "Plan",
    "Row",
    "Setup",
    "run_comparison",
]
