r"""The mask pool, a part of every MADE (``model.pool``): every mask is a pure function of the model's
seed and a mask seed, and the mask of a training step a pure function of the seed and the step.

DDP needs no broadcast, checkpoints store seeds, ensembles are reproducible, and evaluating another
mask (:meth:`MaskPool.masks`) never changes what another caller of the model sees.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor

from .distribution import as_count
from .masks import DegreeRule, hidden_degrees, make_ordering
from .network import Masks, Network, unit_degrees

if TYPE_CHECKING:
    from .config import Resample
    from .made import MADE

__all__ = [
    "MaskPool",
    "derive_seeds",
    "check_pool_state",
    "check_mask_rules",
    "POOL_STREAM",
    "ENSEMBLE_STREAM",
    "TRAIN_STREAM",
]

# Independent random streams derived from the model's seed.
POOL_STREAM, ENSEMBLE_STREAM, TRAIN_STREAM = 0, 1, 2


def derive_seeds(seed: int, stream: int, count: int, offset: int = 0) -> list[int]:
    """``count`` reproducible 62-bit seeds of one stream of ``seed``; prefixes are stable."""
    state = np.random.SeedSequence([seed, stream, offset]).generate_state(count, dtype=np.uint64)
    return [int(s >> np.uint64(2)) for s in state]


def check_pool_state(module: MADE, state: dict, prefix: str, *_: object) -> None:
    """Refuse a state saved from a model of another seed or pool size, or of other mask rules: its
    pool's masks would silently differ from the ones its weights were trained with."""
    pool = state.get(prefix + "mask_pool")
    if pool is not None and (
        pool.dim() != 1 or pool.numel() != module.mask_pool.numel() or int(pool[0]) != module.seed
    ):
        raise ValueError(
            f"this state holds a mask pool of seed {int(pool.flatten()[0]) if pool.numel() else None} and "
            f"{max(pool.numel() - 1, 0)} masks; the model has seed {module.seed} and {module.mask_pool.numel() - 1}: "
            "build the model with the same seed and num_masks"
        )
    check_mask_rules(module, state, prefix)


def check_mask_rules(module: MADE, state: dict, prefix: str = "") -> None:
    """Refuse a state whose current mask (its ordering and mask buffers) is not the one ``module`` draws
    from the state's own mask seed.

    The masks are drawn by rules the state does not name (ordering, degrees, resample, sorted_degrees);
    a state of other rules loads into tensors of the same shapes, and the model would then evaluate
    masks its weights were never trained with. Its current mask is a draw of its rules: where this
    model draws another from the same seed, the rules differ (or the state was edited).
    """
    seed = state.get(prefix + "mask_seed")
    if not isinstance(seed, Tensor) or seed.numel() != 1 or seed.dtype.is_floating_point:
        return  # no mask seed (or a malformed one, which torch's own shape check names)
    drawn = module.pool.masks(int(seed), device="cpu")
    stored = {"ordering": drawn.ordering, **{f"{name}.mask": mask for name, mask in drawn.links.items()}}
    for key, expected in stored.items():
        value = state.get(prefix + key)
        if isinstance(value, Tensor) and value.shape == expected.shape and not torch.equal(value.cpu(), expected):
            raise ValueError(
                f"{prefix}{key} does not match the masks of the stored seed {int(seed)} under this model's mask "
                f"settings (ordering={module.ordering_spec!r:.40}, degrees={module.degree_rule!r}, "
                f"resample={module.resample!r}, sorted_degrees={module.sorted_degrees}): the state comes from a "
                "model with other mask settings, or was edited; build the model with the settings it was trained with"
            )


@dataclass(frozen=True, eq=False)
class MaskPool:
    """Which masks a MADE's pool holds, how each is drawn, and which one each training step uses.

    A value built from the model's settings: ``size`` is ``num_masks`` (``"unlimited"``: a fresh
    draw every step), ``seeds`` the seeds of the pool's masks (one for ``"unlimited"``, whose masks
    derive from ``seed``), ``ordering`` the ordering argument, ``inputs_per_dim`` and
    ``params_per_dim`` the family's units per dimension. It changes nothing: the model sets the
    mask it returns (:meth:`MADE.set_mask_seed`).
    """

    seed: int
    num_inputs: int
    ordering: str | list[int]
    size: int | Literal["unlimited"]
    resample: Resample
    degree_rule: DegreeRule
    sorted_degrees: bool
    context_size: int
    network: Network
    inputs_per_dim: tuple[int, ...]
    params_per_dim: tuple[int, ...]
    seeds: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.seeds:
            count = 1 if self.size == "unlimited" else self.size
            object.__setattr__(self, "seeds", tuple(derive_seeds(self.seed, POOL_STREAM, count)))

    def with_seeds(self, seeds: Sequence[int]) -> MaskPool:
        """The same pool with other mask seeds (a checkpoint may store other ones than the seed derives)."""
        return replace(self, seeds=tuple(int(s) for s in seeds))

    @property
    def resamples(self) -> bool:
        """Whether connectivity changes between minibatches (a pool of more than one mask)."""
        return self.size != 1

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
        drawn = make_ordering(self.num_inputs, self.ordering, base)
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
            degrees = hidden_degrees(width, self.num_inputs, low, self.degree_rule, gen)
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
        return unit_degrees(ordering, self.inputs_per_dim, self.params_per_dim, self.context_size)

    def degrees(self, mask_seed: int, ordering: Tensor | None = None) -> tuple[Tensor, tuple[Tensor, ...]]:
        """The ordering and every group's degrees of the mask of ``mask_seed``."""
        ordering, drawn = self.connectivity(mask_seed, ordering)
        return ordering, self.network.degrees(*self.unit_degrees(ordering), drawn)

    def masks(self, mask_seed: int, ordering: Tensor | None = None, device: torch.device | str | None = None) -> Masks:
        """The mask drawn from ``mask_seed`` as a value (see :class:`~made.model.network.Masks`).

        A pure function of the seed (and ``ordering``, which replaces the seed's but keeps
        its hidden degrees). Degrees are drawn on the CPU, masks compared on ``device`` so
        large masks never cross the bus.
        """
        ordering, degrees = self.degrees(mask_seed, ordering)
        return Masks(ordering, degrees, self.network.masks([d.to(device) for d in degrees]))

    def seed_of(self, index: int) -> int:
        """The mask seed of mask ``index`` of the pool (cycling through a finite pool)."""
        if self.size == "unlimited":
            return self.ensemble_seeds(index + 1)[index]
        return self.seeds[index % self.size]

    def training_seed(self, step: int) -> int | None:
        """The mask seed of minibatch ``step``: the pool's cycle, a fresh draw, or None (one fixed mask)."""
        if self.size == "unlimited":
            return derive_seeds(self.seed, TRAIN_STREAM, 1, offset=step)[0]
        return self.seed_of(step) if self.size > 1 else None

    def ensemble_seeds(self, k: int) -> list[int]:
        """Seeds of the k masks an ensemble averages: the pool's first k, or k fixed draws."""
        k = as_count(k, "ensemble (a number of masks)")
        if self.size == "unlimited":
            return derive_seeds(self.seed, ENSEMBLE_STREAM, k)
        if k > self.size:
            raise ValueError(f"ensemble of {k} masks asked, but the pool has only {self.size}")
        return list(self.seeds[:k])
