"""What `flowforge --help` and each command's --help offer: defaults, names, the version."""

import argparse
import json
import subprocess
import sys

import pytest

import flowforge.version
from flowforge.workbench.cli.compare import point_sets
from flowforge.workbench.cli.help_format import shows_default
from flowforge.workbench.cli.main import COMMANDS, build_parser, main
from flowforge.workbench.comparison import Setup
from flowforge.workbench.data import ALIASES, DATASETS


def subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def option_help(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The help line of ``action`` as --help prints it (defaults filled in), on one line."""
    return " ".join(parser._get_formatter()._expand_help(action).split())


@pytest.mark.parametrize("command", list(COMMANDS))
def test_every_option_with_a_default_shows_it(command):
    parser = subparsers()[command]
    shown = [a for a in parser._actions if shows_default(a) and a.help != argparse.SUPPRESS]
    for action in shown:
        if action.dest == "help":
            continue
        text = option_help(parser, action)
        forms = {str(action.default)}
        if isinstance(action.default, float):
            forms.add(f"{action.default:g}")
        assert any(f"default: {form}" in text for form in forms), (command, text)


def test_the_device_help_says_what_each_command_does():
    commands = subparsers()
    device = {
        c: next(a for a in commands[c]._actions if a.dest == "device")
        for c in commands
        if any(a.dest == "device" for a in commands[c]._actions)
    }
    train = option_help(commands["train"], device["train"])
    assert "default: auto on a new run; on --resume, the run's" in train
    for command in ("eval", "sample"):  # they run on the CPU unless told otherwise
        assert device[command].default == "cpu"
        assert "default: cpu" in option_help(commands[command], device[command])


def dataset_names_offered(command: str) -> str:
    parser = subparsers()[command]
    action = next(a for a in parser._actions if a.dest == "dataset")
    return option_help(parser, action)


def test_compare_offers_only_the_data_sets_it_accepts():
    offered = dataset_names_offered("compare")
    assert "digits" not in offered
    assert set(point_sets()) == {n for n, d in DATASETS.items() if d.image is None}
    for name in [*point_sets(), *ALIASES]:
        assert name in offered
        canonical = build_parser().parse_args(["compare", "--dataset", name]).dataset
        Setup(n_train=100, n_heldout=50, samples=20, entropy_samples=100, dataset=canonical)
        assert DATASETS[canonical].image is None
    assert main(["compare", "--dataset", "digits"]) == 2  # refused, and not offered


def test_train_offers_every_data_set_and_its_aliases():
    offered = dataset_names_offered("train")
    for name in [*DATASETS, *ALIASES]:
        assert name in offered


def test_compare_takes_o_and_output_and_still_the_old_out(tmp_path):
    parser = build_parser()
    for flag in ("-o", "--output", "--out"):
        assert parser.parse_args(["compare", flag, str(tmp_path / flag)]).output == str(
            tmp_path / flag
        )
    assert parser.parse_args(["compare"]).output == "runs/compare"
    text = subparsers()["compare"].format_help()
    assert "-o FOLDER, --output FOLDER" in text and "--out " not in text


def test_the_old_out_option_still_writes_there(tmp_path):
    tiny = ["--models", "gaussian", "--n-train", "300", "--n-heldout", "100"]
    tiny += ["--samples", "50", "--entropy-samples", "500"]
    assert main(["compare", "--out", str(tmp_path), *tiny]) == 0
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert rows[-1]["model"] == "gaussian"


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "flowforge", "--version"], capture_output=True, text=True
    )
    assert done.returncode == 0
    assert done.stdout.strip() == f"flowforge {flowforge.version.__version__}"


def test_train_says_the_default_of_each_data_training_and_run_option():
    """Their defaults are ``None`` (a resumed run takes its own), so they say it in words;
    the model group gives each family's defaults instead."""
    parser = subparsers()["train"]
    groups = [g for g in parser._action_groups if g.title.split()[0] in ("data", "training", "run")]
    assert len(groups) == 3
    for group in groups:
        for action in group._group_actions:
            if action.dest in ("resume", "quiet", "no_shuffle"):
                continue  # no value to default to
            assert "default:" in option_help(parser, action), action.option_strings
