"""The flow families in ``flowforge compare``: opt-in models scored like the seed's flow."""

import json

from flowforge.workbench.cli.main import main
from flowforge.workbench.comparison import DEFAULT_MODELS, FAMILIES, MODELS, Plan

TINY = [
    "--budget", "1", "--n-train", "3000", "--n-heldout", "1000",
    "--samples", "300", "--entropy-samples", "3000",
]  # fmt: skip


def test_families_are_models_but_not_in_the_default_run():
    assert {"nice", "maf", "nsf", "nsf-mixture"} <= set(FAMILIES) <= set(MODELS)
    assert not set(FAMILIES) & set(DEFAULT_MODELS)
    model = Plan(budget=1, n_train=3000).build("nsf-mixture")
    assert (model.name, model.builder, model.options["base"]) == ("nsf-mixture", "nsf", "mixture")


def test_compare_scores_the_families_against_the_truth(tmp_path):
    out = tmp_path / "families"
    assert main(["compare", "-o", str(out), *TINY, "--models", "nsf-mixture,maf"]) == 0
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    for name in ("nsf-mixture", "maf"):
        assert rows[name]["kl_paired"]["mean"] < 1.0  # finite: a density near the truth
        assert rows[name]["summary"]["builder"] in ("nsf", "maf")


def test_the_family_entries_are_those_the_families_declare():
    from flowforge.families import FAMILIES as DECLARED
    from flowforge.workbench.comparison.plan import BATCH_SIZE

    entries = {e.name: (f.name, e) for f in DECLARED.values() for e in f.compare}
    assert list(FAMILIES) == list(entries)
    plan = Plan(budget=1, n_train=3000)
    for name, (family, entry) in entries.items():
        model = plan.build(name)
        assert (model.name, model.builder, model.options) == (name, family, dict(entry.options))
        assert model.epochs == (entry.epochs or plan.epochs("families"))
        assert model.batch_size == (entry.batch_size or BATCH_SIZE)
    # as before the declarations: the coupling NSF, and the README's mixture recipe
    assert plan.build("nsf").options == {"coupling": True, "layers": 4, "hidden": 32}
    mixture = plan.build("nsf-mixture")
    assert (mixture.epochs, mixture.batch_size, mixture.lr) == (12, 512, 3e-3)
    assert mixture.options == {
        "coupling": True,
        "layers": 2,
        "hidden": 32,
        "bins": 8,
        "base": "mixture",
        "zero_init": True,
    }
    wide = plan.build("nsf-mixture-wide").options
    assert (wide["layers"], wide["hidden"], wide["bins"]) == (4, 64, 16)
