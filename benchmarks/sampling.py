r"""Sampling speed: our incremental sampler against D-pass samplers, ours and the peers'.

For D = 784 binary dimensions and each hidden architecture, times drawing n
samples with:

* ``made`` -- ``MADE.sample``: every hidden unit computed once (made/model/sampling.py);
* ``made, CUDA graph`` (GPU only) -- ``made.inference.graphed.GraphedSampler``: the same
  sampler recorded once for n samples and replayed as one CUDA graph (its build time,
  warm-up and recording included, is given in the row's name);
* ``made naive`` -- ``made.model.sampling.sample_naive``: D full forward passes;
* ``nflows MADE``, ``zuko MaskedMLP``, ``pyro AutoRegressiveNN`` -- the peers' masked
  networks with one output per dimension, same hidden widths and activation (ReLU).
  None of them has a sampler for Bernoulli outputs, so they are sampled the way
  their users would: D sequential passes, each fixing the next dimension;
* ``nflows MAF``, ``zuko MAF``, ``pyro MAF`` -- each library's own sampler of a
  one-layer masked autoregressive flow with the same hidden widths (Gaussian base,
  affine, so 2 outputs per dimension): like MADE, one pass to score a point, and
  the inverse that draws a sample is D passes;
* ``pyro IAF`` -- pyro's ``AffineAutoregressive`` used directly is an inverse
  autoregressive flow: one pass to sample, but D passes to score a point it did
  not draw itself. Shown for completeness; it is not the same trade-off.

Times are wall-clock seconds of one run after one warm-up (best of ``--repeats``),
with ``torch.cuda.synchronize`` around GPU work; ratios are peer time / our time from
the same run. A D-pass sampler whose full run would take longer than
``--max-seconds`` runs its first passes only and is extrapolated to D passes (every
pass costs the same full forward pass); such entries are marked ``~``. Flow
samplers cannot be cut short: when our naive sampler (D passes of a network no
wider than theirs) already exceeds ``--max-seconds`` they are not run, and that
naive time is shown as a lower estimate, marked ``~``. A library that refuses an
architecture is shown as n/a with its reason.

    pip install -e '.[bench]'
    python benchmarks/sampling.py --threads 1          # CPU
    python benchmarks/sampling.py --device cuda --out benchmarks/SAMPLING-cuda.md
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version

import torch

from made import MADE
from made.inference.graphed import GraphedSampler
from made.model.sampling import sample_incremental, sample_naive

D = 784


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Best wall-clock time of ``repeats`` calls after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - start)
    return best


class SequentialBernoulli:
    """D passes through a masked network with one logit per dimension, fixing one dimension per pass."""

    def __init__(self, net: Callable[[torch.Tensor], torch.Tensor], order: list[int]) -> None:
        self.net, self.order = net, order

    @torch.no_grad()
    def __call__(self, n: int, device: torch.device, passes: int | None = None) -> torch.Tensor:
        x = torch.zeros(n, D, device=device)
        for d in self.order[:passes]:
            logits = self.net(x)
            x[:, d] = torch.bernoulli(torch.sigmoid(logits[:, d]))
        return x


def time_sequential(
    sampler: SequentialBernoulli, n: int, device: torch.device, repeats: int, max_seconds: float
) -> tuple[float, bool]:
    """Seconds for D passes; measured, or extrapolated from the first passes when too slow."""
    probe = 8
    per_pass = timed(lambda: sampler(n, device, probe), device, 1) / probe
    if per_pass * D <= max_seconds:
        return timed(lambda: sampler(n, device), device, repeats if per_pass * D < 1 else 1), False
    passes = max(probe, int(max_seconds / 4 / per_pass))
    return timed(lambda: sampler(n, device, passes), device, 1) * D / passes, True


def nflows_peers(hidden: list[int], device: torch.device) -> dict[str, tuple[str, object]]:
    from nflows.distributions.normal import StandardNormal
    from nflows.flows.base import Flow
    from nflows.transforms.autoregressive import MaskedAffineAutoregressiveTransform
    from nflows.transforms.made import MADE as NflowsMADE

    if len(set(hidden)) != 1:
        raise ValueError("nflows' MADE has equal hidden widths only")
    blocks = dict(num_blocks=len(hidden) - 1, use_residual_blocks=False)
    net = NflowsMADE(D, hidden[0], **blocks).to(device).eval()
    flow = Flow(MaskedAffineAutoregressiveTransform(D, hidden[0], **blocks), StandardNormal([D])).to(device).eval()
    return {
        "nflows MADE": ("seq", SequentialBernoulli(net, list(range(D)))),
        "nflows MAF": ("flow", lambda n: flow.sample(n)),
    }


def zuko_peers(hidden: list[int], device: torch.device) -> dict[str, tuple[str, object]]:
    import zuko

    adjacency = torch.tril(torch.ones(D, D, dtype=torch.bool), diagonal=-1)
    net = zuko.nn.MaskedMLP(adjacency, hidden_features=hidden).to(device).eval()
    maf = zuko.flows.MAF(features=D, transforms=1, hidden_features=hidden).to(device).eval()
    return {
        "zuko MaskedMLP": ("seq", SequentialBernoulli(net, list(range(D)))),
        "zuko MAF": ("flow", lambda n: maf().sample((n,))),
    }


def pyro_peers(hidden: list[int], device: torch.device) -> dict[str, tuple[str, object]]:
    import pyro.distributions as pdist
    from pyro.distributions.transforms import AffineAutoregressive
    from pyro.nn import AutoRegressiveNN

    order = torch.arange(D)
    net = AutoRegressiveNN(D, hidden, param_dims=[1], permutation=order).to(device).eval()
    arn = AutoRegressiveNN(D, hidden, permutation=order).to(device).eval()
    base = pdist.Normal(torch.zeros(D, device=device), torch.ones(D, device=device)).to_event(1)
    # Pyro's AffineAutoregressive is an IAF: one pass to sample, D passes to score a new point.
    # Its inverse is the MAF (one pass to score, D passes to sample), the comparable flow.
    maf = pdist.TransformedDistribution(base, [AffineAutoregressive(arn).inv])
    iaf = pdist.TransformedDistribution(base, [AffineAutoregressive(arn)])
    return {
        "pyro AutoRegressiveNN": ("seq", SequentialBernoulli(net, list(range(D)))),
        "pyro MAF": ("flow", lambda n: maf.sample((n,))),
        "pyro IAF (not comparable: D passes to score a new point)": ("fast", lambda n: iaf.sample((n,))),
    }


def peers(hidden: list[int], device: torch.device) -> dict[str, tuple[str, object]]:
    """The peers' networks and flows at this architecture: name -> (kind, object), or ("n/a", reason)."""
    found: dict[str, tuple[str, object]] = {}
    for library, build in (("nflows", nflows_peers), ("zuko", zuko_peers), ("pyro", pyro_peers)):
        try:
            found.update(build(hidden, device))
        except ImportError:
            found[library] = ("n/a", "not installed (pip install -e '.[bench]')")
        except ValueError as err:  # an architecture the library refuses
            found[library] = ("n/a", str(err))
    return found


