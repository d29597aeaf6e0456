r"""Output families on real data: test NLL of each model, as a markdown table.

* DNA and Mushrooms (the paper's UCI sets, one-hot codes of categorical
  attributes): the binary MADE against the same MADE with ``--schema onehot``,
  where each group of one-hot bits is one categorical dimension. Same protocol
  as the paper (500 hidden units, direct connection, adadelta, minibatch 100,
  patience 30); NLLs in nats per example, directly comparable.
* Real-valued data that ships with scikit-learn: digits with uniform
  dequantization (pixel + U(0, 1), so densities are per unit-width bin and
  comparable with a categorical model of the 17 pixel levels) and the
  breast-cancer table; Gaussian against mixture-of-Gaussian conditionals,
  NLL in nats per example in the data's own units.

Every run is a ``made train`` command (run in-process) writing a run folder;
finished runs are skipped, so an interrupted benchmark resumes. Run on the CPU:

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/families.py --data-dir /work/shared/data
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import numpy as np
import torch

from made.checkpoint import METRICS_FILE
from made.cli import main as made

UCI = ["--hidden", "500", "--direct", "--optimizer", "adadelta", "--batch-size", "100", "--patience", "30"]
REAL = ["--hidden", "500", "--direct", "--batch-size", "100", "--patience", "30"]  # adam, lr 1e-3
PAPER = {"dna": "83.63 ± 0.52 (1 mask), 79.66 ± 0.63 (mask sampling)", "mushrooms": "9.68 ± 0.04 (1 mask)"}


def experiments(data_dir: str, real_dir: Path) -> list[tuple[str, str, list[str]]]:
    """(run name, description, ``made train`` arguments) of every run, in order."""
    runs = []
    for name in ("dna", "mushrooms"):
        source = ["--dataset", name, "--data-dir", data_dir]
        runs += [
            (f"{name}-binary", f"{name}: binary (Bernoulli) MADE, 1 mask", source + UCI),
            (f"{name}-onehot", f"{name}: one-hot groups as categoricals, 1 mask", source + UCI + ["--schema", "onehot"]),
        ]
    digits = ["--data", str(real_dir / "digits_dequantized.npz"), "--schema", "auto"]
    levels = ["--data", str(real_dir / "digits_levels.npz"), "--schema", str(real_dir / "digits_levels.json")]
    cancer = ["--data", str(real_dir / "breast_cancer.npy"), "--schema", "auto"]
    runs += [
        ("digits-real-gaussian", "digits, dequantized: Gaussian", digits + REAL),
        ("digits-real-mog5", "digits, dequantized: mixture of 5 Gaussians", digits + REAL + ["--components", "5"]),
        ("digits-real-mog10", "digits, dequantized: mixture of 10 Gaussians", digits + REAL + ["--components", "10"]),
        ("digits-levels-categorical", "digits, 17 pixel levels: categorical", levels + REAL),
        ("breast-cancer-gaussian", "breast cancer (30 real columns): Gaussian", cancer + REAL),
        ("breast-cancer-mog5", "breast cancer: mixture of 5 Gaussians", cancer + REAL + ["--components", "5"]),
    ]
    for name in ("dna", "mushrooms"):
        source = ["--dataset", name, "--data-dir", data_dir]
        sampling = ["--masks", "unlimited"]  # the paper's DNA command: a fresh mask per minibatch, 300 for validation
        runs += [
            (f"{name}-onehot-masks", f"{name}: categoricals, mask sampling", source + UCI + sampling + ["--schema", "onehot"]),
            (f"{name}-binary-masks", f"{name}: binary, mask sampling", source + UCI + sampling),
        ]
    return runs


def write_real_data(folder: Path) -> None:
    """The real-valued sets, as files ``made train --data`` reads (never committed)."""
    from sklearn.datasets import load_breast_cancer, load_digits

    folder.mkdir(parents=True, exist_ok=True)
    pixels = load_digits().data
    order = np.random.RandomState(0).permutation(len(pixels))  # the built-in digits split
    parts = {"train": order[:1197], "valid": order[1197:1497], "test": order[1497:]}
    noisy = pixels + np.random.RandomState(1).uniform(size=pixels.shape)
    np.savez(folder / "digits_dequantized.npz", **{k: noisy[v] for k, v in parts.items()})
    np.savez(folder / "digits_levels.npz", **{k: pixels[v] for k, v in parts.items()})
    levels = [{"type": "categorical", "categories": 17}] * pixels.shape[1]  # every level, seen in training or not
    (folder / "digits_levels.json").write_text(json.dumps(levels))
    np.save(folder / "breast_cancer.npy", load_breast_cancer().data)  # split 80/10/10 by --split-seed 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", default="/work/shared/data", help="folder with dna.npz and mushrooms.npz")
    parser.add_argument("--out", default="benchmarks/runs/families", help="run folders (resumable)")
    parser.add_argument("--only", nargs="*", help="run only these run names")
    args = parser.parse_args()
    out = Path(args.out)
    write_real_data(out / "data")
    rows = []
    for name, what, train_args in experiments(args.data_dir, out / "data"):
        run = out / name
        if args.only and name not in args.only:
            continue
        if not (run / METRICS_FILE).exists():
            command = ["train", *train_args, "--out", str(run), "--overwrite", "--quiet"]
            print("made " + shlex.join(command), flush=True)
            if made(command) != 0:
                sys.exit(f"run {name} failed")
        m = json.loads((run / METRICS_FILE).read_text())
        rows.append(
            f"| {what} | {m['test_nll']:.2f} ± {m['test_nll_stderr']:.2f} | {m['valid_nll']:.2f} | "
            f"{m['epochs']} ({m['best_epoch']}) | {m['seconds']:.0f} | {m['ensemble'] or 1} |"
        )
    print(f"\nmachine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} thread(s)\n")
    print("| model | test NLL (nats) | valid NLL | epochs (best) | seconds | test masks |")
    print("| --- | --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    print("\npaper's MADE: " + "; ".join(f"{k} {v}" for k, v in PAPER.items()))


if __name__ == "__main__":
    main()
