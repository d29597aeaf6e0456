r"""made against nflows, zuko and pyro: training step, exact log-likelihood throughput, memory, ensembles.

Every implementation gets the same network (D = 784 Bernoulli logits, ReLU hidden
layers of the given widths), is checked to be autoregressive (its Jacobian is
strictly lower triangular in the natural order), and is timed in the same rounds,
one after another in a rotating order; each figure is the median over rounds and
ratios are taken inside this one run.

    pip install -e '.[bench]'
    python benchmarks/speed.py --out benchmarks/SPEED.md              # CPU
    python benchmarks/speed.py --device cuda --out SPEED-cuda.md      # GPU

On a GPU machine without network but with torch, carry the peers (pure Python) and the data:

    pip install --target .peers --no-deps nflows==0.14 zuko==1.6.0 pyro-ppl==1.9.2 pyro-api
    cp ../shared/data/binarized_mnist.npz .peers/                     # there:
    PYTHONPATH=.:.peers python3 benchmarks/speed.py --device cuda --data .peers/binarized_mnist.npz --out OUT.md

A last table times a tiny network (D = 20, [32]) in batches of 100: the per-batch Python and
kernel-launch cost that bounds small-model throughput on a GPU, measurable on any machine.

Options add made rows with torch.compile (``--compile``) or bf16 autocast (``--amp``); on a
shared CPU machine ``--threads 1 --clock cpu`` times process CPU time, which other jobs disturb less.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from cpu_model import cpu_model
from repo_paths import default_data_dir, shown
from torch import Tensor, nn

from made import MADE
from made.fast.dispatch import fast_path
from made.inference.evaluate import per_example_nll
from made.training.loop import TrainConfig, make_optimizer

D = 784
DATA_FILE = "binarized_mnist.npz"
ARCHS = {"500": [500], "2000x2000": [2000, 2000]}
OVERHEAD_NET = (20, [32], 100)  # D, hidden, batch of the per-batch overhead table


# ----------------------------------------------------------------- implementations
@dataclass
class Impl:
    """One network under test: how to get its logits, its training loss and its test NLLs."""

    name: str
    module: nn.Module
    logits: Callable[[Tensor], Tensor]
    loss: Callable[[Tensor], Tensor]
    nll: Callable[[Tensor], Tensor]
    wrap: Callable[[Callable[[], object]], Callable[[], object]] = lambda fn: fn
    optimizer: Callable[[nn.Module], torch.optim.Optimizer] = lambda m: torch.optim.Adam(m.parameters(), lr=1e-3)


def bernoulli_nll(logits: Tensor, x: Tensor) -> Tensor:
    """Per-example NLL of binary data under Bernoulli logits, in nats: the loss every implementation shares."""
    return F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def _peer(name: str, module: nn.Module, batch: int) -> Impl:
    @torch.no_grad()
    def nll(data: Tensor) -> Tensor:
        return torch.cat([bernoulli_nll(module(x), x) for x in data.split(batch)]).double().cpu()

    return Impl(name, module, module, lambda x: bernoulli_nll(module(x), x).mean(), nll)


def build_peers(hidden: list[int], batch: int, dim: int = D) -> tuple[list[Impl], list[str]]:
    """nflows, zuko and pyro networks equal to made's; notes for those that cannot be built."""
    impls, notes = [], []
    try:
        from nflows.transforms.made import MADE as NflowsMADE

        if len(set(hidden)) == 1:
            net = NflowsMADE(dim, hidden[0], num_blocks=len(hidden) - 1, use_residual_blocks=False)
            impls.append(_peer("nflows", net, batch))
        else:
            notes.append("nflows: needs equal hidden widths")
    except ImportError:
        notes.append("nflows: not installed")
    try:
        import zuko

        adjacency = torch.ones(dim, dim, dtype=torch.bool).tril(-1)
        impls.append(_peer("zuko", zuko.nn.MaskedMLP(adjacency, hidden, activation=nn.ReLU), batch))
    except ImportError:
        notes.append("zuko: not installed")
    try:
        from pyro.nn import AutoRegressiveNN

        net = AutoRegressiveNN(dim, hidden, param_dims=[1], permutation=torch.arange(dim), nonlinearity=nn.ReLU())
        impls.append(_peer("pyro", net, batch))
    except ImportError:
        notes.append("pyro: not installed")
    except ValueError as err:  # pyro refuses hidden layers narrower than D
        notes.append(f"pyro: cannot build [{', '.join(map(str, hidden))}] ({err})")
    return impls, notes


