"""The table of docs/BAD_INPUTS.md is what `made` really answers: each case is run again here."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("bad_inputs", ROOT / "benchmarks" / "bad_inputs.py")
bad_inputs = importlib.util.module_from_spec(spec)
sys.modules["bad_inputs"] = bad_inputs  # dataclasses look their module up
spec.loader.exec_module(bad_inputs)


def documented_rows(section):
    """{bad input: [cells...]} of one table of docs/BAD_INPUTS.md."""
    text = (ROOT / "docs" / "BAD_INPUTS.md").read_text().split(f"## {section}")[1].split("\n## ")[0]
    rows = {}
    for line in text.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and cells[0] not in ("bad input", "---"):
            rows[cells[0]] = [c.strip("`") for c in cells[1:]]
    return rows


def machine_free(text):
    """Memory figures depend on the machine."""
    return re.sub(r"[\d.]+ GiB", "N GiB", text)


def test_every_case_is_documented():
    assert set(documented_rows("Command line")) == {case.what for case in bad_inputs.CLI_CASES}
    assert set(documented_rows("Library")) == {what for what, _ in bad_inputs.LIBRARY_CASES}


@pytest.mark.parametrize("case", bad_inputs.CLI_CASES, ids=lambda case: case.what)
def test_command_line_case(case, monkeypatch):
    if case.make is bad_inputs._unreadable:
        if bad_inputs.ROOT:
            pytest.skip("root reads files without permission")
        outcome = bad_inputs.run_case(case)
        assert outcome.status == 2 and "Permission denied" in outcome.message and outcome.written == "nothing"
        return
    monkeypatch.setattr("made.training.memory.available_memory", lambda: 16 * 2**30)  # the same answer on any machine
    outcome = bad_inputs.run_case(case)
    status, message, written = documented_rows("Command line")[case.what]
    assert (str(outcome.status), machine_free(outcome.message), outcome.written) == (
        status,
        machine_free(message),
        written,
    )
    assert outcome.status == 2 and "error:" in outcome.message and written == "nothing"


@pytest.mark.parametrize("what, make", bad_inputs.LIBRARY_CASES, ids=lambda v: v if isinstance(v, str) else "")
def test_library_case(what, make):
    assert bad_inputs.run_library_case(what, make)[1] == documented_rows("Library")[what][0]


def test_every_round3_case_is_documented():
    assert set(documented_rows(bad_inputs.ROUND3)) == {case.what for case in bad_inputs.ROUND3_CASES}


@pytest.mark.parametrize("case", bad_inputs.ROUND3_CASES, ids=lambda case: case.what)
def test_round3_case(case):
    """Folders, studies and signals (issue 25): refused in one line, with nothing written."""
    outcome = bad_inputs.run_case(case)
    status, message, written = documented_rows(bad_inputs.ROUND3)[case.what]
    assert (str(outcome.status), outcome.message, outcome.written) == (status, message, written)
    assert outcome.status == 2 and "error:" in outcome.message and written == "nothing"


# ------------------------------------------------ round 3: values, columns and mixtures (issue 25)
def test_every_round_3_values_case_is_documented():
    documented = documented_rows(bad_inputs.ROUND3_VALUES)
    assert set(documented) == {case.what for case in bad_inputs.ROUND3_VALUES_CLI_CASES} | {
        what for what, _ in bad_inputs.ROUND3_VALUES_LIBRARY_CASES
    }


@pytest.mark.parametrize("case", bad_inputs.ROUND3_VALUES_CLI_CASES, ids=lambda case: case.what)
def test_round_3_values_command_line_case(case):
    outcome = bad_inputs.run_case(case)
    status, message, written = documented_rows(bad_inputs.ROUND3_VALUES)[case.what]
    assert (str(outcome.status), outcome.message, outcome.written) == (status, message, written)
    assert outcome.status == 2 and "error:" in outcome.message and written == "nothing"


@pytest.mark.parametrize(
    "what, make", bad_inputs.ROUND3_VALUES_LIBRARY_CASES, ids=lambda v: v if isinstance(v, str) else ""
)
def test_round_3_values_library_case(what, make):
    assert bad_inputs.run_library_case(what, make)[1] == documented_rows(bad_inputs.ROUND3_VALUES)[what][0]
