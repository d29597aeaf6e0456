r"""made against nflows, zuko and pyro: training step, exact log-likelihood throughput, memory, ensembles.

Every implementation gets the same network (D = 784 Bernoulli logits, ReLU hidden
layers of the given widths), is checked to be autoregressive (its Jacobian is
strictly lower triangular in the natural order), and is timed in the same rounds,
one after another in a rotating order; each figure is the median over rounds and
ratios are taken inside this one run.

    pip install -e '.[bench]'
    python benchmarks/speed.py --out benchmarks/SPEED.md              # CPU
    python benchmarks/speed.py --device cuda --out SPEED-cuda.md      # GPU

Options add made rows with torch.compile (``--compile``) or bf16 autocast (``--amp``).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from made import MADE
from made.evaluate import per_example_nll
from made.nn import fast_path

D = 784
DATA = Path("/work/shared/data/binarized_mnist.npz")
ARCHS = {"500": [500], "2000x2000": [2000, 2000]}


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


def _peer(name: str, module: nn.Module, batch: int) -> Impl:
    def loss(x: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(module(x), x, reduction="sum") / x.shape[0]

    @torch.no_grad()
    def nll(data: Tensor) -> Tensor:
        parts = [
            F.binary_cross_entropy_with_logits(module(x), x, reduction="none").sum(-1) for x in data.split(batch)
        ]
        return torch.cat(parts).double().cpu()

    return Impl(name, module, module, loss, nll)


def build_peers(hidden: list[int], batch: int) -> tuple[list[Impl], list[str]]:
    """nflows, zuko and pyro networks equal to made's; notes for those that cannot be built."""
    impls, notes = [], []
    try:
        from nflows.transforms.made import MADE as NflowsMADE

        if len(set(hidden)) == 1:
            net = NflowsMADE(D, hidden[0], num_blocks=len(hidden) - 1, use_residual_blocks=False)
            impls.append(_peer("nflows", net, batch))
        else:
            notes.append("nflows: needs equal hidden widths")
    except ImportError:
        notes.append("nflows: not installed")
    try:
        import zuko

        adjacency = torch.ones(D, D, dtype=torch.bool).tril(-1)
        impls.append(_peer("zuko", zuko.nn.MaskedMLP(adjacency, hidden, activation=nn.ReLU), batch))
    except ImportError:
        notes.append("zuko: not installed")
    try:
        from pyro.nn import AutoRegressiveNN

        net = AutoRegressiveNN(D, hidden, param_dims=[1], permutation=torch.arange(D), nonlinearity=nn.ReLU())
        impls.append(_peer("pyro", net, batch))
    except ImportError:
        notes.append("pyro: not installed")
    except ValueError as err:  # pyro refuses hidden layers narrower than D
        notes.append(f"pyro: cannot build [{', '.join(map(str, hidden))}] ({err})")
    return impls, notes


