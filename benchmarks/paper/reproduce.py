r"""Measure rows of the MADE paper's tables, one command per row, resumably.

    python benchmarks/paper/reproduce.py list                    # rows and what is done
    python benchmarks/paper/reproduce.py dna-mask-sampling       # train, evaluate, append a JSON line
    python benchmarks/paper/reproduce.py mnist-8000-1mask --candidate lr0.01 --device cuda

Each (row, candidate) is one ``made train`` run into ``RUNS/ROW/CANDIDATE`` and one
JSON line appended to the results file. A (row, candidate) whose line is already
there with the same arguments is skipped, a finished run folder is reused, and
an interrupted one continues from its last checkpoint (``made train --resume``),
so a sweep stopped at any moment resumes where it was. `report.py` turns the
lines into RESULTS.md.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(HERE.parent)]
from cpu_model import cpu_model  # noqa: E402
from paper_rows import ROWS, read_results, same_arguments  # noqa: E402
from repo_paths import default_data_dir  # noqa: E402

from made import __version__  # noqa: E402
from made.cli import main as made_main  # noqa: E402
from made.io.atomic import read_json, write_json  # noqa: E402

DEFAULT_RESULTS = HERE / "results.jsonl"
DEFAULT_RUNS = HERE / "runs"


def append_result(path: Path, record: dict) -> None:
    """Append one JSON line under an exclusive lock (several runs may share the file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(record, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
        fcntl.flock(handle, fcntl.LOCK_UN)


def machine(device: str) -> str:
    """A short description of where the run happened."""
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(torch.device(device))}, torch {torch.__version__}"
    return f"{cpu_model()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}"


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    except OSError:
        return None
    return out.stdout.strip() or None


def stop_reason(metrics: dict, train: dict) -> str:
    """Why training ended: patience (the paper's rule), the epoch cap or the time budget."""
    if metrics["epochs"] - metrics["best_epoch"] >= train["patience"]:
        return "patience"
    if metrics["epochs"] >= train["epochs"]:
        return "epoch cap"
    return "time budget"


def run_one(name: str, candidate: str, args: argparse.Namespace) -> dict:
    """Train (or resume, or reuse) and evaluate one candidate of a row; return its record.

    ``RUN_DIR/reproduce.json`` records which arguments the folder was started with:
    a folder with the same ones is reused when finished and continued with
    ``made train --resume`` when interrupted; any other is trained afresh.
    """
    row = ROWS[name]
    run_dir = args.runs / name / candidate
    train_args = row.command(candidate)
    what = [*train_args, *(["--epochs", str(args.epochs)] if args.epochs else [])]
    budget = ["--max-minutes", f"{args.max_minutes:g}"] if args.max_minutes else []
    how = ["--device", args.device, *budget, *([] if args.progress else ["--quiet"])]
    how += ["--checkpoint-every", str(args.checkpoint_every)] if args.checkpoint_every else []
    marker = run_dir / "reproduce.json"
    same = marker.is_file() and same_arguments(read_json(marker).get("what", []), what)
    started, wall = time.perf_counter(), None
    if not (same and (run_dir / "metrics.json").is_file()):
        if same and (run_dir / "args.json").is_file():
            argv = ["train", "--resume", str(run_dir), *how]
        else:
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json(marker, {"what": what})
            argv = ["train", *what, "--data-dir", str(args.data_dir), "--out", str(run_dir), "--overwrite", *how]
        print(f"[{name}/{candidate}] made {shlex.join(argv)}", flush=True)
        status = made_main(argv)
        if status != 0:
            raise SystemExit(f"[{name}/{candidate}] made train failed with status {status}")
        wall = time.perf_counter() - started
    config, metrics = read_json(run_dir / "config.json"), read_json(run_dir / "metrics.json")
    command = ["python", "benchmarks/paper/reproduce.py", name]
    if len(row.candidates) > 1:
        command += ["--candidate", candidate]
    if args.device != row.device:
        command += ["--device", args.device]
    command += [*what[len(train_args) :], *budget]
    return {
        "row": name,
        "candidate": candidate,
        "args": train_args,
        "command": shlex.join(command),
        "made_command": "made " + shlex.join(["train", *what, *budget]),
        "test_nll": metrics["test_nll"],
        "test_stderr": metrics["test_nll_stderr"],
        "valid_nll": metrics["valid_nll"],
        "valid_stderr": metrics["valid_nll_stderr"],
        "ensemble": metrics["ensemble"],
        "epochs": metrics["epochs"],
        "best_epoch": metrics["best_epoch"],
        "stopped": stop_reason(metrics, config["train"]),
        "train_seconds": metrics["seconds"],
        "wall_seconds": wall,
        "device": args.device,
        "machine": machine(args.device),
        "date": time.strftime("%Y-%m-%d"),
        "commit": args.commit,
        "made_version": __version__,
    }


def list_rows(results: list[dict]) -> None:
    def measured(name: str, candidate: str) -> bool:
        return any(
            r["row"] == name and r["candidate"] == candidate and same_arguments(r["args"], command)
            for r in results
            for command in [ROWS[name].command(candidate)]
        )

    for name, row in ROWS.items():
        marks = [f"{c}{'*' if measured(name, c) else ''}" for c in row.candidates]
        print(f"{name:24s} {row.device:5s} paper {row.paper:7.2f}  candidates: {' '.join(marks)}")
    print("(* = measured)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("rows", nargs="+", metavar="ROW", help="row names (see 'list'), 'uci', 'mnist' or 'list'")
    parser.add_argument("--candidate", help="run only this candidate of the row (default: all)")
    parser.add_argument("--device", help="cpu or cuda (default: the row's own)")
    parser.add_argument("--results", type=Path, default=DEFAULT_RESULTS, help="JSON-lines file to append to")
    parser.add_argument("--runs", type=Path, default=DEFAULT_RUNS, help="folder of the run folders")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir(), help="folder with NAME.npz")
    parser.add_argument("--epochs", type=int, help="epoch cap (default: made train's 1000)")
    parser.add_argument("--max-minutes", type=float, help="training time budget per run (default: none)")
    parser.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="N",
        help="epochs between training checkpoints (default: made train's, every epoch)",
    )
    parser.add_argument("--force", action="store_true", help="measure again rows already in the results")
    parser.add_argument("--progress", action="store_true", help="show made train's progress bar")
    args = parser.parse_args(argv)
    args.commit = git_commit()  # the code this process imported, however long the sweep and whatever lands meanwhile
    results = read_results(args.results)
    if args.rows == ["list"]:
        list_rows(results)
        return 0
    groups = {
        "uci": [n for n, r in ROWS.items() if r.device == "cpu"],
        "mnist": [n for n, r in ROWS.items() if r.dataset == "binarized_mnist"],
    }
    names = [n for name in args.rows for n in groups.get(name, [name])]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        parser.error(f"unknown row(s) {unknown}; known: {', '.join(ROWS)}")
    for name in names:
        row = ROWS[name]
        candidates = [args.candidate] if args.candidate else list(row.candidates)
        if args.candidate and args.candidate not in row.candidates:
            parser.error(f"row {name} has no candidate {args.candidate!r}; it has {list(row.candidates)}")
        device = args.device or row.device
        for candidate in candidates:
            done = any(
                r["row"] == name and r["candidate"] == candidate and same_arguments(r["args"], row.command(candidate))
                for r in results
            )
            if done and not args.force:
                print(f"[{name}/{candidate}] already in {args.results}; skipped (--force to measure again)")
                continue
            record = run_one(name, candidate, argparse.Namespace(**{**vars(args), "device": device}))
            append_result(args.results, record)
            print(
                f"[{name}/{candidate}] test NLL {record['test_nll']:.2f} ± {record['test_stderr']:.2f} "
                f"(valid {record['valid_nll']:.2f}); paper {row.paper}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