def build_made(label: str, hidden: list[int], batch: int, mode: str = "auto", dim: int = D) -> Impl:
    """made with the given fast-path mode; evaluation through made.inference.evaluate.per_example_nll."""
    model = MADE(dim, hidden)
    return Impl(
        label,
        model,
        model,
        lambda x: bernoulli_nll(model(x), x).mean(),
        lambda data: per_example_nll(model, data, batch),
        lambda fn: in_mode(mode, fn),
    )


def in_mode(mode: str, fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with fast_path(mode):
            return fn()

    return run


# ----------------------------------------------------------------------- checks
def check_autoregressive(impl: Impl, device: torch.device) -> str:
    """Raise unless d logit_i / d x_j vanishes for every j >= i and not everywhere; return a summary."""
    x = (torch.rand(D, generator=torch.Generator().manual_seed(1)) < 0.5).float().to(device)
    jac = torch.autograd.functional.jacobian(lambda v: impl.logits(v[None])[0], x, vectorize=True)
    leaks = int((jac.triu() != 0).sum())
    below = int((jac.tril(-1) != 0).sum())
    if leaks or not below:
        raise AssertionError(f"{impl.name} is not autoregressive: {leaks} leaks, {below} dependencies")
    return f"{below / (D * (D - 1) / 2):.0%} of allowed dependencies present"


def connections(module: nn.Module) -> int:
    """Weights the masks let through (every mask buffer's nonzeros)."""
    return sum(int((b != 0).sum()) for n, b in module.named_buffers() if n.endswith("mask"))


# ------------------------------------------------------------------------ timing
class Clock:
    """Wall time around a synchronized call; on CPU optionally process CPU time (less hurt by other loads)."""

    def __init__(self, device: torch.device, kind: str) -> None:
        self.device, self.now = device, time.process_time if kind == "cpu" else time.perf_counter

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, fn: Callable[[], object], reps: int = 1) -> float:
        self.sync()
        start = self.now()
        for _ in range(reps):
            fn()
        self.sync()
        return (self.now() - start) / reps


@dataclass
class Timing:
    median: float
    spread: float  # interquartile range / median

    @staticmethod
    def of(samples: list[float]) -> Timing:
        q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [samples[0]] * 3
        med = statistics.median(samples)
        return Timing(med, (q[2] - q[0]) / med if med else 0.0)


def interleaved(
    cases: dict[str, Callable[[], object]], clock: Clock, rounds: int, reps: int = 1, warmup: int = 2
) -> dict[str, Timing]:
    """Time every case once per round, rotating the order each round; medians over rounds."""
    names = list(cases)
    for name in names:  # warm-up: allocations, caches, lazy initialization
        clock(cases[name], warmup)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            samples[name].append(clock(cases[name], reps))
    return {name: Timing.of(s) for name, s in samples.items()}


def peak_bytes(fn: Callable[[], object], device: torch.device) -> int:
    """Peak of tensor memory allocated during ``fn`` above the level before it.

    CUDA: ``torch.cuda.max_memory_allocated``; CPU: the running sum of the torch
    profiler's allocation and free events.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]")
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return peak


# ------------------------------------------------------------------------ tables
def fmt_ms(t: Timing) -> str:
    return f"{t.median * 1e3:.2f} ms (±{t.spread * 50:.0f}%)"


def eval_label(name: str) -> str:
    """An implementation's name in evaluation rows, where no optimizer runs."""
    return name.removesuffix(", torch.optim.Adam")


def ratio_rows(
    title: str, timings: dict[str, Timing], impls: list[str], peers: list[str], items: int | None = None
) -> list[str]:
    """Markdown rows: time, and the ratio to the fastest peer: of times (<1 is faster), or with
    ``items`` per timed call, of throughputs (>1 is faster)."""
    best = min((timings[p].median for p in peers), default=math.nan)
    rows = []
    for name in impls:
        t = timings[name]
        ratio = t.median / best
        if items is not None:
            rows.append(
                f"| {title} | {eval_label(name)} | {fmt_ms(t)} | {items / t.median:,.0f} /s | {1 / ratio:.2f}x |"
            )
        else:
            rows.append(f"| {title} | {name} | {fmt_ms(t)} | {ratio:.2f} |")
    return rows


