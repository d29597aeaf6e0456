r"""Every output family on a GPU: the same numbers as on the CPU, and the CLI end to end.

For each family (Bernoulli, categorical with mixed cardinalities, Gaussian,
mixture, mixed columns), with a context input: log-likelihoods, the ensemble and
per-dimension terms on CUDA against the CPU (float64), samples on CUDA in the
support, and the inverse-CDF sampler draw for draw against the CPU for the same
uniforms. Then ``made train/eval/sample --device cuda`` on a mixed-column CSV and
on class-conditional digits. Writes ``gpu_families.md`` into the folder given
(default ``$OUT``) and exits 1 if any check fails. About a minute on one GPU:

    python benchmarks/gpu_families.py "$OUT"
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from made import MADE
from made.cli import main as made
from made.inference.evaluate import per_dimension_nll
from made.model.sampling import sample_naive

FAMILIES = {
    "bernoulli": "bernoulli",
    "categorical": {"name": "categorical", "categories": [2, 3, 5, 4, 2, 3]},
    "gaussian": {"name": "gaussian"},
    "mog": {"name": "mog", "components": 4},
    "mixed": [{"type": "binary"}, {"type": "categorical", "categories": 3}, {"type": "real", "components": 2}] * 2,
}


def check_family(name: str, family: object, device: torch.device) -> list[tuple[str, bool, str]]:
    torch.manual_seed(0)
    cpu = MADE(6, [64, 64], family=family, direct=True, num_masks=4, context_size=3).double()
    gpu = MADE(6, [64, 64], family=family, direct=True, num_masks=4, context_size=3).double().to(device)
    gpu.load_state_dict(cpu.state_dict())
    context = torch.randn(500, 3, dtype=torch.float64)
    x = cpu.sample(500, context, generator=torch.Generator().manual_seed(1))
    rows = []
    with torch.no_grad():
        for what, on_cpu, on_gpu in [
            ("log_prob", cpu.log_prob(x, context), gpu.log_prob(x.to(device), context.to(device))),
            (
                "ensemble of 4",
                cpu.log_prob(x, context, ensemble=4),
                gpu.log_prob(x.to(device), context.to(device), ensemble=4),
            ),
            ("per-dimension", per_dimension_nll(cpu, x, 100, context), per_dimension_nll(gpu, x, 100, context)),
        ]:
            gap = float((on_cpu - on_gpu.cpu()).abs().max())
            rows.append((f"{name}: {what}", gap < 1e-9, f"max |CPU - GPU| = {gap:.1e}"))
        uniform = torch.rand(500, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
        drawn_cpu = sample_naive(cpu, uniform, context)
        drawn_gpu = sample_naive(gpu, uniform.to(device), context.to(device)).cpu()
        gap = float((drawn_cpu - drawn_gpu).abs().max())
        rows.append((f"{name}: sampler, same uniforms", gap < 1e-6, f"max |CPU - GPU| = {gap:.1e}"))
        samples = gpu.sample(2000, context[:1].expand(2000, 3).to(device))
        ok = bool(torch.isfinite(gpu.log_prob(samples, context[:1].expand(2000, 3).to(device))).all())
        rows.append((f"{name}: samples on the GPU lie in the support", ok, f"{len(samples)} samples"))
    return rows


def run(args: list[str]) -> tuple[int, str]:
    """Exit status and the last line ``made`` printed (stdout or stderr)."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        status = made(args)
    lines = [line for line in printed.getvalue().splitlines() if line.strip() and "Warning" not in line]
    return status, lines[-1] if lines else ""


def check_cli(folder: Path, device: str = "cuda") -> list[tuple[str, bool, str]]:
    rng = np.random.RandomState(0)
    a = rng.randint(0, 2, 600)
    rows = np.c_[a, rng.choice([3, 7, 9], 600), rng.randn(600) * 5 + 100 + 10 * a]
    np.savetxt(folder / "mixed.csv", rows, delimiter=",", fmt=["%d", "%d", "%.5f"])
    results = []
    run_dir = folder / "mixed"
    status, line = run(
        [
            "train",
            "--data",
            str(folder / "mixed.csv"),
            "--schema",
            "auto",
            "--components",
            "3",
            "--out",
            str(run_dir),
            "--epochs",
            "20",
            "--device",
            device,
            "--quiet",
        ]
    )
    results.append((f"made train --schema auto on {device}", status == 0, line))
    status, line = run(["eval", str(run_dir), "--device", device, "--per-dim", str(folder / "pd.csv")])
    results.append((f"made eval --per-dim on {device}", status == 0, line))
    status, line = run(["sample", str(run_dir), "--device", device, "-n", "100", "--out", str(folder / "s.csv")])
    samples = np.loadtxt(folder / "s.csv", delimiter=",") if status == 0 else np.zeros((0, 3))
    ok = status == 0 and set(samples[:, 1]) <= {3, 7, 9} and 60 < samples[:, 2].mean() < 140
    results.append((f"made sample on {device}, decoded", ok, line))
    digits = folder / "digits"
    status, line = run(
        [
            "train",
            "--dataset",
            "digits",
            "--context",
            "labels",
            "--out",
            str(digits),
            "--epochs",
            "30",
            "--device",
            device,
            "--quiet",
        ]
    )
    results.append((f"made train --context labels on {device}", status == 0, line))
    status, line = run(
        ["sample", str(digits), "--context", "3", "--device", device, "--out", str(folder / "threes.png")]
    )
    results.append((f"made sample --context 3 on {device}", status == 0, line))
    metrics = json.loads((digits / "metrics.json").read_text()) if (digits / "metrics.json").exists() else {}
    results.append(
        ("conditional digits test NLL (nats)", bool(metrics), f"{metrics.get('test_nll', float('nan')):.3f}")
    )
    return results


def main() -> int:
    target = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "."))
    target.mkdir(parents=True, exist_ok=True)
    if not torch.cuda.is_available():
        print("no GPU: nothing checked", file=sys.stderr)
        return 1
    device = torch.device("cuda")
    rows = [row for name, family in FAMILIES.items() for row in check_family(name, family, device)]
    with tempfile.TemporaryDirectory() as tmp:
        rows += check_cli(Path(tmp))
        if (Path(tmp) / "threes.png").exists():
            (target / "threes.png").write_bytes((Path(tmp) / "threes.png").read_bytes())
    lines = [
        f"# Families on {torch.cuda.get_device_name(0)} (torch {torch.__version__})",
        "",
        "| check | passed | detail |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {what} | {'yes' if ok else '**no**'} | {detail} |" for what, ok, detail in rows]
    text = "\n".join(lines) + "\n"
    (target / "gpu_families.md").write_text(text)
    print(text)
    return 0 if all(ok for _, ok, _ in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
