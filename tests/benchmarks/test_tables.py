"""Every results file renders, and the numbers shown are the JSON's."""

import json

import pytest

from benchmarks import tables


def _value(name: str, results: dict) -> str:
    """One number of each results file, formatted as its table shows it."""
    if name == "speed":
        median = results["training"]["128"]["steps_per_second"]["flowforge"]["median"]
        return f"| `flowforge` | {median:,.0f} |"
    if name == "speed_throughput":
        median = results["throughput"]["score"]["flowforge"]["raw"]["median"]
        return f"| `flowforge` | {median / 1e6:.2f} |"
    if name == "families":
        return f"{results['families']['nice']['parameters']['flowforge']:,}"
    if name == "families_preset":
        return f"{results['preset']['trials'][0]['kl_fresh']:.5f}"
    if name in ("toy_suite", "headline"):
        nll = results["sets"]["eight_gaussians"]["rows"][1]["heldout_nll"]
        return f"{nll['mean']:.4f} ± {nll['stderr']:.4f}"
    if name == "digits":
        return f"{results['models']['flowforge-multiscale']['summary']['test_bpd_mean']:.3f}"
    if name == "distributed":
        ratio = results["steps_per_second"]["hidden 16, batch 128"]["ratio_of_medians"]
        return f"×{ratio:.2f}"
    if name == "memory":
        return f"{results['sample_peak_bytes'] / tables.MIB:,.0f}"
    if name == "instructions":
        return f"{results['batches']['128']['flowforge']:,.0f}"
    if name == "sbi":
        kl = results["summary"]["linear_gaussian"]["flowforge"]["kl"]
        return f"| `flowforge` | {kl['mean']:.3f} ± {kl['stderr']:.3f} |"
    if name == "importance_broad":
        row = next(r for r in results["rows"] if r["case"] == "one moon of two")
        return f"{row['flagged_by_broad']}/{row['reps']}, {row['median_broad_se']:.4f}"
    if name == "sampling":
        ess = results["runs"]["flowforge"]["two-moons"]["0"]["ess"]
        return f"| `two-moons` | flowforge | {100 * ess:.1f}"
    raise AssertionError(f"no check for {name}")


@pytest.mark.parametrize("name", list(tables.RENDERERS))
def test_render_shows_the_json_value(name):
    source = tables.SOURCES.get(name, name)
    results = json.loads((tables.RESULTS / f"{source}.json").read_text())
    markdown = tables.render(name)
    assert markdown.startswith("|")
    assert _value(name, results) in markdown
    assert tables.environment(source, results) is not None


def test_every_results_file_has_a_renderer():
    renderers = {tables.SOURCES.get(name, name) for name in tables.RENDERERS}
    assert {p.stem for p in tables.RESULTS.glob("*.json")} == renderers


def test_a_readme_without_the_headline_block_is_refused():
    with pytest.raises(ValueError, match="headline table"):
        tables.readme_with_headline("# a README without the block\n")


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="speed"):
        tables.render("nonsense")