def machine(device: torch.device) -> list[str]:
    versions = []
    for package in ("torch", "nflows", "zuko", "pyro-ppl", "numpy"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (absent)")
    lines = [
        f"- machine: {platform.node()} ({platform.system()} {platform.machine()}), {os.cpu_count()} logical CPUs, "
        f"CPU model: {cpu_model()}",
        f"- torch threads: {torch.get_num_threads()}; Python {platform.python_version()}",
        f"- versions: {', '.join(versions)}",
    ]
    if device.type == "cuda":
        lines.append(f"- GPU: {torch.cuda.get_device_name(device)}, CUDA {torch.version.cuda}")
    try:
        lines.append(f"- load average at start: {', '.join(f'{v:.1f}' for v in os.getloadavg())}")
    except OSError:
        pass
    return lines


# -------------------------------------------------------------------------- main
def load_test_data(path: Path | None) -> tuple[Tensor, str]:
    """Binarized MNIST's test split from ``path``, $MADE_DATA_DIR or the shared data folder; else random bits."""
    candidate = path or default_data_dir() / DATA_FILE
    if candidate.exists():
        with np.load(candidate) as npz:
            return torch.from_numpy(np.asarray(npz["test_data"], dtype=np.float32)), f"{shown(candidate)} (test_data)"
    if path:
        raise SystemExit(f"speed.py: error: no such file: {path}")
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(10_000, D, generator=gen) < 0.13).float(), "random binary data (binarized MNIST not found)"


@dataclass
class Arch:
    """The implementations of one architecture and the report rows they produce."""

    name: str
    made: Impl  # made as its training loop runs it: fast paths and made.training.loop.make_optimizer
    same_optimizer: list[Impl]  # made, made without fast paths, the peers: all with torch.optim.Adam
    peers: list[Impl]
    options: list[Impl]  # opt-in made variants (compile, autocast)
    notes: list[str]


def build_arch(name: str, batch: int, device: torch.device, compiled: bool, amp: bool) -> Arch:
    hidden = ARCHS[name]
    peers, notes = build_peers(hidden, batch)
    made = build_made("made", hidden, batch)
    made.optimizer = lambda m: make_optimizer(m, TrainConfig())
    torch_adam = build_made("made, torch.optim.Adam", hidden, batch)
    plain = build_made("made, fast paths off, torch.optim.Adam", hidden, batch, mode="off")
    options = []
    if compiled:
        impl = build_made("made + torch.compile, torch.optim.Adam", hidden, batch)
        fn = torch.compile(impl.module)
        impl.logits, impl.loss = fn, lambda x, fn=fn: bernoulli_nll(fn(x), x).mean()
        impl.nll = _peer(impl.name, fn, batch).nll
        options.append(impl)
    if device.type == "cuda":  # "auto" keeps block products CPU-only: this row says whether they pay here
        options.append(build_made("made, block products forced, torch.optim.Adam", hidden, batch, mode="blocks"))
    if amp:
        impl = build_made("made + bf16 autocast, torch.optim.Adam", hidden, batch)
        impl.wrap = lambda fn: in_mode("auto", lambda: _autocast(device, fn))
        options.append(impl)
    for impl in [torch_adam, plain, *options]:
        impl.module.load_state_dict(made.module.state_dict())
    for impl in [made, torch_adam, plain, *options, *peers]:
        impl.module.to(device)
    return Arch(name, made, [torch_adam, plain, *peers], peers, options, [f"[{name}] {n}" for n in notes])


def _autocast(device: torch.device, fn: Callable[[], object]) -> object:
    with torch.autocast(device.type, dtype=torch.bfloat16):
        return fn()


def train_step(impl: Impl, x: Tensor) -> Callable[[], object]:
    opt = impl.optimizer(impl.module)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        impl.loss(x).backward()
        opt.step()

    return impl.wrap(step)


