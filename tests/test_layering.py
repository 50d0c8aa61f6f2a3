"""The dependency graph runs one way: no module imports one of a higher level.

Levels, from the bottom: the basics (errors, values, devices, threads, the hand-written
gradients' conventions); transformers and networks; layers and base distributions; the
flow and what works on flows; the families (builders); the trainer; the workbench. A
module may import its own level and the ones below, never above, anywhere in its body
(lazy imports included).
"""

import ast
from pathlib import Path

import flowforge

SRC = Path(flowforge.__file__).resolve().parent
LEVELS = [
    {"errors", "values", "device", "threads", "gradients", "version"},
    {"transformers", "nets"},
    {"layers", "distributions"},
    {"flow", "check", "evaluate", "conditional", "dequantization", "initialize", "performance"},
    {"families"},
    {"training"},
    {"workbench"},
]


def level(dotted: str) -> int:
    """The level of ``flowforge.<part>...`` (``flowforge`` itself: the public face, above all)."""
    parts = dotted.split(".")
    if len(parts) == 1:
        return len(LEVELS)
    for i, names in enumerate(LEVELS):
        if parts[1] in names:
            return i
    raise AssertionError(f"{dotted} belongs to no level; add it to LEVELS")


def imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "flowforge" or name.startswith("flowforge.")}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_a_higher_level():
    upward = []
    for path in sorted(SRC.rglob("*.py")):
        name = module_name(path)
        if name in ("flowforge", "flowforge.__main__"):
            continue  # the public face and the entry point sit above everything
        for imported in imports(path):
            if level(imported) > level(name):
                upward.append(f"{name} imports {imported}")
    assert upward == []


def test_the_levels_cover_every_package_and_module():
    tops = {p.stem if p.is_file() else p.name for p in SRC.iterdir()}
    tops -= {"__init__", "__main__", "__pycache__"}
    assert tops == set().union(*LEVELS)
