"""Sampling on a GPU replayed from a CUDA graph: the one-pass sampler without its launch cost.

The one-pass sampler (:class:`made.model.sampling.IncrementalSampler`) takes D small steps
of a few kernels each. On a GPU each kernel is launched from Python, and for small
batches the launches, not the arithmetic, set the time. A :class:`GraphedSampler`
records the D steps once for a fixed number of samples and replays them as one CUDA
graph, so a draw costs the kernels alone.

Its scope is explicit: the object owns the recorded graph and the weights it read,
which are the model's weights and masks when it was built. Drawing after the model's
weights changed is refused (build a new sampler): an in-place edit, or a backward pass into
them (which an optimizer step follows). Build it after the optimizer step, not between a
backward pass and its step. Draws equal :meth:`MADE.sample`'s
for the same generator state, since the noise is drawn the same way and fed in.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..fast.dispatch import ParameterWatch
from ..fast.replay import record_graph
from ..model.made import MADE
from ..model.network import Masks
from ..model.sampling import IncrementalSampler

__all__ = ["GraphedSampler"]


class GraphedSampler:
    """``num_samples`` draws at a time from a CUDA model, replayed from a CUDA graph.

    ``masks`` default to the model's current masks; ``context_size`` rows of context
    are passed to every :meth:`sample` call when the model is conditional. Building
    records the sampler once (after two warm-up runs), about three eager draws' time.
    """

    def __init__(self, model: MADE, num_samples: int, masks: Masks | None = None, warmup: int = 2) -> None:
        if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
        device = model.output.weight.device
        if device.type != "cuda":
            raise ValueError(f"CUDA graphs need a model on a CUDA device; this one is on {device}")
        self.model, self.num_samples, self.device = model, num_samples, device
        self.dtype = model.output.weight.dtype
        self.sampler = IncrementalSampler(model, masks)
        self.watch = ParameterWatch()
        self.weights = self.watch.key(*model.parameters())
        self.uniform = torch.rand(num_samples, model.num_inputs, device=device, dtype=self.dtype)
        self.context = (
            torch.zeros(num_samples, model.context_size, device=device, dtype=self.dtype)
            if model.context_size
            else None
        )
        with torch.no_grad():
            draw = lambda: self.sampler.sample(self.uniform, self.context)  # noqa: E731
            self.graph, self.drawn = record_graph(draw, device, warmup)

    @torch.no_grad()
    def sample(self, context: Tensor | None = None, generator: torch.Generator | None = None) -> Tensor:
        """``[num_samples, D]`` new draws (a fresh tensor), as :meth:`MADE.sample` gives them."""
        if self.watch.key(*self.model.parameters()) != self.weights:
            raise ValueError("the model's weights changed since this GraphedSampler was built; build a new one")
        if (context is None) != (self.context is None):
            raise ValueError("pass a context exactly when the model is conditional")
        if context is not None and self.context is not None:  # both or neither (checked above)
            self.model.check_input(
                torch.zeros(self.num_samples, self.model.num_inputs, device=self.device, dtype=self.dtype), context
            )
            self.context.copy_(context)
        noise = torch.rand(
            self.num_samples, self.model.num_inputs, generator=generator, device=self.device, dtype=self.dtype
        )
        self.uniform.copy_(noise)
        self.graph.replay()
        return self.drawn.clone()
