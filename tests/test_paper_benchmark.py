"""The paper-reproduction scripts: every row is a valid `made train` command, and the report never invents."""

import importlib.util
import sys
from pathlib import Path

from made.cli import build_parser

PAPER = Path(__file__).resolve().parents[1] / "benchmarks" / "paper"
sys.path.insert(0, str(PAPER))
_spec = importlib.util.spec_from_file_location("paper_report", PAPER / "report.py")
paper_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(paper_report)
from paper_rows import ROWS  # noqa: E402

render, short_table = paper_report.render, paper_report.short_table


def test_every_candidate_is_a_valid_made_train_command():
    parser = build_parser()
    for row in ROWS.values():
        for candidate in row.candidates:
            args = parser.parse_args(["train", *row.command(candidate)])
            assert args.dataset == row.dataset and args.patience == 30 and args.batch_size == 100


def test_report_shows_only_measured_figures():
    row = ROWS["nips-single"]
    record = {
        "row": row.name, "candidate": "base", "args": row.command("base"), "test_nll": 123.456,
        "test_stderr": 0.5, "valid_nll": 120.0, "valid_stderr": 0.6, "ensemble": None, "epochs": 40,
        "best_epoch": 10, "stopped": "patience", "train_seconds": 60.0, "wall_seconds": 61.0, "machine": "m",
        "date": "d", "commit": "c", "command": "python benchmarks/paper/reproduce.py nips-single",
        "made_command": "made train ...",
    }
    stale = {**record, "row": "dna-single", "args": ["--old"], "test_nll": 1.0}  # arguments no longer the row's
    text = render([record, stale])
    assert "123.46 ± 0.50" in text and "1.00 ±" not in text
    assert text.count("not yet run") >= len(ROWS) - 1
    assert "data not available here" in text
    assert "| nips | MADE (1 mask) | 280.25 ± 1.05 | 123.46 ± 0.50 |" in short_table([record])


def test_a_candidate_replaces_the_rows_options_in_place():
    from paper_rows import same_arguments

    row = ROWS["mushrooms-mask-sampling"]
    command = row.command("masks8-eps1e-7")
    assert command.count("--masks") == 1 and command[command.index("--masks") + 1] == "8"
    assert command[command.index("--adadelta-eps") + 1] == "1e-7"
    assert same_arguments(command, [*row.command("base"), "--masks", "8", "--adadelta-eps", "1e-7"])
    assert not same_arguments(command, row.command("base"))
