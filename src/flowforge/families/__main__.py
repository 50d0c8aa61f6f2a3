"""``python -m flowforge.families``: print the Markdown table of every declared family;
``--readme README.md`` writes it into the README in place of the table there."""

from __future__ import annotations

import argparse
from pathlib import Path

from flowforge.families import FAMILIES, markdown_table

# The line in the README after which the generated table stands.
MARK = "<!-- the family table: flowforge.families.markdown_table(FAMILIES.values()) -->"


def replace_table(text: str, table: str) -> str:
    """``text`` with the table after ``MARK`` (up to the next blank line) replaced."""
    if text.count(MARK) != 1:
        raise ValueError(f"expected the line {MARK!r} once, found it {text.count(MARK)} times")
    head, tail = text.split(MARK, 1)
    rest = tail.lstrip("\n")
    end = rest.find("\n\n")
    return f"{head}{MARK}\n{table}{rest[end + 1 :] if end >= 0 else ''}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--readme", type=Path, help="rewrite the table in this Markdown file")
    args = parser.parse_args(argv)
    table = markdown_table(FAMILIES.values())
    if args.readme is None:
        print(table, end="")
        return
    text = args.readme.read_text(encoding="utf-8")
    args.readme.write_text(replace_table(text, table), encoding="utf-8")
    print(f"wrote the table of {len(FAMILIES)} families into {args.readme}")


if __name__ == "__main__":
    main()
