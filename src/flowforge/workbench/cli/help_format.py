"""The help format every ``flowforge`` command uses: each option's default is shown.

``DefaultsFormatter`` appends ``(default: X)`` to an option's help when the option has a
default (not ``None``, not a switch's ``False``) that its help does not already mention.
Options whose default depends on something else (``--device`` on ``--resume``, sizes
that depend on the data set) have ``None`` as their default and say theirs in words.
"""

from __future__ import annotations

import argparse


class DefaultsFormatter(argparse.HelpFormatter):
    """``argparse.HelpFormatter`` that shows every option's default (see the module)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if text == argparse.SUPPRESS or not shows_default(action):
            return text
        if "%(default)" in text or "default:" in text:
            return text
        return f"{text} (default: %(default)s)".lstrip()


def shows_default(action: argparse.Action) -> bool:
    """Whether ``action`` has a default worth showing: set, and not a switch's off state."""
    default = action.default
    if default is None or default is argparse.SUPPRESS or default is False:
        return False
    return action.option_strings != [] or action.nargs in ("?", "*")
