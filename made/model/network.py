r"""The network of a MADE, described once.

A network is a list of *groups* of units. Group 0 holds the inputs (the encoded
data, then the context); the last group holds the outputs (the parameters of every
conditional). Every other group is a layer of hidden units whose value is

    value = dropout(act(sum over its links of (W ⊙ M) source + b)) [+ value of a residual group]

where each *link* is a masked linear map (:class:`~made.model.layers.MaskedLinear`) from an
earlier group. A group's degrees are drawn (a plain hidden layer), shared with an
earlier group (the inner layers of a residual block), or fixed by the ordering
(inputs and outputs). Masks follow from the degrees alone: ``>=`` into hidden
units, ``>`` into outputs. So a new kind of block is a new way of listing groups
and links (one function below), and everything that reads a network (the forward
pass, frozen evaluation, the one-pass sampler, the weight count, path counts and
the mask picture) handles it without code of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from .masks import hidden_mask, input_degrees, output_mask

__all__ = ["Link", "Group", "Network", "Masks", "build_network", "register_block", "BLOCK_TYPES"]

INPUTS, DRAW, OUTPUTS = "inputs", "draw", "outputs"


@dataclass(frozen=True)
class Link:
    """A masked linear map from group ``source`` into the group that lists it.

    ``module`` is the dotted name of its layer in the model (the ``state_dict`` prefix);
    ``bias`` whether that layer has a bias.
    """

    source: int
    module: str
    bias: bool = True


@dataclass(frozen=True)
class Group:
    """A group of units: how many, where their degrees come from, and how its value is formed.

    ``degrees`` is ``"inputs"``, ``"draw"`` (a fresh draw per mask, on ``[low, D-1]``),
    ``"outputs"``, or the index of an earlier group whose degrees it shares.
    ``residual`` is the index of an earlier group with the same degrees whose value is
    added after the activation; ``activation`` and ``dropout`` apply to the linked sum.
    """

    width: int
    degrees: str | int
    links: tuple[Link, ...] = ()
    activation: bool = True
    dropout: float = 0.0
    residual: int | None = None


@dataclass(frozen=True, eq=False)
class Masks:
    """One mask of the model, as a value: the ordering, each group's degrees and each link's mask.

    Passing it to :meth:`MADE.forward` evaluates the network under it without changing
    the model, so concurrent callers never see each other's masks.
    """

    ordering: Tensor
    degrees: tuple[Tensor, ...]
    links: dict[str, Tensor]

    def to(self, device: torch.device | str | None) -> Masks:
        """The same masks on ``device`` (degrees stay on the CPU)."""
        return Masks(self.ordering, self.degrees, {k: m.to(device) for k, m in self.links.items()})


@dataclass(frozen=True)
class Network:
    """The groups of a MADE, inputs first and outputs last (see the module's docstring)."""

    groups: tuple[Group, ...]

    @property
    def drawn(self) -> list[int]:
        """Indices of the groups whose degrees are drawn for each mask, in drawing order."""
        return [i for i, g in enumerate(self.groups) if g.degrees == DRAW]

    def links(self) -> list[tuple[int, Link]]:
        """Every link with the index of the group it feeds, in evaluation order."""
        return [(i, link) for i, group in enumerate(self.groups) for link in group.links]

    def num_weights(self) -> int:
        """Number of masked weights: the size of a model before it is built."""
        return sum(self.groups[link.source].width * self.groups[i].width for i, link in self.links())

    def degrees(self, inputs: Tensor, outputs: Tensor, drawn: Sequence[Tensor]) -> tuple[Tensor, ...]:
        """Every group's degrees from the input and output units' and the drawn ones."""
        result: list[Tensor] = []
        draws = iter(drawn)
        for group in self.groups:
            if isinstance(group.degrees, int):
                result.append(result[group.degrees])
            elif group.degrees == DRAW:
                result.append(next(draws))
            else:
                result.append({INPUTS: inputs, OUTPUTS: outputs}[group.degrees])
        return tuple(result)

    def masks(self, degrees: Sequence[Tensor]) -> dict[str, Tensor]:
        """The mask of every link: ``>=`` into hidden units, ``>`` into the outputs."""
        last = len(self.groups) - 1
        rule = {True: output_mask, False: hidden_mask}
        return {link.module: rule[i == last](degrees[i], degrees[link.source]) for i, link in self.links()}

    def path_counts(self, masks: dict[str, Tensor]) -> Tensor:
        """Number of paths from each input unit to each output unit, ``[outputs, inputs]``.

        Each group's count is the sum over its links of ``mask @ count(source)``, plus
        its residual group's count (the identity path). Float64 is exact below 2^53.
        """
        counts: list[Tensor] = []
        for index, group in enumerate(self.groups):
            if index == 0:
                counts.append(torch.eye(group.width, dtype=torch.float64))
                continue
            paths = (masks[link.module].double() @ counts[link.source] for link in group.links)
            total = sum(paths, torch.zeros((), dtype=torch.float64))
            if group.residual is not None:
                total = total + counts[group.residual]
            counts.append(total)
        return counts[-1]


BlockBuilder = Callable[[int, Group, str, float], list[Group]]
BLOCK_TYPES: dict[str, BlockBuilder] = {}


def register_block(name: str) -> Callable[[BlockBuilder], BlockBuilder]:
    """Register a block type: ``builder(trunk, trunk_group, prefix, dropout)`` returns the groups it
    appends after group ``trunk`` (the last so far), naming its layers ``prefix.0``, ``prefix.1``, ...

    The block's last group is the new trunk. Blocks keep the trunk's width and degrees
    (groups may share them by index) so that any number of them can follow each other.
    """

    def register(builder: BlockBuilder) -> BlockBuilder:
        BLOCK_TYPES[name] = builder
        return builder

    return register


@register_block("residual")
def residual_block(trunk: int, group: Group, prefix: str, dropout: float) -> list[Group]:
    """``h + W2 dropout(act(W1 h))``: two layers sharing the trunk's degrees, and a skip connection."""
    degrees = group.degrees if isinstance(group.degrees, int) else trunk
    return [
        Group(group.width, degrees, (Link(trunk, f"{prefix}.0"),), dropout=dropout),
        Group(group.width, degrees, (Link(trunk + 1, f"{prefix}.1"),), activation=False, residual=trunk),
    ]


def build_network(
    in_width: int,
    hidden_sizes: Sequence[int],
    out_width: int,
    direct: bool = False,
    blocks: Sequence[str] = (),
    dropout: float = 0.0,
) -> Network:
    """The network of ``MADE``: hidden layers, then blocks, then the outputs.

    Layer l (``hidden.l``) draws its degrees; block b (layers ``blocks.b.*``) is built by
    the registered type ``blocks[b]`` on the last hidden layer's units. The outputs read
    the last group (``output``) and, with ``direct``, the inputs (``direct``).
    """
    groups = [Group(in_width, INPUTS)]
    for index, width in enumerate(hidden_sizes):
        groups.append(Group(int(width), DRAW, (Link(len(groups) - 1, f"hidden.{index}"),), dropout=dropout))
    if blocks and not hidden_sizes:
        raise ValueError("blocks need at least one hidden layer (they work on its units)")
    for index, kind in enumerate(blocks):
        if kind not in BLOCK_TYPES:
            raise ValueError(f"unknown block type {kind!r}; known: {sorted(BLOCK_TYPES)}")
        groups.extend(BLOCK_TYPES[kind](len(groups) - 1, groups[-1], f"blocks.{index}", dropout))
    links = [Link(len(groups) - 1, "output")]
    if direct:
        links.append(Link(0, "direct", bias=False))
    groups.append(Group(out_width, OUTPUTS, tuple(links), activation=False))
    return Network(tuple(groups))


def unit_degrees(
    ordering: Tensor, inputs_per_dim: Sequence[int], params_per_dim: Sequence[int], context_size: int
) -> tuple[Tensor, Tensor]:
    """Degrees of the network's input units (data then context, degree 0) and output units."""
    degrees = input_degrees(ordering)
    context = torch.zeros(context_size, dtype=torch.long)
    return (
        torch.cat([degrees.repeat_interleave(torch.tensor(list(inputs_per_dim))), context]),
        degrees.repeat_interleave(torch.tensor(list(params_per_dim))),
    )
