"""``flowforge train --model NAME`` for every family of points (the image families:
tests/workbench/cli/test_digits.py); the conditional moons run end to end."""

import json

import numpy as np
import pytest

from flowforge.families import FAMILIES, IMAGES, POINTS
from flowforge.workbench.cli.main import main
from flowforge.workbench.runs.config import load
from tests.workbench.helpers import pixel_spread, small_flags, train_tiny

POINT_FAMILIES = [name for name, family in FAMILIES.items() if family.data == POINTS]


@pytest.mark.parametrize("name", POINT_FAMILIES)
def test_every_builder_trains_from_the_command_line(tmp_path, name):
    folder = train_tiny(tmp_path / name, "--model", name, *small_flags(name))
    config = json.loads((folder / "config.json").read_text())
    assert config["model"]["name"] == name
    declared = FAMILIES[name]
    assert config["model"]["options"] == {
        "width": 2,
        **{o.name: declared.default(o.name) for o in declared.options if not o.switch},
        **declared.test_size,
    }
    metrics = json.loads((folder / "metrics.json").read_text())
    assert np.isfinite(metrics["heldout"]["nll"])
    assert pixel_spread(folder / "density_and_samples.png") > 0


def test_mixture_base_spline_couplings_and_zero_init(tmp_path):
    extra = ["--model", "nsf", "--coupling", "--layers", "2", "--hidden", "8", "--bins", "4"]
    folder = train_tiny(tmp_path / "mix", *extra, "--base", "mixture", "--zero-init")
    options = json.loads((folder / "config.json").read_text())["model"]["options"]
    assert options["coupling"] and options["zero_init"] and options["base"] == "mixture"
    model, _ = load(folder)
    assert bool(model.base_distribution.initialized)  # fitted by EM before training


def test_an_option_the_builder_does_not_take_is_a_user_error(tmp_path, capsys):
    code = main(["train", "--model", "maf", "--couplings", "3", "-o", str(tmp_path / "x")])
    assert code == 2
    assert "--couplings does not apply to --model maf; it takes --layers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()  # refused before any data is drawn or folder made


@pytest.mark.parametrize("name", list(FAMILIES))
def test_every_family_refuses_the_options_it_does_not_declare(tmp_path, capsys, name):
    from flowforge.workbench.cli.model_options import declared_options
    from flowforge.workbench.data import DATASETS

    takes = ", ".join(o.flag for o in FAMILIES[name].options)
    images = next(n for n, d in DATASETS.items() if d.image)
    data = ["--dataset", images] if FAMILIES[name].data == IMAGES else []
    for other in declared_options().values():
        if FAMILIES[name].option(other.name) is None:
            value = [] if other.switch else [other.choices[0] if other.choices else "2"]
            argv = ["train", *data, "--model", name, other.flag, *value, "-o", str(tmp_path / "x")]
            assert main(argv) == 2
            err = capsys.readouterr().err
            assert f"{other.flag} does not apply to --model {name}; it takes {takes}" in err


def test_conditional_run_end_to_end(tmp_path, capsys):
    folder = train_tiny(tmp_path / "cond", "--model", "nsf", *small_flags("nsf"), "--conditional")
    config = json.loads((folder / "config.json").read_text())
    assert config["context"] == {"kind": "label", "classes": 2}
    assert config["model"]["options"]["context_width"] == 2
    heldout = json.loads((folder / "metrics.json").read_text())["heldout"]
    assert np.isfinite(heldout["kl_paired"])  # against p(x | moon), each point's own moon
    assert heldout["true_entropy"] < 1.5  # H(X | moon), about H(X) - log 2
    for label in (0, 1):
        assert pixel_spread(folder / f"density_given_label_{label}.png") > 0
    capsys.readouterr()
    assert main(["eval", str(folder), "--json"]) == 0
    assert np.isfinite(json.loads(capsys.readouterr().out)["nll"])
    for label in (0, 1):
        out = tmp_path / f"moon{label}.npy"
        assert main(["sample", str(folder), "--label", str(label), "-n", "50", "-o", str(out)]) == 0
        assert np.load(out).shape == (50, 2)
    assert main(["sample", str(folder), "--label", "2", "-n", "5", "-o", str(tmp_path / "x.npy")])
    assert "labels 0 to 1" in capsys.readouterr().err
    points = tmp_path / "points.npy"
    np.save(points, np.zeros((3, 2)))
    assert main(["eval", str(folder), "--data", str(points)]) == 2
    assert "has no labels" in capsys.readouterr().err


def test_label_needs_a_conditional_run(tiny_run, tmp_path, capsys):
    code = main(["sample", str(tiny_run), "--label", "0", "-o", str(tmp_path / "s.npy")])
    assert code == 2
    assert "train with --conditional" in capsys.readouterr().err


def _new_run_config(*flags):
    from flowforge.workbench.cli.main import build_parser
    from flowforge.workbench.cli.train import new_run

    args = build_parser().parse_args(["train", "--n-samples", "50", "--n-heldout", "20", *flags])
    return new_run(args).config


def test_the_quality_preset_fills_in_its_model_and_recipe_and_given_options_win():
    from flowforge.families.nsf import QUALITY_PRESET

    config = _new_run_config("--preset", "quality")
    assert config.model == "nsf"
    options = {k: config.model_options[k] for k in ("coupling", "layers", "hidden", "bins")}
    assert options == {k: QUALITY_PRESET[k] for k in options}
    assert config.model_options["base"] == "mixture" and config.model_options["zero_init"]
    recipe = {k: config.recipe[k] for k in ("epochs", "batch_size", "lr", "warmup")}
    assert recipe == {k: QUALITY_PRESET[k] for k in recipe}
    overridden = _new_run_config("--preset", "quality", "--epochs", "3", "--hidden", "16")
    assert overridden.recipe["epochs"] == 3 and overridden.model_options["hidden"] == 16
    assert overridden.recipe["lr"] == QUALITY_PRESET["lr"]


def test_resume_refuses_a_preset(tmp_path, capsys):
    code = main(["train", "--resume", str(tmp_path), "--preset", "quality"])
    assert code == 2
    assert "--preset" in capsys.readouterr().err
