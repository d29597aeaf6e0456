"""The DEBD benchmark's report: each set's newest run on top, every run it replaced listed below."""

import importlib.util
from pathlib import Path

DEBD = Path(__file__).resolve().parents[2] / "benchmarks" / "debd"
_spec = importlib.util.spec_from_file_location("debd_run", DEBD / "run.py")
debd_run = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(debd_run)


def line(name, nll, date, commit):
    return {
        "set": name,
        "minutes": 10.0,
        "test_nll": nll,
        "test_nll_stderr": 0.5,
        "valid_nll": nll - 1,
        "chosen_trials": [0, 3],
        "trials_finished": 7,
        "tune_seconds": 540.0,
        "wall_seconds": 545.0,
        "command": f"made tune --data {name}.npz --out {commit}/{name} --minutes 10",
        "cpu": "cpu",
        "commit": commit,
        "date": date,
    }


def test_the_newest_run_of_each_set_is_shown_and_the_older_ones_listed_apart():
    old = line("dna", 80.0, "2026-11-30 00:10 UTC", "aaa")
    new = line("dna", 78.0, "2026-12-06 10:00 UTC", "bbb")
    other = line("kdd", 2.1, "2026-11-29 23:00 UTC", "aaa")
    text = debd_run.report([new, old, other])
    top, history = text.split("## Earlier runs")
    assert "-78.000 ± 0.500" in top and "-80.000" not in top and "-2.100 ± 0.500" in top
    assert "-80.000 ± 0.500" in history and "-78.000" not in history
    # HCLT's best on dna is -78.903: ours -78.000 leads it by 0.903 nats, 1.8 standard errors
    assert "| +0.903 | +1.8 |" in top
    assert "bbb/dna" in top and "aaa/dna" not in top  # the command of the run shown


def test_no_history_section_without_replaced_runs():
    assert "Earlier runs" not in debd_run.report([line("kdd", 2.1, "2026-11-29 23:00 UTC", "aaa")])