def build_made(hidden: list[int], batch: int, mode: str = "auto", label: str = "made", num_masks: int = 1) -> Impl:
    """made with the given fast-path mode; training uses made's own loss, evaluation made.evaluate."""
    model = MADE(D, hidden, num_masks=num_masks)

    def wrap(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            with fast_path(mode):
                return fn()

        return run

    def loss(x: Tensor) -> Tensor:
        model.validate_args = False  # as made.train.fit does: data are checked once
        return -model.log_prob(x).mean()

    return Impl(label, model, model, loss, lambda data: per_example_nll(model, data, batch), wrap)


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
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    level = peak = 0
    for _, nbytes in events:
        level += nbytes
        peak = max(peak, level)
    return peak


# ------------------------------------------------------------------------ tables
def fmt_ms(t: Timing) -> str:
    return f"{t.median * 1e3:.2f} ms (±{t.spread * 50:.0f}%)"


def ratio_rows(
    title: str, timings: dict[str, Timing], impls: list[str], peers: list[str], higher_is_better: bool = False
) -> list[str]:
    """Markdown rows: time, and the ratio to the fastest peer (<1 is faster for times, >1 for throughput)."""
    best = min((timings[p].median for p in peers), default=math.nan)
    rows = []
    for name in impls:
        t = timings[name]
        ratio = t.median / best
        if higher_is_better:
            rows.append(f"| {title} | {name} | {fmt_ms(t)} | {1 / t.median:,.0f} /s | {1 / ratio:.2f}x |")
        else:
            rows.append(f"| {title} | {name} | {fmt_ms(t)} | {ratio:.2f} |")
    return rows


def machine(device: torch.device) -> list[str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = []
    for package in ("torch", "nflows", "zuko", "pyro-ppl", "numpy"):
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} (absent)")
    lines = [
        f"- machine: {platform.node()} ({platform.system()} {platform.machine()}), {os.cpu_count()} logical CPUs, "
        f"CPU model: {cpu}",
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
def load_test_data() -> tuple[Tensor, str]:
    if DATA.exists():
        with np.load(DATA) as npz:
            return torch.from_numpy(np.asarray(npz["test_data"], dtype=np.float32)), f"{DATA} (test_data)"
    gen = torch.Generator().manual_seed(0)
    return (torch.rand(10_000, D, generator=gen) < 0.13).float(), "random binary data (binarized MNIST absent)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--out", type=Path, help="write the markdown report here")
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=list(ARCHS))
    parser.add_argument("--rounds", type=int, help="timing rounds (default: 7 on CPU, 15 on GPU)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="wall time, or process CPU time on a shared CPU machine (default: wall)")
    parser.add_argument("--eval-batch", type=int, default=1000, help="batch size of likelihood evaluation")
    parser.add_argument("--ensemble-archs", nargs="*", help="archs for the ensemble table (default: 500 on CPU, all on GPU)")
    parser.add_argument("--ensemble-examples", type=int, help="test images in the ensemble table (default: all)")
    parser.add_argument("--compile", action="store_true", help="add made rows under torch.compile")
    parser.add_argument("--amp", action="store_true", help="add made rows under bf16 autocast")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    clock = Clock(device, "wall" if device.type == "cuda" else args.clock)
    rounds = args.rounds or (15 if device.type == "cuda" else 7)
    torch.manual_seed(0)
    test, source = load_test_data()
    test = test.to(device)
    started = time.perf_counter()

    report = ["# Speed: made against nflows, zuko and pyro", ""]
    report += machine(device)
    report += [
        f"- command: `python {' '.join([Path(sys.argv[0]).as_posix(), *(argv if argv is not None else sys.argv[1:])])}`",
        f"- device: {device}; clock: {clock.now.__name__}; {rounds} rounds, implementations interleaved in a "
        "rotating order, median over rounds; (±x%) is half the interquartile range over rounds",
        f"- data: {source}, {test.shape[0]} images",
        "",
    ]
    notes, checks, train_rows, eval_rows, memory_rows, ablation_rows, ensemble_rows = [], [], [], [], [], [], []
    for arch in args.archs:
        hidden = ARCHS[arch]
        print(f"== [{arch}] building and checking", flush=True)
        peers, why = build_peers(hidden, args.eval_batch)
        notes += [f"[{arch}] {n}" for n in why]
        made = build_made(hidden, args.eval_batch)
        plain = build_made(hidden, args.eval_batch, mode="off", label="made, fast paths off")
        plain.module.load_state_dict(made.module.state_dict())
        extra = []
        if args.compile:
            extra.append(build_made(hidden, args.eval_batch, label="made + torch.compile"))
            extra[-1].module.load_state_dict(made.module.state_dict())
            compiled = torch.compile(extra[-1].module)
            extra[-1].logits = compiled
            extra[-1].loss = lambda x, m=compiled: F.binary_cross_entropy_with_logits(m(x), x, reduction="sum") / x.shape[0]
        if args.amp:
            amp = build_made(hidden, args.eval_batch, label="made + bf16 autocast")
            amp.module.load_state_dict(made.module.state_dict())
            inner = amp.wrap

            def autocast_wrap(fn: Callable[[], object], inner: Callable = inner) -> Callable[[], object]:
                def run() -> object:
                    with torch.autocast(device.type, dtype=torch.bfloat16):
                        return inner(fn)()

                return run

            amp.wrap = autocast_wrap
            extra.append(amp)
        impls = [made, plain, *extra, *peers]
        for impl in impls:
            impl.module.to(device)
            if impl in extra:
                continue
            checks.append(
                f"| {arch} | {impl.name} | {sum(p.numel() for p in impl.module.parameters()):,} | "
                f"{connections(impl.module):,} | {check_autoregressive(impl, device)} |"
            )
        made.module.check_autoregressive()
        names, peer_names = [i.name for i in impls], [p.name for p in peers]

        for batch in (100, 1000):
            x = test[:batch]
            steps = {}
            for impl in impls:
                opt = torch.optim.Adam(impl.module.parameters(), lr=1e-3)

                def step(impl: Impl = impl, opt: torch.optim.Optimizer = opt) -> None:
                    opt.zero_grad(set_to_none=True)
                    impl.loss(x).backward()
                    opt.step()

                steps[impl.name] = impl.wrap(step)
            print(f"== [{arch}] training step, batch {batch}", flush=True)
            timings = interleaved(steps, clock, rounds)
            train_rows += ratio_rows(f"{arch}, batch {batch}", timings, names, peer_names)
            if batch == 100:
                for impl in impls:
                    memory_rows.append(f"| {arch} | training step, batch 100 | {impl.name} | "
                                       f"{peak_bytes(steps[impl.name], device) / 2**20:,.1f} MiB |")

        print(f"== [{arch}] log-likelihood of {test.shape[0]} images", flush=True)
        evals = {impl.name: impl.wrap(lambda impl=impl: impl.nll(test)) for impl in impls}
        for impl in impls:
            impl.module.eval()
        reference = evals[plain.name]()
        worst = float((evals[made.name]() - reference).abs().max() / reference.abs().max())
        notes.append(f"[{arch}] made's evaluation equals its plain path to a relative {worst:.1e} (float32)")
        timings = interleaved(evals, clock, rounds)
        per_image = {k: Timing(v.median / test.shape[0], v.spread) for k, v in timings.items()}
        eval_rows += ratio_rows(f"{arch}", per_image, names, peer_names, higher_is_better=True)
        for impl in impls:
            impl.module.train()  # cold caches: made's reused weights are counted in its peak
            memory_rows.append(f"| {arch} | log-likelihood, batch {args.eval_batch} | {impl.name} | "
                               f"{peak_bytes(evals[impl.name], device) / 2**20:,.1f} MiB |")

        ablation = {}
        for mode in ("off", "dense", "auto"):
            ablation[f"made, fast path '{mode}'"] = _with_mode(mode, lambda: made.nll(test))
        timings = interleaved(ablation, clock, max(3, rounds // 2))
        for name, t in timings.items():
            ablation_rows.append(f"| {arch} | {name} | {fmt_ms(t)} | {timings[list(timings)[0]].median / t.median:.2f}x |")

        ensemble_archs = args.ensemble_archs if args.ensemble_archs is not None else (
            list(ARCHS) if device.type == "cuda" else ["500"])
        if arch in ensemble_archs:
            ensemble_rows += ensemble_table(arch, hidden, test[: args.ensemble_examples], args.eval_batch, clock,
                                            max(3, rounds // 2), device)
        print(f"   elapsed {time.perf_counter() - started:.0f} s", flush=True)

    report += ["## Checks", "", "| arch | implementation | parameters | mask connections | autoregressive (Jacobian) |",
               "|---|---|---|---|---|", *checks, ""]
    report += ["## Training step (forward, Bernoulli NLL, backward, Adam)", "",
               "Ratio: time over the fastest peer's (below 1: made is faster).", "",
               "| arch, batch | implementation | time per step | ratio to fastest peer |", "|---|---|---|---|",
               *train_rows, ""]
    report += [f"## Exact log-likelihood of the test set (batches of {args.eval_batch})", "",
               "Speed-up: throughput over the fastest peer's (above 1: made is faster).", "",
               "| arch | implementation | time per image | images per second | speed-up over fastest peer |",
               "|---|---|---|---|---|", *eval_rows, ""]
    memory_how = ("torch.cuda.max_memory_allocated above the level before the call" if device.type == "cuda" else
                  "peak of the running sum of torch's profiler allocation/free events during the call (tensor "
                  "memory only, not the Python heap or allocator caches)")
    report += ["## Peak memory", "", f"Measured as: {memory_how}. Training: one warmed step (gradients, "
               "activations and temporaries; parameters and Adam state exist before). Evaluation: the whole "
               "test set from cold caches (made's reused weights included).", "",
               "| arch | what | implementation | peak |", "|---|---|---|---|", *memory_rows, ""]
    report += ["## What made's fast paths buy (log-likelihood of the test set)", "",
               "'off': W * M with the bool mask at every call (the plain path); 'dense': W * M reused while "
               "weights and mask are unchanged; 'auto': plus block-triangular products on degree-sorted units "
               "where they pay (CPU, large layers).", "",
               "| arch | mode | time for the test set | speed-up over 'off' |", "|---|---|---|---|",
               *ablation_rows, ""]
    if ensemble_rows:
        report += ["## Mask ensembles (made, 32-mask pool)", "",
                   "Ensemble of k masks: `per_example_nll(model, data, ensemble=k)` (log-mean-exp of the k joint "
                   "likelihoods). k single evaluations: for each of the k masks, `model.set_mask(i)` then "
                   "`per_example_nll(model, data)`.", "",
                   "| arch | k | ensemble | k single evaluations | ensemble / singles |", "|---|---|---|---|---|",
                   *ensemble_rows, ""]
    report += ["## Notes", "", *[f"- {n}" for n in notes],
               f"- total benchmark time: {time.perf_counter() - started:.0f} s", ""]
    text = "\n".join(report)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


def _with_mode(mode: str, fn: Callable[[], object]) -> Callable[[], object]:
    def run() -> object:
        with fast_path(mode):
            return fn()

    return run


def ensemble_table(
    arch: str, hidden: list[int], data: Tensor, batch: int, clock: Clock, rounds: int, device: torch.device
) -> list[str]:
    model = MADE(D, hidden, num_masks=32).to(device)
    model.eval()
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
        joint = torch.stack([-s for s in singles()])
        expected = math.log(k) - torch.logsumexp(joint, 0)
        torch.testing.assert_close(ensemble(), expected, rtol=1e-6, atol=1e-6)
        rows.append(f"| {arch} | {k} | {t['ensemble'].median:.3f} s | {t['singles'].median:.3f} s | "
                    f"{t['ensemble'].median / t['singles'].median:.2f} |")
    return rows


if __name__ == "__main__":
    sys.exit(main())
