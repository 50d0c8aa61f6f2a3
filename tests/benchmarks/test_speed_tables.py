"""The README's speed table is the one ``benchmarks.tables`` renders from ``speed.json``."""

from pathlib import Path

import pytest

from benchmarks import tables

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_the_readme_speed_table_is_generated_from_the_results_file():
    assert tables.SPEED_START in README and tables.SPEED_END in README
    assert tables.readme_with_speed(README) == README


def test_the_speed_table_shows_every_contender_plain_and_chunked():
    results = tables.load("speed")
    markdown = tables.render("speed_throughput")
    for name, entry in results["throughput"]["score"].items():
        assert f"| `{name}` | {entry['raw']['median'] / 1e6:.2f} |" in markdown
        assert f"({entry['best_chunk']:,})" in markdown


def test_a_readme_without_the_speed_block_is_left_as_it_is():
    text = "# no speed block here\n"
    assert tables.readme_with_speed(text) == text


@pytest.mark.parametrize("key", ["raw", "chunked", "best_chunk", "sweep"])
def test_every_throughput_entry_keeps_its_sweep_and_both_figures(key):
    results = tables.load("speed")
    for operation in ("score", "sample"):
        for entry in results["throughput"][operation].values():
            assert key in entry
