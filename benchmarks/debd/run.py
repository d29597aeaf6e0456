r"""``made tune`` on the binary density-estimation benchmark (DEBD), one recipe for every set.

    python benchmarks/debd/run.py                      # every set found in --data-dir, 10 minutes each
    python benchmarks/debd/run.py dna tretail          # some sets
    python benchmarks/debd/run.py --report             # only rewrite RESULTS.md from results.jsonl

Each set is one ``made tune --data DIR/NAME.npz --out RUNS/NAME --minutes M`` (the same
budget and no other option for every set) followed by ``made eval RUNS/NAME --json``;
one JSON line per set is appended to the results file, and RESULTS.md is rewritten
from all lines. A set whose line is there (same budget) is skipped, and an interrupted
tune continues where it stopped (``made tune`` resumes its study), so the command can be
run again after any interruption.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE.parent)]
from cpu_model import cpu_model  # noqa: E402
from repo_paths import default_data_dir, shown  # noqa: E402

# HCLT (Liu & Van den Broeck, NeurIPS 2021), test log-likelihood in nats: the mean of the
# authors' 5 runs and their best run, from their logs (UCLA-StarAI/Tractable-PC-Regularization,
# commit 05743c7, "non-deterministic PCs/logs_*_{1..5}/NAME.txt"), as collected in the project's
# research note on DEBD (shared/research/debd.md). Name: (D, mean, best).
HCLT = {
    "nltcs": (16, -5.999, -5.995),
    "msnbc": (17, -6.058, -6.052),
    "kdd": (64, -2.183, -2.183),
    "plants": (69, -14.263, -14.013),
    "baudio": (100, -39.774, -39.755),
    "jester": (100, -52.463, -52.449),
    "bnetflix": (100, -56.278, -56.252),
    "accidents": (111, -26.744, -26.702),
    "tretail": (135, -10.874, -10.868),
    "pumsb_star": (163, -23.648, -23.326),
    "dna": (180, -79.056, -78.903),
    "kosarek": (190, -10.665, -10.659),
    "msweb": (294, -9.988, -9.891),
    "book": (500, -33.833, -33.818),
    "tmovie": (500, -50.820, -50.692),
    "cwebkb": (839, -152.774, -150.865),
    "cr52": (889, -86.260, -84.452),
    "c20ng": (910, -153.402, -151.540),
    "bbc": (1058, -251.049, -249.634),
    "ad": (1556, -16.072, -16.020),
}


def made_command(*args: str) -> list[str]:
    """``python -m made ARGS`` with this checkout's package first on the path."""
    return [sys.executable, "-m", "made", *args]