def run(hidden: list[int], n: int, device: torch.device, repeats: int, max_seconds: float) -> list[tuple]:
    """Rows ``(sampler, seconds or reason, estimated)`` for one architecture and sample count; ours first."""
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MADE(D, hidden).to(device).eval()
    rows = [("made (ours)", timed(lambda: model.sample(n), device, repeats), False)]
    if device.type == "cuda":
        sync(device)
        start = time.perf_counter()
        graphed = GraphedSampler(model, n)
        sync(device)
        built = time.perf_counter() - start
        rows.append((f"made, CUDA graph (built once in {built:.3g} s)", timed(graphed.sample, device, repeats), False))
    naive = SequentialBernoulli(lambda x: model(x), model.ordering.tolist())
    naive_seconds, estimated = time_sequential(naive, n, device, repeats, max_seconds)
    rows.append(("made naive (D passes)", naive_seconds, estimated))
    for name, (kind, obj) in peers(hidden, device).items():
        if kind == "n/a":
            rows.append((name, obj, False))
        elif kind == "seq":
            rows.append((name + " (D passes)", *time_sequential(obj, n, device, repeats, max_seconds)))
        elif kind == "flow" and naive_seconds > max_seconds:  # D passes of a network at least as wide as ours
            rows.append((name + " (own sampler, not run: our naive time as estimate)", naive_seconds, True))
        else:
            with torch.no_grad():
                seconds = timed(lambda obj=obj: obj(n), device, repeats if kind == "fast" else 1)
                rows.append((name + " (own sampler)", seconds, False))
    return rows


def check_equal_draws(device: torch.device) -> str:
    """Our sampler and sample_naive on the same noise (float64 and float32), hidden [500], 64 samples."""
    lines = []
    for dtype in (torch.float64, torch.float32):
        torch.manual_seed(1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = MADE(D, [500]).to(device=device, dtype=dtype)
        uniform = torch.rand(64, D, device=device, dtype=dtype)
        differ = int((sample_incremental(model, uniform) != sample_naive(model, uniform)).sum())
        line = f"{str(dtype).removeprefix('torch.')}: {differ} of {64 * D} values differ"
        if device.type == "cuda":  # the recorded graph against the eager sampler, same generator state
            graphed = GraphedSampler(model, 64).sample(generator=torch.Generator(device).manual_seed(2))
            eager = model.sample(64, generator=torch.Generator(device).manual_seed(2))
            line += f" (CUDA graph vs eager: {int((graphed != eager).sum())} differ)"
        lines.append(line)
    return "same-noise draws, ours vs naive, hidden [500], 64 samples: " + "; ".join(lines)


def versions() -> str:
    parts = [f"python {platform.python_version()}", f"torch {torch.__version__}"]
    for package in ("made", "nflows", "zuko", "pyro-ppl"):
        try:
            parts.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            parts.append(f"{package} not installed")
    return ", ".join(parts)


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--hidden",
        nargs="+",
        default=["500", "2000,2000"],
        help="architectures, widths joined by commas (default: 500 2000,2000)",
    )
    parser.add_argument("--samples", type=int, nargs="+", default=[64, 1000])
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timed calls for fast samplers")
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=60.0,
        help="longest full run of one D-pass sampler before it is extrapolated (default: 60)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", help="also write the markdown table to this file")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    lines = [
        f"device: {machine(device)}",
        f"versions: {versions()}",
        check_equal_draws(device),
        "",
        "| hidden | n | sampler | seconds | time / ours |",
        "| --- | --- | --- | --- | --- |",
    ]
    print("\n".join(lines), flush=True)
    for spec in args.hidden:
        hidden = [int(w) for w in spec.split(",")]
        for n in args.samples:
            rows = run(hidden, n, device, args.repeats, args.max_seconds)
            ours = rows[0][1]
            for name, seconds, estimated in rows:
                mark = "~" if estimated else ""
                if isinstance(seconds, str):
                    line = f"| {hidden} | {n} | {name} | n/a: {seconds} | |"
                else:
                    line = f"| {hidden} | {n} | {name} | {mark}{seconds:.4g} | {mark}{seconds / ours:.3g}x |"
                lines.append(line)
                print(line, flush=True)
    if args.out:
        with open(args.out, "w") as handle:
            handle.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
