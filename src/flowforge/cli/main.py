"""The ``flowforge`` command: one small module per subcommand.

Each subcommand module in ``COMMANDS`` provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Errors a user can fix raise
``UserError``; they are printed as one line, without a traceback, with exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

COMMANDS: dict[str, str] = {}


class UserError(Exception):
    """A problem the user can fix (bad path, bad option, bad data): printed as one line."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowforge", description="Train, evaluate, sample and compare normalizing flows."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except UserError as error:
        print(f"flowforge {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"flowforge {args.command}: interrupted", file=sys.stderr)
        return 130
