r"""The new recipe on the paper's UCI sets: ``made tune`` (10 minutes, no other option) on the six sets of
Table 4 we hold, beside the best figure of any model in that table for the set.

    python benchmarks/paper/recipe.py --data-dir ../shared/data            # all six, resumable
    python benchmarks/paper/recipe.py adult --data-dir ../shared/data      # one

Each set is the same ``made tune --data DIR/NAME.npz --out RUNS/NAME --minutes M`` and
``made eval RUNS/NAME --json`` as the DEBD benchmark runs (benchmarks/debd/run.py, whose
runner this reuses); one JSON line per set goes to recipe.jsonl, and ``report.py`` shows
them in RESULTS.md. A set already there with the same budget is skipped; an interrupted
tune resumes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "debd")]
from run import read_results, run_set  # noqa: E402  (benchmarks/debd/run.py)

# The best test NLL (nats) of any model in the paper's Table 4 for each set, and the model that has it.
TABLE4_BEST = {
    "adult": (13.12, "MADE"),
    "connect4": (11.90, "MADE"),
    "dna": (79.66, "MADE mask sampling"),
    "mushrooms": (9.55, "DARN"),
    "nips": (272.39, "EoNADE"),
    "ocr_letters": (27.22, "NADE"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="*", help=f"sets to run (default: {', '.join(TABLE4_BEST)})")
    parser.add_argument("--data-dir", type=Path, required=True, help="folder of NAME.npz")
    parser.add_argument("--minutes", type=float, default=10.0, help="made tune's budget per set (default: 10)")
    parser.add_argument("--runs", type=Path, default=HERE / "runs" / "recipe", help="where the tune run folders go")
    parser.add_argument("--results", type=Path, default=HERE / "recipe.jsonl", help="one JSON line per set")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.sets) - set(TABLE4_BEST))
    if unknown:
        parser.error(f"unknown sets {unknown}; choose from {', '.join(TABLE4_BEST)}")
    for name in args.sets or list(TABLE4_BEST):
        done = [r for r in read_results(args.results) if r["set"] == name and r["minutes"] == args.minutes]
        if done:
            print(f"{name}: done (test NLL {done[-1]['test_nll']:.3f}), skipped")
            continue
        line = run_set(name, args.data_dir.resolve(), args.runs, args.minutes)
        with args.results.open("a") as handle:
            handle.write(json.dumps(line, sort_keys=True) + "\n")
        best, model = TABLE4_BEST[name]
        print(
            f"{name}: test NLL {line['test_nll']:.3f} ± {line['test_nll_stderr']:.3f} (Table 4's best: {best}, {model})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