def bench_arch(arch: Arch, test: Tensor, args: argparse.Namespace, clock: Clock, device: torch.device) -> dict:
    rows: dict[str, list[str]] = {k: [] for k in ("checks", "train", "same", "eval", "memory", "ablation")}
    peer_names = [p.name for p in arch.peers]
    for impl in [arch.made, *arch.peers]:
        rows["checks"].append(
            f"| {arch.name} | {impl.name} | {sum(p.numel() for p in impl.module.parameters()):,} | "
            f"{connections(impl.module):,} | {check_autoregressive(impl, device)} |"
        )
    arch.made.module.check_autoregressive()
    everyone = [arch.made, *arch.same_optimizer, *arch.options]
    reps = 10 if device.type == "cuda" else 1
    for batch in (100, 1000):
        print(f"== [{arch.name}] training step, batch {batch}", flush=True)
        steps = {impl.name: train_step(impl, test[:batch]) for impl in everyone}
        timings = interleaved(steps, clock, args.rounds, reps=reps)
        label = f"{arch.name}, batch {batch}"
        rows["train"] += ratio_rows(label, timings, [arch.made.name, *peer_names], peer_names)
        rows["same"] += ratio_rows(label, timings, [i.name for i in arch.same_optimizer + arch.options], peer_names)
        if batch == 100:
            for impl in everyone:
                rows["memory"].append(
                    f"| {arch.name} | training step, batch 100 | {impl.name} | "
                    f"{peak_bytes(steps[impl.name], device) / 2**20:,.1f} MiB |"
                )

    print(f"== [{arch.name}] log-likelihood of {test.shape[0]} images", flush=True)
    evaluated = [arch.made, *arch.same_optimizer[1:], *arch.options]  # one made with its fast paths is enough
    evals = {impl.name: impl.wrap(lambda impl=impl: impl.nll(test)) for impl in evaluated}
    for impl in evaluated:
        impl.module.eval()
    for impl in [arch.made, arch.same_optimizer[1]]:  # made and made without fast paths: same weights
        impl.module.load_state_dict(arch.same_optimizer[0].module.state_dict())
    reference = evals[arch.same_optimizer[1].name]()
    worst = float((evals[arch.made.name]() - reference).abs().max() / reference.abs().max())
    arch.notes.append(f"[{arch.name}] made's test-set NLLs equal its plain path's to a relative {worst:.1e} (float32)")
    timings = interleaved(evals, clock, args.rounds)
    rows["eval"] += ratio_rows(arch.name, timings, list(evals), peer_names, items=test.shape[0])
    for impl in evaluated:
        impl.module.train()  # cold caches: made's reused weights count in its peak
        rows["memory"].append(
            f"| {arch.name} | log-likelihood, batch {args.eval_batch} | {eval_label(impl.name)} | "
            f"{peak_bytes(evals[impl.name], device) / 2**20:,.1f} MiB |"
        )

    modes = {f"'{mode}'": in_mode(mode, lambda: arch.made.nll(test)) for mode in ("off", "dense", "auto", "blocks")}
    timings = interleaved(modes, clock, max(3, args.rounds // 2))
    base = timings["'off'"].median
    rows["ablation"] += [f"| {arch.name} | {k} | {fmt_ms(t)} | {base / t.median:.2f}x |" for k, t in timings.items()]
    return rows


def bench_ensembles(arch: str, data: Tensor, batch: int, clock: Clock, rounds: int, device: torch.device) -> list[str]:
    """k-mask ensembles against k single evaluations, with the ensemble checked against the singles."""
    model = MADE(D, ARCHS[arch], num_masks=32).to(device)
    rows = []
    for k in (1, 8, 32):

        def ensemble(k: int = k) -> Tensor:
            return per_example_nll(model, data, batch, ensemble=k)

        def singles(k: int = k) -> list[Tensor]:
            out = []
            for i in range(k):
                model.set_mask(i)
                out.append(per_example_nll(model, data, batch))
            model.set_mask(0)
            return out

        print(f"== [{arch}] ensemble of {k}", flush=True)
        t = interleaved({"ensemble": ensemble, "singles": singles}, clock, rounds, warmup=1)
        expected = math.log(k) - torch.logsumexp(torch.stack([-s for s in singles()]), 0)
        torch.testing.assert_close(ensemble(), expected, rtol=1e-6, atol=1e-6)
        rows.append(
            f"| {arch} | {k} | {t['ensemble'].median:.3f} s | {t['singles'].median:.3f} s | "
            f"{t['ensemble'].median / t['singles'].median:.2f} |"
        )
    return rows


def bench_overhead(data: Tensor, clock: Clock, rounds: int, device: torch.device) -> list[str]:
    """Per-batch cost of evaluating a tiny network, where Python and kernel launches are all
    there is: what decides small-model throughput on a GPU."""
    dim, hidden, batch = OVERHEAD_NET
    x = data[:, :dim].contiguous()
    peers, _ = build_peers(hidden, batch, dim)
    made = build_made("made", hidden, batch, dim=dim)
    for impl in [made, *peers]:
        impl.module.to(device).eval()
    batches = -(-x.shape[0] // batch)
    timings = interleaved({impl.name: lambda impl=impl: impl.nll(x) for impl in [made, *peers]}, clock, rounds)
    best = min(timings[p.name].median for p in peers)
    return [
        f"| D={dim}, [{hidden[0]}], batch {batch} | {name} | {t.median / batches * 1e6:.0f} µs (±{t.spread * 50:.0f}%) "
        f"| {t.median / best:.2f} |"
        for name, t in timings.items()
    ]


STEP_COLUMNS = ["arch, batch", "implementation", "time per step", "ratio to fastest peer"]


def section(heading: str, text: str, columns: list[str], rows: list[str]) -> list[str]:
    """A report section: heading, explanation, and a markdown table of ``rows`` under ``columns``."""
    return [heading, "", text, "", f"| {' | '.join(columns)} |", "|" + "---|" * len(columns), *rows, ""]


def report(
    args: argparse.Namespace,
    argv: list[str],
    device: torch.device,
    clock: Clock,
    source: str,
    n: int,
    rows: dict[str, list[str]],
    notes: list[str],
    seconds: float,
) -> str:
    memory_how = (
        "`torch.cuda.max_memory_allocated` above the level before the call"
        if device.type == "cuda"
        else "the peak of the running sum of the torch profiler's allocation and free events during the call "
        "(tensor memory only, not the Python heap)"
    )
    lines = [
        "# Speed: made against nflows, zuko and pyro",
        "",
        *machine(device),
        f"- command: `python benchmarks/speed.py {' '.join(shown(a) if os.path.isabs(a) else a for a in argv)}`",
        f"- device: {device}; clock: {clock.now.__name__}; {args.rounds} rounds, implementations interleaved in a "
        "rotating order, median over rounds; (±x%) is half the interquartile range over rounds",
        f"- data: {source}, {n} images; total time {seconds:.0f} s",
        "",
    ]
    lines += section(
        "## Checks",
        "Each network's Jacobian d logit_i / d x_j at a random binary x vanishes for j >= i.",
        ["arch", "implementation", "parameters", "mask connections", "allowed dependencies present"],
        rows["checks"],
    )
    lines += section(
        "## Training step (forward, Bernoulli NLL, backward, optimizer step)",
        "As each library is used: made with `made.training.loop.make_optimizer` (what `made train` runs: Adam, "
        "torch's fused kernel), the peers with `torch.optim.Adam(lr=1e-3)` (torch's default kernel). Same "
        "loss code on every network's logits, `zero_grad(set_to_none=True)`. Ratio: time over the fastest "
        "peer's (below 1: made is faster). On the CPU made's large layers train on their staircases "
        "(block-triangular forward and gradients, `made.fast.blocks`) once a mask serves a second step; "
        "'fast paths off' is the plain `F.linear(x, W * M)`.",
        STEP_COLUMNS,
        rows["train"],
    )
    lines += section(
        "### The same optimizer for everyone (`torch.optim.Adam(lr=1e-3)`, torch's default kernel)",
        "The networks alone: the same rounds as above.",
        STEP_COLUMNS,
        rows["same"],
    )
    lines += section(
        f"## Exact log-likelihood of the test set (batches of {args.eval_batch})",
        "made: `made.inference.evaluate.per_example_nll`; peers: the same loss code over the same batches under "
        "`torch.no_grad()`. Speed-up: throughput over the fastest peer's (above 1: made is faster).",
        ["arch", "implementation", "time for the test set", "images per second", "speed-up over fastest peer"],
        rows["eval"],
    )
    if rows["overhead"]:
        lines += section(
            "## Per-batch cost of a tiny network",
            "Log-likelihood of the test images' first 20 pixels under a [32]-unit network, in batches of "
            "100: the arithmetic is negligible, so this is the Python and kernel-launch cost per batch that "
            "bounds small-model throughput on a GPU. Ratio: time over the fastest peer's.",
            ["network", "implementation", "time per batch", "ratio to fastest peer"],
            rows["overhead"],
        )
    lines += section(
        "## Peak memory",
        f"Measured as {memory_how}. Training: one warmed step (gradients, activations, "
        "temporaries; parameters and optimizer state exist before it). Evaluation: the whole test set "
        "from cold caches (made's reused weights included).",
        ["arch", "what", "implementation", "peak"],
        rows["memory"],
    )
    lines += section(
        "## What made's evaluation fast paths buy",
        "Test-set log-likelihood. 'off': `W * M` with the bool mask at every call (the plain path); "
        "'dense': `W * M` reused while weights and mask are unchanged; 'auto' (the default): plus "
        "block-triangular products on degree-sorted units where they pay (CPU, layers of 65,536 weights "
        "or more); 'blocks': block products for every layer, on any device.",
        ["arch", "fast path", "time for the test set", "speed-up over 'off'"],
        rows["ablation"],
    )
    if rows["ensemble"]:
        lines += section(
            "## Mask ensembles (made, a pool of 32 masks)",
            "Ensemble of k masks: `per_example_nll(model, data, ensemble=k)` (log-mean-exp of the k joint "
            "likelihoods, checked against the singles). k single evaluations: for each of the k masks, "
            "`model.set_mask(i)` then `per_example_nll(model, data)`.",
            ["arch", "k", "ensemble", "k single evaluations", "ensemble / singles"],
            rows["ensemble"],
        )
    lines += ["## Notes", "", *[f"- {n}" for n in notes], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--rounds", type=int, help="timing rounds (default: 7 on CPU, 15 on GPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="wall time, or process CPU time on a shared CPU machine (default: wall; GPU: wall)",
    )
    parser.add_argument("--eval-batch", type=int, default=1000, help="batch size of likelihood evaluation")
    parser.add_argument("--data", type=Path, help=f"{DATA_FILE} (default: $MADE_DATA_DIR or the shared data folder)")
    parser.add_argument(
        "--ensemble-archs",
        nargs="*",
        choices=list(ARCHS),
        help="archs of the ensemble table (default: 500 on CPU, all on GPU)",
    )
    parser.add_argument("--compile", action="store_true", help="add a made row under torch.compile")
    parser.add_argument("--amp", action="store_true", help="add a made row under bf16 autocast")
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = Clock(device, "wall" if device.type == "cuda" else args.clock)
    args.rounds = args.rounds or (15 if device.type == "cuda" else 7)
    torch.manual_seed(0)
    test, source = load_test_data(args.data)
    test = test.to(device)
    started = time.perf_counter()
    rows: dict[str, list[str]] = defaultdict(list)
    notes: list[str] = []
    ensemble_archs = (
        args.ensemble_archs if args.ensemble_archs is not None else (list(ARCHS) if device.type == "cuda" else ["500"])
    )
    for name in args.archs:
        print(f"== [{name}] building and checking", flush=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # made warns that 500 < D - 1 units cannot see every predecessor
            arch = build_arch(name, args.eval_batch, device, args.compile, args.amp)
            for key, value in bench_arch(arch, test, args, clock, device).items():
                rows[key] += value
            if name in ensemble_archs:
                rounds = max(3, args.rounds // 2)
                rows["ensemble"] += bench_ensembles(name, test, args.eval_batch, clock, rounds, device)
        notes += arch.notes
        print(f"   elapsed {time.perf_counter() - started:.0f} s", flush=True)
    print("== per-batch cost of a tiny network", flush=True)
    rows["overhead"] = bench_overhead(test, clock, args.rounds, device)
    text = report(args, argv, device, clock, source, test.shape[0], rows, notes, time.perf_counter() - started)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
