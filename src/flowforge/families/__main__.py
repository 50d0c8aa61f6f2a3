"""``python -m flowforge.families``: print the Markdown table of every declared family;
``--file docs/guide/families.md`` writes it into that page in place of the table there
(``--readme`` is the same option's older name)."""

from __future__ import annotations

import argparse
from pathlib import Path

from flowforge.families import FAMILIES, markdown_table

# The page that holds the generated table: the user guide's page on the families.
PAGE = Path("docs") / "guide" / "families.md"

# The line in that page after which the generated table stands.
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
    """Print the table, or write it into the Markdown file ``--file`` names."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--file",
        "--readme",
        dest="file",
        type=Path,
        help=f"rewrite the table in this Markdown file (the table's page is {PAGE})",
    )
    args = parser.parse_args(argv)
    table = markdown_table(FAMILIES.values())
    if args.file is None:
        print(table, end="")
        return
    text = args.file.read_text(encoding="utf-8")
    args.file.write_text(replace_table(text, table), encoding="utf-8")
    print(f"wrote the table of {len(FAMILIES)} families into {args.file}")


if __name__ == "__main__":
    main()
