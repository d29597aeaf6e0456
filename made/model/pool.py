r"""The mask pool: every mask is a pure function of the model's seed and a mask seed.

DDP needs no broadcast, checkpoints store seeds, ensembles are reproducible, and evaluating another
mask (:meth:`MaskPool.masks`) never changes what another caller of the model sees.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor

from .masks import DegreeRule, hidden_degrees, make_ordering
from .network import Masks, Network, unit_degrees

if TYPE_CHECKING:
    from ..families import Family
    from .layers import MaskedLinear
    from .made import MADE

__all__ = ["MaskPool", "derive_seeds", "check_pool_state", "POOL_STREAM", "ENSEMBLE_STREAM", "TRAIN_STREAM"]

# Independent random streams derived from the model's seed.
POOL_STREAM, ENSEMBLE_STREAM, TRAIN_STREAM = 0, 1, 2


def derive_seeds(seed: int, stream: int, count: int, offset: int = 0) -> list[int]:
    """``count`` reproducible 62-bit seeds of one stream of ``seed``; prefixes are stable."""
    state = np.random.SeedSequence([seed, stream, offset]).generate_state(count, dtype=np.uint64)
    return [int(s >> np.uint64(2)) for s in state]


def check_pool_state(module: MADE, state: dict, prefix: str, *_: object) -> None:
    """Refuse a state saved from a model of another seed or pool size: its pool's masks would silently
    differ; adopt its pool seeds (a checkpoint may have stored other ones) by resizing the buffer."""
    pool = state.get(prefix + "mask_pool")
    if pool is None:
        return
    if pool.dim() != 1 or pool.numel() != module.mask_pool.numel() or int(pool[0]) != module.seed:
        raise ValueError(
            f"this state holds a mask pool of seed {int(pool.flatten()[0]) if pool.numel() else None} and "
            f"{max(pool.numel() - 1, 0)} masks; the model has seed {module.seed} and {module.mask_pool.numel() - 1}: "
            "build the model with the same seed and num_masks"
        )


class MaskPool:
    """The mask methods of :class:`~made.MADE`: which masks its pool holds, how each is drawn, and which
    one the model uses.

    A mixin: it reads the model's ``seed``, ``num_inputs``, ``ordering_spec``, ``num_masks``, ``resample``,
    ``degree_rule``, ``sorted_degrees``, ``context_size``, ``family``, ``network`` and the buffers
    ``mask_pool``, ``mask_seed`` and ``ordering``, and sets masks with ``set_mask_seed``.
    """

    # What the mixin reads from the model (set by MADE.__init__), declared for type checkers.
    seed: int
    num_inputs: int
    ordering_spec: str | list[int]
    num_masks: int | Literal["unlimited"]
    resample: str
    degree_rule: DegreeRule
    sorted_degrees: bool
    context_size: int
    family: Family
    network: Network
    output: MaskedLinear
    mask_pool: Tensor
    mask_seed: Tensor
    ordering: Tensor

    if TYPE_CHECKING:

        def set_mask_seed(self, mask_seed: int, ordering: Tensor | None = None) -> None: ...

    @property
    def mask_seeds(self) -> list[int]:
        """Seeds of the pool's masks (one for ``"unlimited"``, whose masks derive from ``seed``)."""
        return self.mask_pool[1:].tolist()

    @mask_seeds.setter
    def mask_seeds(self, seeds: Sequence[int]) -> None:
        """Replace the pool's seeds (a checkpoint may store other ones than the seed derives)."""
        self.mask_pool = torch.tensor([self.seed, *seeds], device=self.mask_pool.device)

    @property
    def resamples(self) -> bool:
        """Whether connectivity changes between minibatches (a pool of more than one mask)."""
        return self.num_masks != 1

    @property
    def reorders(self) -> bool:
        """Whether training resampled orderings, so the weights serve any ordering (order-agnostic)."""
        return self.resamples and self.resample in ("full", "ordering")

    def connectivity(self, mask_seed: int, ordering: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
        """Ordering and drawn hidden degrees (one tensor per drawn layer) of the mask of ``mask_seed``.

        The model's own ordering and degrees come from ``seed`` (degrees sorted within
        each layer); a resampling pool replaces the ordering, the degrees or both with
        draws from ``mask_seed`` (unsorted, as in the paper: a unit's degree is drawn
        afresh for every mask).
        A given ``ordering`` replaces the drawn one and leaves the degrees as drawn.
        """
        base = torch.Generator().manual_seed(self.seed)
        drawn = make_ordering(self.num_inputs, self.ordering_spec, base)
        draw = torch.Generator().manual_seed(mask_seed)
        if self.reorders:
            drawn = torch.randperm(self.num_inputs, generator=draw)
        ordering = drawn if ordering is None else make_ordering(self.num_inputs, ordering)
        redrawn = self.resamples and self.resample in ("full", "connectivity")
        gen = draw if redrawn else base
        low = 0 if self.context_size else 1
        layers = []
        for index in self.network.drawn:
            width = self.network.groups[index].width
            degrees = hidden_degrees(width, self.num_inputs, low, self.degree_rule, gen, warn_narrow=False)
            if not redrawn and self.sorted_degrees:
                # Units are exchangeable, so a fixed draw may as well be sorted: the masks are then
                # staircases in storage order and the block products need no gathers (made.fast.blocks).
                degrees = degrees.sort().values
            if self.context_size:
                degrees[0] = 0  # a context-only path to the first conditional, whatever the draw
            layers.append(degrees)
            low = int(degrees.min())
        return ordering, layers

    def unit_degrees(self, ordering: Tensor) -> tuple[Tensor, Tensor]:
        """Degrees of the network's input units (data then context) and output units."""
        family = self.family
        return unit_degrees(ordering, family.inputs_per_dim, family.params_per_dim, self.context_size)

    def masks(self, mask_seed: int, ordering: Tensor | None = None, device: torch.device | str | None = None) -> Masks:
        """The mask drawn from ``mask_seed`` as a value (see :class:`~made.model.network.Masks`).

        A pure function of the seed (and ``ordering``, which replaces the seed's but keeps
        its hidden degrees); the model is unchanged. Degrees are drawn on the CPU, masks
        compared on ``device`` (the model's by default) so large masks never cross the bus.
        """
        ordering, drawn = self.connectivity(mask_seed, ordering)
        device = self.output.mask.device if device is None else device
        degrees = self.network.degrees(*self.unit_degrees(ordering), drawn)
        return Masks(ordering, degrees, self.network.masks([d.to(device) for d in degrees]))

    @contextmanager
    def using_mask(self, mask_seed: int, ordering: Tensor | None = None) -> Iterator[None]:
        """Make the mask of ``mask_seed`` the model's own inside a ``with`` block, then restore it.

        This changes the model for every caller; :meth:`masks` gives a mask as a value instead.
        """
        current_seed, current_ordering = int(self.mask_seed), self.ordering.cpu().clone()
        self.set_mask_seed(mask_seed, ordering)
        try:
            yield
        finally:
            self.set_mask_seed(current_seed, current_ordering)

    def set_mask(self, index: int) -> None:
        """Use mask ``index`` of the pool."""
        if self.num_masks == "unlimited":
            self.set_mask_seed(self.ensemble_seeds(index + 1)[index])
        else:
            self.set_mask_seed(self.mask_seeds[index % self.num_masks])

    def mask_for_step(self, step: int) -> None:
        """Select the training mask of minibatch ``step``: the pool's cycle, or a fresh draw."""
        if self.num_masks == "unlimited":
            self.set_mask_seed(derive_seeds(self.seed, TRAIN_STREAM, 1, offset=step)[0])
        elif self.num_masks > 1:
            self.set_mask(step)

    def ensemble_seeds(self, k: int) -> list[int]:
        """Seeds of the k masks an ensemble averages: the pool's first k, or k fixed draws."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ValueError(f"an ensemble needs a positive number of masks, got {k!r}")
        if self.num_masks == "unlimited":
            return derive_seeds(self.seed, ENSEMBLE_STREAM, k)
        if k > self.num_masks:
            raise ValueError(f"ensemble of {k} masks asked, but the pool has only {self.num_masks}")
        return self.mask_seeds[:k]
