"""The dependency graph runs one way: no module imports one of a higher level.

Levels, from the bottom: the basics (errors, values, devices, threads, the hand-written
gradients' conventions); transformers and networks; layers and base distributions; the
flow and what works on flows; the families (builders); the trainer; the workbench; the
integrations with other libraries (scikit-learn, sbi), each imported only on its own. A
module may import its own level and the ones below, never above, anywhere in its body
(lazy imports included).
"""

import ast
from pathlib import Path

import flowforge

SRC = Path(flowforge.__file__).resolve().parent
LEVELS = [
    {"errors", "values", "device", "threads", "gradients", "version", "torch_import"},
    {"transformers", "nets"},
    {"layers", "distributions", "targets"},
    {
        "flow",
        "distribution",
        "check",
        "evaluate",
        "conditional",
        "dequantization",
        "initialize",
        "performance",
        "importance",
        "columns",
    },
    {"families"},
    {"training"},
    {"workbench"},
    {"integrations"},
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


def _code_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    """A function's length in lines, its docstring left out."""
    body = node.body
    documented = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
    start = body[1].lineno if documented and len(body) > 1 else body[0].lineno
    return node.end_lineno - start + 1


def test_modules_and_functions_stay_short():
    """No module over 400 lines, no function body over 60 (docstrings aside)."""
    long = []
    for path in sorted(SRC.rglob("*.py")):
        source = path.read_text()
        if len(source.splitlines()) > 400:
            long.append(f"{module_name(path)}: {len(source.splitlines())} lines")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _code_lines(node) > 60:
                long.append(f"{module_name(path)}.{node.name}: {_code_lines(node)} lines")
    assert long == []
