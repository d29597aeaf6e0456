r"""Orderings, degrees and mask matrices of MADE: pure functions on tensors.

Every unit carries a *degree*: an input's degree is its 1-based position in the
ordering, a hidden unit's degree ``m^l(k)`` is the number of leading inputs (in
the ordering) it may depend on, and context inputs have degree 0 so they may
reach every unit. Hidden masks connect ``m_out >= m_in``; output masks (and the
direct input-to-output connection) need ``d_out > m_in``. The product of the
masks counts paths from each input to each output; it vanishes on and above the
diagonal read in the ordering, which is the proof that the model is
autoregressive (Germain et al. 2015, eq. 10): :meth:`MADE.check_autoregressive
<made.MADE.check_autoregressive>` counts them (:meth:`made.model.network.Network.path_counts`) and
:func:`check_path_counts` checks them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import Tensor

__all__ = [
    "DegreeRule",
    "make_ordering",
    "input_degrees",
    "hidden_degrees",
    "hidden_mask",
    "output_mask",
    "check_path_counts",
]

DegreeRule = Literal["random", "even"]


def make_ordering(
    num_inputs: int,
    ordering: str | Sequence[int] | Tensor = "natural",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Return the ordering as a permutation: ``ordering[i]`` is the input placed at position i.

    ``"natural"`` is ``0..D-1``, ``"random"`` a permutation drawn from ``generator``,
    and a sequence is checked to be a permutation of ``0..D-1``.
    """
    if num_inputs < 1:
        raise ValueError(f"num_inputs must be at least 1, got {num_inputs}")
    if isinstance(ordering, str):
        if ordering == "natural":
            return torch.arange(num_inputs)
        if ordering == "random":
            return torch.randperm(num_inputs, generator=generator)
        raise ValueError(f"ordering must be 'natural', 'random' or a permutation, got {ordering!r}")
    perm = torch.as_tensor(ordering, dtype=torch.long).flatten()
    if perm.numel() != num_inputs or not torch.equal(perm.sort().values, torch.arange(num_inputs)):
        raise ValueError(f"ordering must be a permutation of 0..{num_inputs - 1}, got {perm.tolist()}")
    return perm.clone()


def input_degrees(ordering: Tensor) -> Tensor:
    """Degree of each input in its natural index: its 1-based position in ``ordering``."""
    degrees = torch.empty_like(ordering)
    degrees[ordering] = torch.arange(1, ordering.numel() + 1)
    return degrees


def hidden_degrees(
    width: int,
    num_inputs: int,
    low: int,
    rule: DegreeRule = "random",
    generator: torch.Generator | None = None,
) -> Tensor:
    """Degrees of one hidden layer, on ``[low, D-1]`` (positions in the ordering).

    ``low`` is the smallest degree of the previous layer (1 for the inputs, 0 with a
    context), so no unit is left without inputs. ``"random"`` draws uniformly as in
    the paper; ``"even"`` spreads the allowed values evenly so none is missing when
    ``width`` is at least the number of values. For D = 1 the only value is 0 and
    the units are constant, which is exactly what a one-dimensional MADE needs.
    """
    if width < 1:
        raise ValueError(f"hidden layer width must be at least 1, got {width}")
    high = max(num_inputs - 1, 0)
    low = min(low, high)
    span = high - low + 1
    if rule == "random":
        return torch.randint(low, high + 1, (width,), generator=generator)
    if rule == "even":
        return low + torch.arange(width) * span // width
    raise ValueError(f"degree rule must be 'random' or 'even', got {rule!r}")


def hidden_mask(degrees_out: Tensor, degrees_in: Tensor) -> Tensor:
    """Boolean mask ``[out, in]`` (the layout of ``nn.Linear.weight``): ``m_out >= m_in``."""
    return degrees_out[:, None] >= degrees_in[None, :]


def output_mask(degrees_out: Tensor, degrees_in: Tensor) -> Tensor:
    """Boolean mask ``[out, in]`` for outputs and the direct connection: ``d_out > m_in``."""
    return degrees_out[:, None] > degrees_in[None, :]


def check_path_counts(counts: Tensor, degrees_in: Tensor, degrees_out: Tensor) -> None:
    """Raise ``ValueError`` if ``counts`` (``[outputs, inputs]``) has a path from an input to an
    output whose degree is not above the input's: read in the ordering, the path counts of an
    autoregressive network are strictly lower triangular."""
    forbidden = degrees_out[:, None] <= degrees_in[None, :]
    leaks = counts[forbidden]
    if leaks.numel() and leaks.abs().max() > 0:
        bad = (counts * forbidden).nonzero()[0].tolist()
        raise ValueError(
            f"masks are not autoregressive: output {bad[0]} (degree {int(degrees_out[bad[0]])}) "
            f"is reached from input {bad[1]} (degree {int(degrees_in[bad[1]])})"
        )
