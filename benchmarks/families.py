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

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/families.py --data-dir ../shared/data
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
from repo_paths import default_data_dir

from made.cli import main as made
from made.data import load_dataset
from made.data.columns import encode_splits, log_scales
from made.inference.evaluate import per_example_nll
from made.io.run import METRICS_FILE, load_model

UCI = ["--hidden", "500", "--direct", "--optimizer", "adadelta", "--batch-size", "100", "--patience", "30"]
REAL = ["--hidden", "500", "--direct", "--batch-size", "100", "--patience", "30"]  # adam, lr 1e-3
PAPER = {"dna": "83.63 ± 0.52 (1 mask), 79.66 ± 0.63 (mask sampling)", "mushrooms": "9.68 ± 0.04 (1 mask)"}


GRID_EPS = ("1e-5", "1e-7", "1e-9")  # the paper's adadelta epsilons
GRID_ACTIVATIONS = ("relu", "softplus")  # the paper's activations


def uci_runs(data_dir: str) -> list[tuple[str, str, list[str]]]:
    """DNA and Mushrooms: binary against one-hot categoricals, over the paper's grid of adadelta
    epsilons and activations with 1 mask; with mask sampling (a fresh mask per minibatch, the
    paper's DNA command), a smaller grid: relu with eps 1e-5 and 1e-9 for both models, and
    softplus for the categorical model on DNA."""
    runs = []
    for name in ("dna", "mushrooms"):
        source = ["--dataset", name, "--data-dir", data_dir]
        for schema in ("binary", "onehot"):
            kind = "binary" if schema == "binary" else "categorical"
            for eps in GRID_EPS:
                for act in GRID_ACTIVATIONS:
                    grid = ["--adadelta-eps", eps, "--activation", act, "--schema", schema]
                    runs.append(
                        (f"{name}-{schema}-{act}-{eps}", f"{name} | {kind} | 1 | {act}, eps {eps}", source + UCI + grid)
                    )
        masks = ["--masks", "unlimited"]
        runs.append((f"{name}-binary-masks", f"{name} | binary | unlimited | relu, eps 1e-5", source + UCI + masks))
        runs.append(
            (
                f"{name}-binary-masks-relu-1e-9",
                f"{name} | binary | unlimited | relu, eps 1e-9",
                source + UCI + masks + ["--adadelta-eps", "1e-9"],
            )
        )
        sampled = (
            [(act, eps) for act in GRID_ACTIVATIONS for eps in ("1e-5", "1e-9")]
            if name == "dna"
            else [("relu", "1e-5"), ("relu", "1e-9")]
        )
        for act, eps in sampled:
            grid = ["--adadelta-eps", eps, "--activation", act, "--schema", "onehot"] + masks
            runs.append(
                (
                    f"{name}-onehot-masks-{act}-{eps}",
                    f"{name} | categorical | unlimited | {act}, eps {eps}",
                    source + UCI + grid,
                )
            )
    return runs


def real_runs(real_dir: Path) -> list[tuple[str, str, list[str]]]:
    """Dequantized digits: Gaussian and mixtures, and a categorical model of the 17 pixel levels."""
    digits = ["--data", str(real_dir / "digits_dequantized.npz"), "--schema", "auto"]
    levels = ["--data", str(real_dir / "digits_levels.npz"), "--schema", str(real_dir / "digits_levels.json")]
    return [
        ("digits-real-gaussian", "Gaussian", digits + REAL),
        ("digits-real-mog5", "mixture of 5 Gaussians", digits + REAL + ["--components", "5"]),
        ("digits-real-mog10", "mixture of 10 Gaussians", digits + REAL + ["--components", "10"]),
        ("digits-levels-categorical", "categorical over the 17 pixel levels (discrete, same nats)", levels + REAL),
    ]


def write_real_data(folder: Path) -> None:
    """Digits with and without dequantization, as files ``made train --data`` reads (never committed)."""
    from sklearn.datasets import load_digits

    folder.mkdir(parents=True, exist_ok=True)
    pixels = load_digits().data
    order = np.random.RandomState(0).permutation(len(pixels))  # the built-in digits split
    parts = {"train": order[:1197], "valid": order[1197:1497], "test": order[1497:]}
    noisy = pixels + np.random.RandomState(1).uniform(size=pixels.shape)
    np.savez(folder / "digits_dequantized.npz", **{k: noisy[v] for k, v in parts.items()})
    np.savez(folder / "digits_levels.npz", **{k: pixels[v] for k, v in parts.items()})
    levels = [{"type": "categorical", "categories": 17}] * pixels.shape[1]  # every level, seen in training or not
    (folder / "digits_levels.json").write_text(json.dumps(levels))


