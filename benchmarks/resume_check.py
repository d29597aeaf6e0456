r"""Kill ``made train`` and resume it, again and again; compare the end with an uninterrupted run.

Each trial trains the same run three ways: straight through (the reference), and
killed with SIGKILL then resumed with ``made train --resume`` until it finishes.
The kills are at named moments (``tests/crash_driver.py``: a minibatch step, the
middle of a checkpoint write) and at random wall-clock moments from outside. It
prints a markdown table: whether the final weights equal the reference bit for
bit, and the largest difference if not.

    python benchmarks/resume_check.py --device cpu                  # the table in resume_check.md
    python benchmarks/resume_check.py --device cuda --out "$OUT"    # on a GPU machine

On CPU the weights must be equal bit for bit; on a GPU that holds when its
kernels are deterministic for the same inputs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

DRIVER = Path(__file__).resolve().parents[1] / "tests" / "crash_driver.py"


def train(args: list[str], crash_at: str | None = None, kill_after: float | None = None) -> int:
    """Run ``made train`` with ``args``; kill it at ``crash_at`` or after ``kill_after`` seconds."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = ["-m", "made"] if crash_at is None else [str(DRIVER), crash_at]
    process = subprocess.Popen(
        [sys.executable, *command, "train", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if kill_after is not None:
        try:
            process.wait(kill_after)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGKILL)
    _, err = process.communicate()
    if process.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"made train {' '.join(args)} failed:\n{err}")
    return process.returncode


def compare(run: Path, reference: Path) -> tuple[bool, float]:
    ours, theirs = load_file(run / "model.safetensors"), load_file(reference / "model.safetensors")
    same = (run / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    diff = max(float((ours[k].double() - theirs[k].double()).abs().max()) for k in ours if ours[k].is_floating_point())
    return same, diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--random-kills", type=int, default=3, help="kills at random moments per trial")
    parser.add_argument("--out", help="also write the table to OUT/resume_check.md")
    options = parser.parse_args()
    common = [
        "--dataset",
        "digits",
        "--hidden",
        "200",
        "--masks",
        "8",
        "--epochs",
        str(options.epochs),
        "--device",
        options.device,
        "--quiet",
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        assert train([*common, "--out", str(folder / "reference")]) == 0
        straight = time.perf_counter() - started
        trials = {
            "mid-epoch (step 30), then mid-write of state-000004": ["step:30", "write:state-000004.safetensors"],
            "mid-write of best-000002, then of state.json (epoch 5)": [
                "write:best-000002.safetensors",
                "write:state.json@3",
            ],
            f"{options.random_kills} kills at random moments": [None] * options.random_kills,
        }
        rng = random.Random(0)
        for name, kills in trials.items():
            run = folder / "run"
            shutil.rmtree(run, ignore_errors=True)
            killed = 0
            for kill in [*kills, "none"]:
                if (run / "metrics.json").exists():
                    break
                args = (
                    ["--resume", str(run), "--quiet"] if (run / "args.json").exists() else [*common, "--out", str(run)]
                )
                when = rng.uniform(0.5, straight) if kill is None else None
                killed += train(args, crash_at=None if kill == "none" else kill, kill_after=when) == -signal.SIGKILL
            if not (run / "metrics.json").exists():  # the last kill hit
                train(
                    ["--resume", str(run), "--quiet"] if (run / "args.json").exists() else [*common, "--out", str(run)]
                )
            same, diff = compare(run, folder / "reference")
            rows.append(f"| {name} | {killed} | {'yes' if same else 'no'} | {diff:.3g} |")
    device = torch.cuda.get_device_name() if options.device.startswith("cuda") else "CPU"
    table = (
        "\n".join(
            [
                f"`python benchmarks/resume_check.py --device {options.device} --epochs {options.epochs}` "
                f"({device}, torch {torch.__version__}; the uninterrupted run took {straight:.1f} s)",
                "",
                "| interruptions tried | processes killed | final weights bit-identical | max abs difference |",
                "| --- | --- | --- | --- |",
                *rows,
            ]
        )
        + "\n"
    )
    print(table)
    if options.out:
        Path(options.out, "resume_check.md").write_text(table)


if __name__ == "__main__":
    main()
