"""Run folders written by older made versions load and evaluate to the figures they recorded.

The fixtures are real run folders (training state removed), trained on the built-in digits data by the
version named in their folder name: made 0.2.0 (commit 853da26) and the last 0.2 development commit
(ca7d1a1), with a mask pool and the direct connection, and one class-conditional run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from made.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize("name", ["made-0.2.0-pool", "made-ca7d1a1-pool", "made-ca7d1a1-context"])
def test_an_older_run_folder_evaluates_to_its_recorded_test_nll(tmp_path, capsys, name):
    run = tmp_path / name
    shutil.copytree(FIXTURES / name, run)  # a copy: evaluation must not need to write into the fixture
    recorded = json.loads((run / "metrics.json").read_text())
    assert main(["eval", str(run), "--json"]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert measured["test_nll"] == recorded["test_nll"]
    assert measured["test_nll_stderr"] == pytest.approx(recorded["test_nll_stderr"], rel=1e-12)