def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def run_set(name: str, data_dir: Path, runs: Path, minutes: float) -> dict:
    """Tune on one set, evaluate what was chosen, and return the result line."""
    out = runs / name
    data, budget = data_dir / f"{name}.npz", ["--minutes", f"{minutes:g}"]
    tune = made_command("tune", "--data", str(data), "--out", str(out), *budget)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    start = time.perf_counter()
    subprocess.run(tune, check=True, cwd=REPO, env=env)
    seconds = time.perf_counter() - start
    report = subprocess.run(
        made_command("eval", str(out), "--json"), check=True, cwd=REPO, env=env, capture_output=True, text=True
    )
    test = json.loads(report.stdout)
    metrics = json.loads((out / "metrics.json").read_text())
    return {
        "set": name,
        "minutes": minutes,
        "test_nll": test["test_nll"],
        "test_nll_stderr": test["test_nll_stderr"],
        "valid_nll": metrics["valid_nll"],
        "chosen_trials": metrics["tune"]["chosen_trials"],
        "trials_finished": metrics["tune"]["trials_finished"],
        "tune_seconds": metrics["tune"]["seconds"],
        "wall_seconds": seconds,
        "command": shlex.join(["made", "tune", "--data", shown(data), "--out", shown(out), *budget]),  # run from REPO
        "cpu": cpu_model(),
        "commit": _commit(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }


def _commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def in_se(margin: float, se: float) -> float:
    """``margin`` in standard errors (NaN without a finite, positive one)."""
    return margin / se if se and math.isfinite(se) else float("nan")


def latest_per_set(lines: list[dict]) -> tuple[list[dict], list[dict]]:
    """The newest run of each set (by date), and the runs they supersede, oldest first."""
    by_date = sorted(lines, key=lambda r: r["date"])
    latest = {r["set"]: r for r in by_date}
    return list(latest.values()), [r for r in by_date if latest[r["set"]] is not r]


def result_rows(lines: list[dict]) -> list[str]:
    """The markdown table of ``lines``, one row per run, sets in order of their number of columns."""
    rows = [
        "| set | D | ours: test LL ± s.e. | HCLT mean of 5 | HCLT best | margin vs mean (nats) | margin (s.e.) "
        "| margin vs best (nats) | margin vs best (s.e.) | ours: valid LL | tune time | chosen | commit | date |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for line in sorted(lines, key=lambda r: (HCLT[r["set"]][0], r["set"], r["date"])):
        d, mean, best = HCLT[line["set"]]
        ours, se = -line["test_nll"], line["test_nll_stderr"]
        margin, over_best = ours - mean, ours - best
        chosen = line["chosen_trials"]
        what = f"trial {chosen[0]}" if len(chosen) == 1 else f"mixture of {len(chosen)}"
        rows.append(
            f"| {line['set']} | {d} | {ours:.3f} ± {se:.3f} | {mean:.3f} | {best:.3f} | {margin:+.3f} | "
            f"{in_se(margin, se):+.1f} | {over_best:+.3f} | {in_se(over_best, se):+.1f} | {-line['valid_nll']:.3f} | "
            f"{line['tune_seconds'] / 60:.1f} min ({line['trials_finished']} trials) | {what} | {line['commit']} | "
            f"{line['date']} |"
        )
    return rows


def report(lines: list[dict]) -> str:
    """RESULTS.md: each set's newest run beside HCLT's, then the earlier runs it replaced."""
    latest, earlier = latest_per_set(lines)
    commands = [f"    {line['command']}" for line in sorted(latest, key=lambda r: HCLT[r["set"]][0])]
    history = [
        "## Earlier runs",
        "",
        "Runs of the same sets that a newer run (above) replaced, with the code of their "
        "commit, oldest first: kept so that no run is left out.",
        "",
        *result_rows(earlier),
        "",
    ]
    return "\n".join(
        [
            "# made tune on the binary density-estimation benchmark (DEBD)",
            "",
            "Written by `python benchmarks/debd/run.py` (see README.md). One recipe for every set: `made tune` "
            "with the same time budget and no other option, choosing on validation only; the test figure is "
            "`made eval RUN --json` of what was chosen, reported once. Each set's newest run is shown, with the "
            "commit whose code ran it. Log-likelihood (LL) = -NLL, nats per "
            "example, higher is better. Margins: ours minus HCLT's mean and minus HCLT's best run (positive: we "
            "are better), in nats and in our standard errors.",
            "",
            "HCLT (Liu & Van den Broeck, NeurIPS 2021): mean and best of the authors' 5 runs, from their logs "
            "(UCLA-StarAI/Tractable-PC-Regularization, commit 05743c7), via shared/research/debd.md.",
            "",
            *result_rows(latest),
            "",
            f"Machine: {', '.join(sorted({line['cpu'] for line in lines}))}.",
            "",
            "Commands (the newest run of each set):",
            "",
            *commands,
            "",
            *(history if earlier else []),
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", help=f"sets to run (default: every one of {', '.join(HCLT)} in --data-dir)")
    parser.add_argument("--data-dir", type=Path, default=default_data_dir() / "debd", help="folder of NAME.npz")
    parser.add_argument("--minutes", type=float, default=10.0, help="made tune's budget per set (default: 10)")
    parser.add_argument("--runs", type=Path, default=HERE / "runs", help="where the tune run folders go")
    parser.add_argument("--results", type=Path, default=HERE / "results.jsonl", help="one JSON line per set")
    parser.add_argument("--markdown", type=Path, default=HERE / "RESULTS.md", help="the report")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from the results file")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sets) - set(HCLT))
    if unknown:
        parser.error(f"unknown sets {unknown}; DEBD has {', '.join(HCLT)}")
    names = args.sets or [n for n in HCLT if (args.data_dir / f"{n}.npz").is_file()]
    if not args.report:
        for name in names:
            done = [r for r in read_results(args.results) if r["set"] == name and r["minutes"] == args.minutes]
            if done:
                print(f"{name}: done (test LL {-done[-1]['test_nll']:.3f}), skipped")
                continue
            if not (args.data_dir / f"{name}.npz").is_file():
                parser.error(f"{args.data_dir / name}.npz: no such file")
            line = run_set(name, args.data_dir, args.runs, args.minutes)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            with args.results.open("a") as handle:
                handle.write(json.dumps(line, sort_keys=True) + "\n")
            print(
                f"{name}: test LL {-line['test_nll']:.3f} ± {line['test_nll_stderr']:.3f} "
                f"(HCLT mean {HCLT[name][1]:.3f}) in {line['wall_seconds'] / 60:.1f} min"
            )
    lines = [r for r in read_results(args.results) if r["minutes"] == args.minutes]
    args.markdown.write_text(report(lines))
    print(f"wrote {args.markdown} ({len(lines)} runs of {len({r['set'] for r in lines})} sets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
