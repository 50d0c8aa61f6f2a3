"""The family declarations (``flowforge.families.Family``) and what is generated from them:
the command line's model options and help, and the user guide's family table."""

import argparse
import importlib
import inspect
import re
from pathlib import Path

import pytest
import torch

from flowforge.families import (
    FAMILIES,
    IMAGES,
    POINTS,
    Entry,
    Family,
    Option,
    iaf,
    maf,
    markdown_table,
    realnvp,
)
from flowforge.families.__main__ import MARK, main, replace_table
from flowforge.workbench.cli import train
from flowforge.workbench.cli.model_options import declared_options, defaults_text

PAGE = Path(__file__).resolve().parents[2] / "docs" / "guide" / "families.md"


def test_the_registry_holds_every_declared_family_sorted_by_name():
    assert {"iaf", "maf", "multiscale", "nice", "nsf", "realnvp"} <= set(FAMILIES)
    assert list(FAMILIES) == sorted(FAMILIES)
    assert FAMILIES["multiscale"].data == IMAGES and FAMILIES["realnvp"].data == POINTS
    package = Path(inspect.getfile(Family)).parent
    declared = {}
    for path in sorted(package.glob("[!_]*.py")):
        module = importlib.import_module(f"flowforge.families.{path.stem}")
        declared |= {family.name: family for family in getattr(module, "DECLARED", ())}
    assert declared == FAMILIES


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_declared_option_is_a_parameter_of_its_builder(name):
    family = FAMILIES[name]
    parameters = inspect.signature(family.build).parameters
    assert family.options and all(o.name in parameters for o in family.options)
    assert set(family.test_size) <= {o.name for o in family.options}
    for entry in family.compare:
        assert set(entry.options) <= set(parameters), entry.name
    assert family.problems() == []


def test_a_wrong_declaration_is_named():
    bad = Family(
        "bad",
        realnvp,
        IMAGES,
        "wrong on purpose",
        options=(Option("layers", "no such parameter"), Option("hidden", "an int", float)),
        test_size={"bins": 4},
        compare=(Entry("bad-entry", {"mixing": "lu"}),),
    )
    problems = "\n".join(bad.problems())
    assert "option layers is no parameter of realnvp" in problems
    assert "test_size sets bins, which is not a declared option" in problems
    assert "comparison entry bad-entry sets mixing, which is no parameter" in problems
    assert "a family of images takes image_shape, realnvp does not" in problems
    good_names = Family("b", realnvp, POINTS, "", options=(Option("hidden", "h", float),))
    assert good_names.problems() == ["b: hidden is declared float, its default is 16"]
    with pytest.raises(ValueError, match="data must be one of"):
        Family("c", realnvp, "sounds", "")


def test_defaults_are_read_from_the_builder_not_retyped():
    # the notebook's model: 4 couplings of hidden width 16 on a normal base
    assert FAMILIES["realnvp"].defaults() == {
        "couplings": 4,
        "hidden": 16,
        "zero_init": False,
        "base": "normal",
    }

    def builder(width: int = 2, *, hidden: int = 7, context_width: int = 0):
        return realnvp(width, hidden=hidden, context_width=context_width)

    mine = Family("mine", builder, POINTS, "", options=(Option("hidden", "width"),))
    assert mine.defaults() == {"hidden": 7}
    assert defaults_text("hidden", [mine, FAMILIES["realnvp"]]) == "mine: 7; realnvp: 16"


def test_iaf_is_maf_inverted():
    assert inspect.signature(iaf) == inspect.signature(maf)
    assert FAMILIES["iaf"].defaults() == FAMILIES["maf"].defaults()
    torch.manual_seed(0)
    forward = maf(3, layers=1, hidden=8).double()
    torch.manual_seed(0)
    inverse = iaf(3, layers=1, hidden=8).double()
    with torch.no_grad():
        for p, q in zip(forward.parameters(), inverse.parameters(), strict=True):
            p.add_(torch.randn_like(p) * 0.1)
            q.copy_(p)
    z = torch.randn(5, 3, dtype=torch.float64)
    x, log_det = inverse.flow.forward(z)
    expected, expected_log_det = forward.flow.inverse(z)
    torch.testing.assert_close(x, expected)
    torch.testing.assert_close(log_det, expected_log_det)


def _help_of(flag: str) -> str:
    """The help of ``flowforge train``'s ``flag`` as ``--help`` prints it (unwrapped)."""
    parser = argparse.ArgumentParser(
        formatter_class=lambda prog: argparse.HelpFormatter(
            prog, max_help_position=80, width=10_000
        )
    )
    train.add_arguments(parser)
    for line in parser.format_help().splitlines():
        match = re.match(rf"  {re.escape(flag)}( \S+)? +(.*)", line)
        if match:
            return match.group(2)
    raise AssertionError(f"{flag} is not in flowforge train --help")


@pytest.mark.parametrize("name", list(declared_options()))
def test_the_help_shows_each_familys_default_from_its_builder(name):
    option = declared_options()[name]
    shown = _help_of(option.flag)
    assert shown.startswith(option.help)
    families = [f for f in FAMILIES.values() if f.option(name) is not None]
    for family in families:
        if option.switch:
            assert family.name in shown.rsplit("(", 1)[1]
        else:
            groups = dict(
                group.rsplit(": ", 1) for group in shown.rsplit("(", 1)[1].rstrip(")").split("; ")
            )
            by_family = {f: d for names, d in groups.items() for f in names.split(", ")}
            assert by_family[family.name] == str(family.default(name)), family.name


def test_options_of_one_name_must_agree():
    one = Family("one", realnvp, POINTS, "", options=(Option("hidden", "h"),))
    other = Family("other", realnvp, POINTS, "", options=(Option("hidden", "h", minimum=1),))
    with pytest.raises(
        ValueError, match="families one and other declare --hidden with different types"
    ):
        declared_options([one, other])


def test_the_guide_holds_exactly_the_generated_family_table():
    text = PAGE.read_text(encoding="utf-8")
    assert replace_table(text, markdown_table(FAMILIES.values())) == text, (
        "the guide's family table is stale: "
        "python -m flowforge.families --file docs/guide/families.md"
    )
    table = text.split(MARK, 1)[1].lstrip("\n").split("\n\n", 1)[0]
    for name, family in FAMILIES.items():  # every family, with its builder's defaults
        row = next(line for line in table.splitlines() if line.startswith(f"| `{name}` |"))
        for option in family.options:
            cell = option.flag if option.switch else f"{option.flag} {family.default(option.name)}"
            assert f"`{cell}`" in row


def test_the_table_is_regenerated_in_place(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# t\n\n{MARK}\n| old | table |\n|---|---|\n\nAfter.\n", encoding="utf-8")
    main(["--file", str(readme)])
    table = markdown_table(FAMILIES.values())
    assert readme.read_text(encoding="utf-8") == f"# t\n\n{MARK}\n{table}\nAfter.\n"
    main(["--readme", str(readme)])  # the option's older name
    assert readme.read_text(encoding="utf-8") == f"# t\n\n{MARK}\n{table}\nAfter.\n"
    with pytest.raises(ValueError, match="found it 0 times"):
        replace_table("no mark", table)
