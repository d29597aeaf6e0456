"""Equal batches on a GPU replayed from a CUDA graph: a small model's evaluation without its launch cost.

On a GPU a small model's batch costs its kernel launches, each issued from Python, more than
its arithmetic. :class:`GraphedBatches` records one batch's kernels and replays them for every
batch of the same shape; :func:`made.model.nll.batched_nll` uses it where
:func:`made.fast.dispatch.replay_pays` says it pays. The replayed kernels are the recorded ones,
so results equal the eager path's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["record_graph", "GraphedBatches"]


def record_graph(
    fn: Callable[[], Tensor], device: torch.device, warmup: int = 2
) -> tuple[torch.cuda.CUDAGraph, Tensor]:
    """Warm ``fn`` up on a side stream (library handles and workspaces), then record one call."""
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(warmup):
            fn()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        out = fn()
    return graph, out


class GraphedBatches:
    """``fn(x, context)`` for batches shaped like ``x`` (and ``context``), replayed from a CUDA graph.

    ``fn`` must run on the GPU without host synchronization and allocate its result; the
    result returned by a call is overwritten by the next call (copy it out first). Built
    from the first batch (about three calls' time: two warm-ups and the recording).
    """

    @torch.no_grad()
    def __init__(
        self, fn: Callable[[Tensor, Tensor | None], Tensor], x: Tensor, context: Tensor | None = None, warmup: int = 2
    ) -> None:
        if x.device.type != "cuda":
            raise ValueError(f"CUDA graphs need tensors on a CUDA device; these are on {x.device}")
        self.x = x.clone()
        self.context = None if context is None else context.clone()
        self.graph, self.out = record_graph(lambda: fn(self.x, self.context), x.device, warmup)

    @classmethod
    def or_none(
        cls, fn: Callable[[Tensor, Tensor | None], Tensor], x: Tensor, context: Tensor | None = None
    ) -> GraphedBatches | None:
        """The recorded batches, or None where ``fn`` cannot be recorded (a family whose
        computation waits for the host, say): the caller then runs ``fn`` as it is."""
        try:
            return cls(fn, x, context)
        except RuntimeError:
            return None

    @torch.no_grad()
    def __call__(self, x: Tensor, context: Tensor | None = None) -> Tensor:
        if x.shape != self.x.shape or (context is None) != (self.context is None):
            raise ValueError(f"a graph recorded for batches of shape {tuple(self.x.shape)} got {tuple(x.shape)}")
        self.x.copy_(x)
        if context is not None and self.context is not None:  # both or neither (checked above)
            self.context.copy_(context)
        self.graph.replay()
        return self.out
