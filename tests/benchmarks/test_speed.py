"""The speed benchmark runs end to end (a smoke run; no timing is asserted)."""

import json

import pytest
import torch

from benchmarks import contenders, speed


def test_every_contender_is_the_notebooks_model():
    names, _ = contenders.available(list(contenders.BUILDERS))
    x = torch.randn(50, 2)
    for name in names:
        contender = contenders.build(name)
        assert contender.parameters == 1352, name
        assert contender.log_prob(x).shape == (50,)
        assert contender.sample(7).shape == (7, 2)
    # The notebook's classes and flowforge's exp variant are the same function.
    seed, ours = contenders.build("seed"), contenders.build("flowforge-exp")
    torch.testing.assert_close(ours.score(x), seed.score(x))


@pytest.mark.slow
def test_quick_benchmark_writes_every_section(tmp_path):
    out = tmp_path / "speed.json"
    results = speed.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())
    assert saved.keys() == results.keys()
    for batch in ("128", "1024", "8192"):
        assert {"seed", "flowforge"} <= saved["training"][batch]["steps_per_second"].keys()
    for operation in ("score", "sample"):
        entry = saved["throughput"][operation]["flowforge"]
        assert entry["raw"]["median"] > 0 and entry["chunked"]["median"] > 0
        assert str(entry["best_chunk"]) in entry["sweep"]
    # the products-only ceiling counts the notebook model's four conditioners (1 -> 16
    # -> 16 -> 2 each) and, doing less than the whole model, runs faster than it
    products = saved["throughput"]["products_only"]
    assert products["flop_per_point"] == 4 * 2 * (16 + 16 * 16 + 16 * 2)
    whole = saved["throughput"]["score"]["flowforge"]["chunked"]["median"]
    assert products["points_per_second"]["median"] > whole
    probe = saved["memory"]["score_20000"]["flowforge"]
    assert probe["peak_extra_bytes"] >= 0 and probe["points"] == 20_000
    assert saved["time_to_nll"]["default_run"][0]["final_heldout_nll"] < 3.0


def test_the_toy_suites_candidates_are_the_declared_mixture_recipes():
    from benchmarks import toy_suite

    assert toy_suite.CANDIDATES == ("nsf-mixture", "nsf-mixture-wide")


@pytest.mark.slow
def test_toy_suite_writes_its_figure_and_table(tmp_path):
    from benchmarks import toy_suite

    figure, out = tmp_path / "suite.png", tmp_path / "suite.json"
    results = toy_suite.main(
        ["--quick", "--sets", "circles,swiss_roll", "--figure", str(figure), "--out", str(out)]
    )
    saved = json.loads(out.read_text())["sets"]
    assert list(saved) == ["circles", "swiss_roll"]
    for name, record in saved.items():
        assert record["best"] in toy_suite.CANDIDATES
        assert record["setup"]["dataset"] == name
    assert (
        saved["circles"]["true_entropy"]["mean"] > 0 and saved["swiss_roll"]["true_entropy"] is None
    )
    best = toy_suite.best_row(results["circles"])
    assert best.kl.mean > 0 and validation_is_lowest(results["circles"], best)
    table = out.with_suffix(".md").read_text()
    assert "\n| circles | " in table and "\n| swiss_roll | — |" in table
    assert figure.stat().st_size > 20_000


def validation_is_lowest(comparison, best) -> bool:
    from benchmarks.toy_suite import validation_nll

    return all(
        validation_nll(best) <= validation_nll(r) for r in comparison.rows if r.kind == "model"
    )


@pytest.mark.slow
def test_families_benchmark_measures_every_family(tmp_path):
    from benchmarks import families

    out = tmp_path / "families.json"
    results = families.main(["--quick", "--out", str(out)])
    saved = json.loads(out.read_text())["families"]
    assert list(saved) == families.FAMILIES == list(results["families"])
    assert set(families.FAMILIES) == set(families.COUNTERPARTS)  # each is a declared family
    for family, entry in saved.items():
        model = families.flowforge_model(family)
        assert entry["parameters"]["flowforge"] == sum(p.numel() for p in model.parameters())
        for key in ("steps_per_second", "score_points_per_second", "sample_points_per_second"):
            assert entry[key]["flowforge"]["median"] > 0, (family, key)


@pytest.mark.slow
def test_digits_benchmark_scores_the_test_set_in_bits_per_dim(tmp_path):
    from benchmarks import digits

    out, figure = tmp_path / "digits.json", tmp_path / "digits.png"
    argv = [
        "--quick",
        "--models",
        "flowforge-multiscale",
        "--out",
        str(out),
        "--figure",
        str(figure),
    ]
    results = digits.main(argv)
    saved = json.loads(out.read_text())
    assert saved["split"] == {"train": 1257, "validation": 180, "test": 360}
    (run,) = saved["models"]["flowforge-multiscale"]["runs"]
    assert run["cpu_seconds"] >= 3.0 and run["epochs"] >= 1
    assert 0.5 < run["test_bpd"] < 4.087  # better than a uniform density, log2(17)
    assert run["validation_bpd"] * 64 * 0.6931471805599453 == pytest.approx(
        min(run["validation_nll"])
    )
    assert "| flowforge-multiscale |" in digits.table(results)
    assert figure.stat().st_size > 10_000
