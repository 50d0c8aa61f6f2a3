"""Every code block of the README, executed or checked.

- ``python`` blocks run as they are, in a fresh namespace, in a temporary folder.
- ``bash`` lines that start with ``flowforge`` run as ``python -m flowforge ...`` in
  that folder, in order, each expected to succeed.
- The install-and-run lines (``python3 -m venv ... && ...``) cannot run inside a test
  (they install packages); ``.ci/run`` runs the README's test and docs commands, so this
  test checks that it holds each of them verbatim. The CPU-only block's
  ``pip install torch --index-url ...`` needs PyTorch's public index, which CI cannot
  reach; it is the only line no test runs.
- The headline table is the one ``benchmarks.tables`` renders from the results file.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import tables

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^ *```(\w+)\n(.*?)^ *```", README, re.S | re.M)


def _lines(language: str) -> list[str]:
    return [
        line.strip()
        for lang, code in BLOCKS
        if lang == language
        for line in code.splitlines()
        if line.strip()
    ]


def test_the_readme_is_a_landing_page():
    assert len(README.splitlines()) <= 200
    assert {lang for lang, _ in BLOCKS} == {"bash", "python"}


@pytest.mark.parametrize("index", [i for i, (lang, _) in enumerate(BLOCKS) if lang == "python"])
def test_python_block_runs(index, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(BLOCKS[index][1], f"README.md python block {index}", "exec"), {})


def test_command_line_lines_run_in_order(tmp_path):
    commands = [line.split("  #")[0].split() for line in _lines("bash")]
    commands = [c for c in commands if c[0] == "flowforge"]
    assert len(commands) >= 5
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)])}
    for command in commands:
        done = subprocess.run(
            [sys.executable, "-m", "flowforge", *command[1:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (command, done.stderr[-2000:])
    assert (tmp_path / "runs" / "moons" / "report.html").is_file()
    assert (tmp_path / "runs" / "layers.png").is_file()


def test_ci_runs_the_readmes_test_and_docs_commands_verbatim():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    installs = [line for line in _lines("bash") if line.startswith("python3 -m venv .venv &&")]
    test_line = next(line for line in installs if line.endswith("python -m pytest -q"))
    docs_line = next(line for line in installs if "python -m sphinx" in line)
    assert test_line in ci and docs_line in ci


def test_the_headline_table_is_generated_from_the_results_file():
    assert tables.readme_with_headline(README) == README
    rows = [line for line in README.splitlines() if line.startswith("| ")]
    assert any("nsf-mixture" in row for row in rows)
