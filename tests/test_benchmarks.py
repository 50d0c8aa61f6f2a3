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
    assert saved["throughput"]["score"]["flowforge"]["median"] > 0
    probe = saved["memory"]["score_20000"]["flowforge"]
    assert probe["peak_extra_bytes"] >= 0 and probe["points"] == 20_000
    assert saved["time_to_nll"]["default_run"][0]["final_heldout_nll"] < 3.0