Result = tuple[str, str, dict]  # run folder name, description, metrics


def run_all(runs: list[tuple[str, str, list[str]]], out: Path, only: list[str] | None) -> list[Result]:
    """Run what has not finished yet; (name, description, metrics) of every finished run."""
    done = []
    for name, what, train_args in runs:
        if only and name not in only:
            continue
        run = out / name
        if not (run / METRICS_FILE).exists():
            command = ["train", *train_args, "--out", str(run), "--overwrite", "--quiet"]
            print("made " + shlex.join(command), file=sys.stderr, flush=True)
            if made(command) != 0:
                sys.exit(f"run {name} failed")
        done.append((name, what, json.loads((run / METRICS_FILE).read_text())))
    return done


def row(result: Result) -> str:
    _, what, m = result
    return (
        f"| {what} | {m['test_nll']:.2f} ± {m['test_nll_stderr']:.2f} | {m['valid_nll']:.2f} | "
        f"{m['epochs']} ({m['best_epoch']}) | {m['seconds']:.0f} |"
    )


def selected(results: list[Result]) -> list[Result]:
    """Per data set, model and masks: the grid point with the lowest validation NLL."""
    best: dict[str, Result] = {}
    for result in results:
        key = result[1].rsplit(" | ", 1)[0]
        if key not in best or result[2]["valid_nll"] < best[key][2]["valid_nll"]:
            best[key] = result
    return list(best.values())


def test_nll_per_example(run: Path, data_dir: str) -> np.ndarray:
    """-log p(x) of every test example under a finished run, as ``made eval`` computes it."""
    model, config = load_model(run)
    schema = config["schema"]
    splits = encode_splits(schema, load_dataset(config["data"]["dataset"], data_dir))
    nll = per_example_nll(
        model, torch.from_numpy(splits.test), config["eval"]["batch_size"], config["eval"]["ensemble"]
    )
    return nll.numpy() + log_scales(schema).sum()


def paired(results: list[Result], out: Path, data_dir: str) -> list[str]:
    """Binary minus categorical test NLL on the same examples (mean ± stderr of the difference),
    for the validation-selected run of each data set and masks."""
    rows = []
    chosen = {what: name for name, what, _ in selected(results)}
    for what, name in chosen.items():
        dataset, kind, masks, _ = what.split(" | ")
        if kind != "binary":
            continue
        rival = next((n for w, n in chosen.items() if w.startswith(f"{dataset} | categorical | {masks} |")), None)
        if rival is None:
            continue
        gap = test_nll_per_example(out / name, data_dir) - test_nll_per_example(out / rival, data_dir)
        rows.append(f"| {dataset} | {masks} | {gap.mean():.3f} ± {gap.std(ddof=1) / np.sqrt(len(gap)):.3f} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data-dir",
        default=str(default_data_dir()),
        help="folder with dna.npz and mushrooms.npz (default: %(default)s)",
    )
    parser.add_argument("--out", default="benchmarks/runs/families", help="run folders (resumable)")
    parser.add_argument("--only", nargs="*", help="run only these run names")
    args = parser.parse_args()
    out = Path(args.out)
    write_real_data(out / "data")
    quick = [r for r in uci_runs(args.data_dir) if "unlimited" not in r[1]]
    uci = run_all(quick, out, args.only)
    real = run_all(real_runs(out / "data"), out, args.only)
    uci += run_all([r for r in uci_runs(args.data_dir) if r not in quick], out, args.only)
    header = "| test NLL (nats) | valid NLL | epochs (best) | seconds |\n"
    print(
        f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} thread(s)\n"
    )
    print("Selected by validation NLL (per data set, model and masks):\n")
    print("| data set | model | masks | setting " + header + "| --- " * 8 + "|")
    print("\n".join(row(r) for r in selected(uci)))
    print("\npaper's MADE: " + "; ".join(f"{k} {v}" for k, v in PAPER.items()))
    print("\nBinary minus categorical test NLL, example by example (nats; > 0: the categorical model is better):\n")
    print("| data set | masks | difference |\n| --- | --- | --- |")
    print("\n".join(paired(uci, out, args.data_dir)))
    print("\nEvery run:\n")
    print("| data set | model | masks | setting " + header + "| --- " * 8 + "|")
    print("\n".join(row(r) for r in uci))
    print("\nDigits, dequantized (pixel + U(0, 1)), nats per example:\n")
    print("| model " + header + "| --- " * 5 + "|")
    print("\n".join(row(r) for r in real))


if __name__ == "__main__":
    main()
