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
from typing import TYPE_CHECKING, cast

import torch
from torch import Tensor

from ..families import Family
from .layers import ACTIVATIONS, MaskedLinear
from .network import Masks

if TYPE_CHECKING:
    from .made import MADE

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


def _reach(mask: Tensor, degrees_in: Tensor) -> Tensor:
    """Effective degree of each output unit of ``mask``: the largest input degree it connects (0 if none)."""
    return (mask.long() * degrees_in[None, :]).amax(dim=1)


def _offsets(widths: list[int]) -> list[int]:
    return [0, *itertools.accumulate(widths)]


class IncrementalSampler:
    """A mask's weights rearranged for sampling each hidden unit once.

    Works on any network description (:mod:`made.model.network`): every group's units get a
    *ready level*, the last position of the ordering they depend on through the masks
    (inputs: their position; context: 0; other units: the largest level among the units
    their links connect, and their residual unit's). Units are sorted by level, so "the
    units completed now" and "the units still open" are contiguous rows. Activations are
    kept transposed (``[units, N]``). Building one costs about a forward pass;
    :meth:`sample` then takes D small steps.
    """

    @torch.no_grad()
    def __init__(self, model: MADE, masks: Masks | None = None) -> None:
        masks = model.current_masks() if masks is None else masks
        family, network = model.family, model.network
        self.family, self.num_inputs, self.network = family, model.num_inputs, network
        self.activation = ACTIVATIONS[model.activation]
        self.ordering = masks.ordering.tolist()
        device = model.output.weight.device
        in_off, out_off = _offsets(family.inputs_per_dim), _offsets(family.params_per_dim)
        data_width = in_off[-1]
        # Input units in position order (context first, level 0), outputs in position order.
        data_rows = [c for d in self.ordering for c in range(in_off[d], in_off[d + 1])]
        input_order = torch.tensor([*range(data_width, data_width + model.context_size), *data_rows], device=device)
        self.in_rows = torch.tensor(data_rows, device=device)
        output_rows = [c for d in self.ordering for c in range(out_off[d], out_off[d + 1])]
        output_order = torch.tensor(output_rows, device=device)
        self.context_size = model.context_size
        self.in_bounds = _offsets([family.inputs_per_dim[d] for d in self.ordering])
        self.out_bounds = _offsets([family.params_per_dim[d] for d in self.ordering])
        self.positions = torch.tensor(self.ordering, device=device)  # on the device: no copy while drawing
        self.identity_encoding = type(family).encode is Family.encode and set(family.inputs_per_dim) == {1}

        position = torch.empty(self.num_inputs, dtype=torch.long, device=device)
        position[masks.ordering.to(device)] = torch.arange(1, self.num_inputs + 1, device=device)
        input_level = torch.cat(
            [
                position.repeat_interleave(torch.tensor(family.inputs_per_dim, device=device)),
                torch.zeros(model.context_size, dtype=torch.long, device=device),
            ]
        )
        output_position = position.repeat_interleave(torch.tensor(family.params_per_dim, device=device))

        levels, orders = self._levels(masks, input_level, input_order, output_position, output_order)
        # Per group: rows sorted by level, where each level starts, the links' weights in that
        # order, the constant part of the pre-activation and the residual rows to add.
        self.starts = [self._starts(level[order]) for level, order in zip(levels, orders)]
        self.weights: list[list[tuple[int, Tensor]]] = [[] for _ in network.groups]
        self.constants = [torch.zeros(0, device=device)]  # the input group has no pre-activation: an empty one
        self.residual_rows: list[Tensor | None] = [None]
        for index, group in enumerate(network.groups[1:], start=1):
            constant = torch.zeros(group.width, dtype=model.output.weight.dtype, device=device)
            for link in group.links:
                # every link's module is a masked layer; get_submodule is typed as returning any Module
                layer = cast(MaskedLinear, model.get_submodule(link.module))
                weight, bias = layer.effective(masks.links[link.module].to(device))
                weight = weight[orders[index]][:, orders[link.source]].contiguous()
                self.weights[link.source].append((index, weight))
                if bias is not None:
                    constant = constant + bias
            self.constants.append(constant[orders[index]])
            rows = None
            if group.residual is not None:
                inverse = torch.argsort(orders[group.residual])
                rows = inverse[orders[index]]
            self.residual_rows.append(rows)

    def _levels(
        self, masks: Masks, input_level: Tensor, input_order: Tensor, output_position: Tensor, output_order: Tensor
    ) -> tuple[list[Tensor], list[Tensor]]:
        """Every group's ready levels (natural unit order) and the order that sorts its units by them.

        A unit's level is the largest level among the units its links connect (and its
        residual unit's); an output's must be below its position, and outputs are read in
        position order (level: position - 1).
        """
        levels, orders = [input_level], [input_order]
        device = input_level.device
        last = len(self.network.groups) - 1
        for index, group in enumerate(self.network.groups[1:], start=1):
            level = torch.zeros(group.width, dtype=torch.long, device=device)
            for link in group.links:
                level = torch.maximum(level, _reach(masks.links[link.module].to(device), levels[link.source]))
            if group.residual is not None:
                level = torch.maximum(level, levels[group.residual])
            if index == last:
                if bool((level >= output_position).any()):
                    raise ValueError("the model's masks are not autoregressive; cannot sample from them")
                level, order = output_position - 1, output_order
            else:
                order = torch.argsort(level, stable=True)
            levels.append(level)
            orders.append(order)
        return levels, orders

    def _starts(self, sorted_level: Tensor) -> list[int]:
        """``starts[k]`` = number of units whose level is below k, for k = 0..D+1."""
        bounds = torch.arange(self.num_inputs + 2, device=sorted_level.device)
        return torch.searchsorted(sorted_level, bounds).tolist()

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
        order = self.positions
        drawn = x[:, order].T.contiguous()  # [D, N]: row i holds the values at position i
        noise = uniform[:, order].T.contiguous()
        # Input units in level order (context, then encoded data by position), transposed.
        inputs = x.new_zeros(self.context_size + self.in_bounds[-1], n)
        if context is not None:
            inputs[: self.context_size] = context.to(dtype).T
        data = inputs[self.context_size :]
        if num_given:
            encoded = drawn if self.identity_encoding else self.family.encode(x)[:, self.in_rows].T
            data[: self.in_bounds[num_given]] = encoded[: self.in_bounds[num_given]]
        pre = [c[:, None].expand(-1, n).clone() for c in self.constants]
        values = [inputs, *pre[1:-1]]  # hidden values are written over their pre-activations
        self._complete(pre, values, 0, num_given)
        out = pre[-1]
        for position in range(num_given, self.num_inputs):
            d = self.ordering[position]
            o0, o1 = self.out_bounds[position], self.out_bounds[position + 1]
            drawn[position] = self.family.sample_dim(out[o0:o1].T, noise[position], d)
            r0, r1 = self.in_bounds[position], self.in_bounds[position + 1]
            if self.identity_encoding:
                data[r0:r1] = drawn[position]
            else:
                x[:, d] = drawn[position]
                data[r0:r1] = self.family.encode(x)[:, self.in_rows[r0:r1]].T
            if position + 1 < self.num_inputs:
                self._complete(pre, values, position + 1, position + 1)
        x[:, order] = drawn.T
        return x

    def _complete(self, pre: list[Tensor], values: list[Tensor], low: int, high: int) -> None:
        """Finish every unit whose level is in [low, high] and add it into the units it feeds."""
        last = len(values)
        for index, starts in enumerate(self.starts[:last]):
            s0, s1 = starts[low], starts[high + 1]
            if s1 == s0:
                continue
            if index:
                group = self.network.groups[index]
                h = pre[index][s0:s1]
                if group.activation:
                    h = self.activation(h)
                rows = self.residual_rows[index]
                if group.residual is not None and rows is not None:
                    h = h + values[group.residual][rows[s0:s1]]
                values[index][s0:s1] = h
            new = values[index][s0:s1]
            for target, weight in self.weights[index]:
                # Units finished before this level cannot read the new ones; outputs already drawn are not needed.
                u = self.starts[target][high if target == last else low]
                pre[target][u:].addmm_(weight[u:, s0:s1], new)


@torch.no_grad()
def sample_incremental(
    model: MADE,
    uniform: Tensor,
    context: Tensor | None = None,
    given: Tensor | None = None,
    num_given: int = 0,
    masks: Masks | None = None,
) -> Tensor:
    """Exactly :func:`sample_naive`'s draws (same arguments) with each hidden unit computed once."""
    model.check_input(torch.zeros_like(uniform), context)
    return IncrementalSampler(model, masks).sample(uniform, context, given, num_given)
