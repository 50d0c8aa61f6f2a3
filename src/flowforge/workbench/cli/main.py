"""The ``flowforge`` command: one small module per subcommand.

Each subcommand module in ``COMMANDS`` provides ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Errors a user can fix raise
``InputError`` (the library's ``InputError`` about files and folders is treated the same);
they are printed as one line, without a traceback, with exit code 2. Invalid options
are reported the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Iterator, Sequence

from flowforge.errors import InputError
from flowforge.version import __version__
from flowforge.workbench.cli.help_format import DefaultsFormatter

COMMANDS: dict[str, str] = {
    "train": "flowforge.workbench.cli.train",
    "eval": "flowforge.workbench.cli.eval",
    "sample": "flowforge.workbench.cli.sample",
    "plot": "flowforge.workbench.cli.plot",
    "compare-runs": "flowforge.workbench.cli.compare_runs",
    "compare": "flowforge.workbench.cli.compare",
}


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage block), with exit code 2."""

    def error(self, message: str) -> None:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="flowforge",
        description="Train, evaluate, sample and compare normalizing flows.",
        formatter_class=DefaultsFormatter,
    )
    parser.add_argument(
        "--version", action="version", version=f"flowforge {__version__}", help="print the version"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(
            name, help=module.HELP, description=module.HELP, formatter_class=DefaultsFormatter
        )
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


@contextlib.contextmanager
def cpu_threads() -> Iterator[None]:
    """One intra-op CPU thread while a command runs, unless ``OMP_NUM_THREADS`` says otherwise.

    The workbench's flows are small: two threads are no faster than one, and they stall
    (OpenMP spin-waiting) when another process holds the second core. The previous
    setting is restored afterwards, so calling ``main`` from Python leaves no trace.
    """
    import torch

    before = torch.get_num_threads()
    if not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with cpu_threads():
            return int(args._run(args) or 0)
    except InputError as error:
        print(f"flowforge {args.command}: error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # the file system's: a full disk, a read-only folder, ...
        from flowforge.workbench.files import file_error

        print(f"flowforge {args.command}: error: {file_error(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"flowforge {args.command}: interrupted", file=sys.stderr)
        return 130
