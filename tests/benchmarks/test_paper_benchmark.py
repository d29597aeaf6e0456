"""The paper-reproduction scripts: every row is a valid `made train` command, and the report never invents."""

import importlib.util
import sys
from pathlib import Path

from made.cli import build_parser

PAPER = Path(__file__).resolve().parents[2] / "benchmarks" / "paper"
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
        "row": row.name,
        "candidate": "base",
        "args": row.command("base"),
        "test_nll": 123.456,
        "test_stderr": 0.5,
        "valid_nll": 120.0,
        "valid_stderr": 0.6,
        "ensemble": None,
        "epochs": 40,
        "best_epoch": 10,
        "stopped": "patience",
        "train_seconds": 60.0,
        "wall_seconds": 61.0,
        "machine": "m",
        "date": "d",
        "commit": "c",
        "command": "python benchmarks/paper/reproduce.py nips-single",
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


def test_an_ordering_draw_is_its_grid_candidate_with_another_seed_only():
    from paper_rows import same_arguments

    row = ROWS["connect4-single"]
    draws = [c for c in row.candidates if "-seed" in c]
    assert len(draws) == 6 and len(row.candidates) == 30
    seeds = set()
    for draw in draws:
        base, seed = draw.rsplit("-seed", 1)
        command = row.command(draw)
        assert command.count("--seed") == 1 and command[command.index("--seed") + 1] == seed
        assert same_arguments(command, [*row.command(base), "--seed", seed])
        seeds.add(seed)
    assert len(seeds) == 6 and "1234" not in seeds  # new orderings, none the grid's own


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"paper_{name}", PAPER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_cpu_mnist_members_are_valid_made_train_commands(tmp_path):
    mnist_cpu = _load("mnist_cpu")
    parser = build_parser()
    for name in mnist_cpu.MEMBERS:
        command = mnist_cpu.member_command(name, tmp_path / "binarized_mnist.npz", tmp_path, 100)
        assert command[1:4] == ["-m", "made", "train"]
        args = parser.parse_args(command[3:])
        assert args.hidden == [8000] and args.direct and args.ordering == "natural" and args.max_minutes == 100
        (tmp_path / name).mkdir()
        (tmp_path / name / "args.json").write_text("{}")  # a started run resumes instead of starting again
        resumed = mnist_cpu.member_command(name, tmp_path, tmp_path, 100)
        assert resumed[3:6] == ["train", "--resume", str(tmp_path / name)]


def test_the_cpu_mnist_report_shows_each_member_and_what_validation_chose():
    line = {
        "set": "binarized_mnist",
        "test_nll": 87.5,
        "test_nll_stderr": 0.2,
        "valid_nll": 88.3,
        "minutes": 100.0,
        "wall_seconds": 6300.0,
        "kept": ["a", "b"],
        "member_valid": {"a": 89.1, "b": 89.4},
        "member_test": {"a": 88.2, "b": 88.6},
        "member_seconds": {"a": 1800.0, "b": 1200.0},
        "member_options": {"a": ["--hidden", "8000"], "b": ["--dropout", "0.1"]},
        "cpu": "AMD EPYC",
        "threads": "2 (one per member)",
        "commit": "abc",
    }
    table = "\n".join(paper_report.mnist_cpu_section([line]))
    assert "| member a | 89.10 | 88.20 | `--hidden 8000` (30 min) | AMD EPYC | abc |" in table
    assert (
        "| **chosen on validation: mixture of a, b** | 88.30 | **87.50 ± 0.20** | members' training 50 "
        "thread-minutes in all, two at a time (100 min cap each) |"
    ) in table
    assert "88.40" in table
    assert "Not yet run." in "\n".join(paper_report.mnist_cpu_section([]))


def test_the_docs_paper_page_holds_the_summary_report_py_writes_from_the_results():
    from paper_rows import read_results

    results = [record for path in sorted(PAPER.glob("results*.jsonl")) for record in read_results(path)]
    text = paper_report.SUMMARY_PAGE.read_text()
    summary = text.split(paper_report.SUMMARY_START, 1)[1].split(paper_report.SUMMARY_END, 1)[0]
    assert summary.strip() == short_table(results)
