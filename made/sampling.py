r"""Ancestral sampling from MADE: the D-pass reference and the one-pass incremental sampler.

``sample_naive`` is the reference: D full forward passes, each fixing the next
dimension of the ordering. ``sample_incremental`` returns the same draws from the
same uniform noise for about the cost of one forward pass.

Why it works: a hidden unit's value depends only on the inputs it can reach
through the masks. Give every unit its *effective degree* e, the last position of
the ordering it depends on (inputs: their position; context: 0; a hidden unit:
the largest e among the units its mask row connects, 0 if none). Once the inputs
at positions 1..e are drawn the unit never changes again, so it is computed
exactly once, right after position e is drawn, and its contribution is added to
the pre-activations of the units (and outputs) it feeds. The output of position
i+1 is complete once every unit with e <= i is in. Sorting each layer's units by
e turns "the units completed now" and "the units still open" into contiguous
slices, so each step is a few small matrix products on views.

Pre-activations are summed in another order than a full matrix product does, so
logits may differ from the reference's in the last bits; the draws are equal
unless a uniform falls within that rounding of a threshold (tests use float64).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor

from .families import Family
from .model import ACTIVATIONS, MADE

__all__ = ["sample_naive", "sample_incremental", "IncrementalSampler"]


@torch.no_grad()
def sample_naive(
    model: MADE,
    uniform: Tensor,
    context: Tensor | None = None,
    given: Tensor | None = None,
    num_given: int = 0,
) -> Tensor:
    """Draw ``x`` dimension by dimension in the model's ordering, one forward pass each.

    ``uniform`` (``[N, D]``, on the model's device) is the noise of each draw, so
    the result is a deterministic function of it. The first ``num_given`` positions
    of the ordering are not drawn but copied from ``given`` (``[N, D]``).
    """
    x = torch.zeros_like(uniform) if given is None else given.clone().to(uniform.dtype)
    for d in model.ordering.tolist()[num_given:]:
        params = model(x, context)
        x[:, d] = model.family.sample(params, uniform)[:, d]
    return x


def _offsets(widths: list[int]) -> list[int]:
    return [0, *itertools.accumulate(widths)]


def _reach(mask: Tensor, degrees_in: Tensor) -> Tensor:
    """Effective degree of each output unit of ``mask``: the largest input degree it connects (0 if none)."""
    return (mask.long() * degrees_in[None, :]).amax(dim=1)


class IncrementalSampler:
    """The current mask's weights rearranged for sampling each hidden unit once.

    Everything lives in *position space*: data inputs and outputs follow the
    ordering, hidden units are sorted by effective degree. Activations are kept
    transposed (``[units, N]``) so that the units a step touches are contiguous rows.
    Building one costs about a forward pass; :meth:`sample` then takes D small steps.
    """

    @torch.no_grad()
    def __init__(self, model: MADE) -> None:
        family = model.family
        self.family, self.num_inputs = family, model.num_inputs
        self.activation = ACTIVATIONS[model.activation]
        self.ordering = model.ordering.tolist()
        device = model.output.weight.device
        in_off, out_off = _offsets(family.inputs_per_dim), _offsets(family.params_per_dim)
        data_width = in_off[-1]
        self.in_rows = torch.tensor([c for d in self.ordering for c in range(in_off[d], in_off[d + 1])], device=device)
        out_cols = torch.tensor([c for d in self.ordering for c in range(out_off[d], out_off[d + 1])], device=device)
        self.in_bounds = _offsets([family.inputs_per_dim[d] for d in self.ordering])
        self.out_bounds = _offsets([family.params_per_dim[d] for d in self.ordering])
        self.positions = torch.tensor(self.ordering)
        self.identity_encoding = type(family).encode is Family.encode and set(family.inputs_per_dim) == {1}

        position = torch.empty(self.num_inputs, dtype=torch.long, device=device)
        position[model.ordering] = torch.arange(1, self.num_inputs + 1, device=device)
        column_degree = torch.cat([
            position.repeat_interleave(torch.tensor(family.inputs_per_dim, device=device)),
            torch.zeros(model.context_size, dtype=torch.long, device=device),
        ])

        def split(weight: Tensor) -> tuple[Tensor, Tensor]:
            """Data columns in position order, and the context columns."""
            return weight[:, self.in_rows].contiguous(), weight[:, data_width:].contiguous()

        # Hidden layers: weights [out, in] with rows and columns sorted by effective degree.
        self.weights, self.constants, self.starts, self.context_weight = [], [], [], None
        prev_degree, prev_order = column_degree, None
        for index, layer in enumerate(model.hidden):
            degree = _reach(layer.mask, prev_degree)
            order = torch.argsort(degree, stable=True)
            weight, constant = layer.effective()
            weight = weight[order]
            if index == 0:
                weight, self.context_weight = split(weight)
            else:
                weight = weight[:, prev_order].contiguous()
            self.weights.append(weight)
            self.constants.append(constant[order])
            self.starts.append(self._starts(degree[order]))
            prev_degree, prev_order = degree, order

        # Outputs, in position order: from the last hidden layer, and from the inputs
        # (the direct connection, or the output layer itself when there is no hidden layer).
        out_degree = position.repeat_interleave(torch.tensor(family.params_per_dim, device=device))[out_cols]
        head, out_constant = model.output.effective()
        self.out_constant = out_constant[out_cols]
        from_inputs = [layer for layer in (model.direct, None if model.hidden else model.output) if layer is not None]
        self.head = None
        if model.hidden:
            mask = model.output.mask[out_cols]
            self._check_reach(mask, prev_degree, out_degree)
            self.head = head[out_cols][:, prev_order].contiguous()
        self.skip, self.skip_context = None, None
        if from_inputs:
            for layer in from_inputs:
                self._check_reach(layer.mask[out_cols], column_degree, out_degree)
            total = sum(layer.effective()[0][out_cols] for layer in from_inputs)
            self.skip, self.skip_context = split(total)

    def _starts(self, sorted_degree: Tensor) -> list[int]:
        """``starts[k]`` = number of units with effective degree below k, for k = 0..D+1."""
        bounds = torch.arange(self.num_inputs + 2, device=sorted_degree.device)
        return torch.searchsorted(sorted_degree, bounds).tolist()

    @staticmethod
    def _check_reach(mask: Tensor, degrees_in: Tensor, degrees_out: Tensor) -> None:
        if bool((_reach(mask, degrees_in) >= degrees_out).any()):
            raise ValueError("the model's masks are not autoregressive; cannot sample from them")

    @torch.no_grad()
    def sample(
        self,
        uniform: Tensor,
        context: Tensor | None = None,
        given: Tensor | None = None,
        num_given: int = 0,
    ) -> Tensor:
        """Draws ``[N, D]`` from ``uniform`` (``[N, D]``), equal to :func:`sample_naive`'s."""
        n, dtype = uniform.shape[0], uniform.dtype
        x = torch.zeros_like(uniform) if given is None else given.clone().to(dtype)
        if num_given >= self.num_inputs:
            return x
        order = self.positions.to(x.device)
        drawn = x[:, order].T.contiguous()  # [D, N]: row i holds the values at position i
        noise = uniform[:, order].T.contiguous()
        # Encoded data inputs in position order, transposed; the values themselves when encoding is the identity.
        inputs = drawn if self.identity_encoding else x.new_zeros(self.in_bounds[-1], n)
        if num_given and not self.identity_encoding:
            rows = self.in_rows[: self.in_bounds[num_given]]
            inputs[: len(rows)] = self.family.encode(x)[:, rows].T
        # Pre-activations of every hidden layer and of the outputs, transposed.
        pre = [c[:, None].expand(-1, n).clone() for c in self.constants]
        out = self.out_constant[:, None].expand(-1, n).clone()
        if context is not None:
            context = context.to(dtype)
            if pre:
                pre[0] += self.context_weight @ context.T
            if self.skip_context is not None:
                out += self.skip_context @ context.T
        self._complete(pre, out, inputs, 0, num_given)
        for position in range(num_given, self.num_inputs):
            d = self.ordering[position]
            o0, o1 = self.out_bounds[position], self.out_bounds[position + 1]
            drawn[position] = self.family.sample_dim(out[o0:o1].T, noise[position], d)
            if not self.identity_encoding:
                x[:, d] = drawn[position]
                r0, r1 = self.in_bounds[position], self.in_bounds[position + 1]
                inputs[r0:r1] = self.family.encode(x)[:, self.in_rows[r0:r1]].T
            if position + 1 < self.num_inputs:
                self._complete(pre, out, inputs, position + 1, position + 1)
        x[:, order] = drawn.T
        return x

    def _complete(self, pre: list[Tensor], out: Tensor, inputs: Tensor, low: int, high: int) -> None:
        """Add inputs at positions max(low, 1)..high, then compute every unit whose degree is in [low, high]."""
        r0, r1 = self.in_bounds[max(low, 1) - 1], self.in_bounds[high]
        o = self.out_bounds[high]  # outputs still to draw: positions high+1..D
        if r1 > r0:
            new = inputs[r0:r1]
            if self.weights:
                u = self.starts[0][low]
                pre[0][u:].addmm_(self.weights[0][u:, r0:r1], new)
            if self.skip is not None:
                out[o:].addmm_(self.skip[o:, r0:r1], new)
        for layer, starts in enumerate(self.starts):
            s0, s1 = starts[low], starts[high + 1]
            if s1 == s0:
                continue
            h = self.activation(pre[layer][s0:s1])
            if layer + 1 < len(self.weights):
                u = self.starts[layer + 1][low]
                pre[layer + 1][u:].addmm_(self.weights[layer + 1][u:, s0:s1], h)
            else:
                out[o:].addmm_(self.head[o:, s0:s1], h)


@torch.no_grad()
def sample_incremental(
    model: MADE,
    uniform: Tensor,
    context: Tensor | None = None,
    given: Tensor | None = None,
    num_given: int = 0,
) -> Tensor:
    """Exactly :func:`sample_naive`'s draws (same arguments) with each hidden unit computed once."""
    model._check_input(torch.zeros_like(uniform), context)
    return IncrementalSampler(model).sample(uniform, context, given, num_given)
