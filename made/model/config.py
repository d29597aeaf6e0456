r"""The settings of :class:`~made.MADE`, described once: :class:`MADEConfig`.

Each field says its type and default, the values it takes, the made version that added it with the value
that rebuilds a model saved before, and (for those ``made train`` sets) its option. The constructor,
model files (:mod:`made.io.checkpoint`), ``args.json`` and ``made train``'s options (:mod:`made.config`)
all derive from it.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal, get_args

from ..families import Family
from .layers import ACTIVATIONS
from .masks import DegreeRule
from .network import BLOCK_TYPES
from .settings import Values, check_settings, integers, one_of, reals, setting

__all__ = ["MADEConfig", "Resample", "Init", "MAX_POOL", "MAX_ENSEMBLE", "MAX_SEED"]

Resample = Literal["full", "ordering", "connectivity"]
Init = Literal["default", "orthogonal"]

MAX_POOL = 1_000_000  # largest finite mask pool; beyond it use "unlimited"
MAX_ENSEMBLE = 100_000  # masks an ensemble may average: beyond it one evaluation runs for days
MAX_SEED = 2**63 - 1  # the seed travels in an int64 buffer

POOL_SIZES = Values(
    lambda v: v == "unlimited" or integers(1, MAX_POOL).allows(v),
    f"an integer from 1 to {MAX_POOL:,} or 'unlimited'",
    lambda text: text if text == "unlimited" else int(text),
)


@dataclass(frozen=True)
class MADEConfig:
    """The settings of a MADE, checked when built; ``MADE(**config.to_dict())`` rebuilds its architecture.

    Arguments:
        num_inputs: D, the number of dimensions.
        hidden_sizes: widths of the hidden layers; ``[]`` gives a masked logistic
            regression (with ``direct=True``) or a product of marginals.
        family: output family: ``"bernoulli"``, ``"categorical"``, ``"gaussian"``,
            ``"mog"``, a list of column dicts (a mixed model, see
            :class:`~made.families.Mixed`), a family's config dict, or a
            :class:`~made.families.Family`.
        num_masks: size K of the mask pool cycled during training (one mask per
            minibatch), or ``"unlimited"`` for a fresh mask every minibatch.
        ordering: ``"natural"``, ``"random"`` (drawn from ``seed``) or a permutation;
            used as is when the pool does not resample orderings.
        direct: add the direct input-to-output connection (eq. 11).
        seed: every random choice of connectivity derives from it.
        activation: ``"relu"``, ``"tanh"`` or ``"softplus"``.
        resample: what the pool resamples: ``"full"`` (ordering and connectivity),
            ``"ordering"`` or ``"connectivity"``.
        degrees: hidden-degree rule, ``"random"`` (the paper) or ``"even"``.
        conditioning: add the connectivity-conditioning weights (eq. 14).
        context_size: width of an optional context vector seen by every unit
            (degree 0: every layer keeps a unit that sees only the context, so even
            the first conditional depends on it).
        init: ``"default"`` (PyTorch's ``nn.Linear`` initialization) or
            ``"orthogonal"`` (semi-orthogonal weights and zero biases, as in the
            authors' code and their README commands).
        categories: categories per dimension (or one count for all) of ``"categorical"``.
        components: mixture components of ``"mog"``.
        sorted_degrees: keep each layer's degrees in increasing order when they are not
            redrawn per mask. Units are exchangeable, so this is the same model, and its
            masks are then staircases in storage order (fast block products). ``False``
            rebuilds models saved by made 0.1, which drew them unsorted.
        blocks: block types (registered in :mod:`made.model.network`) after the last hidden
            layer, e.g. ``["residual"] * 2``: residual blocks ``h + W2 act(W1 h)`` whose
            two layers share that layer's degrees.
        dropout: dropout probability on every hidden unit's activation (training only).
    """

    num_inputs: int = setting(values=integers(1))
    hidden_sizes: Sequence[int] = setting(
        (500,),
        "hidden layer widths; none for no hidden layer (default: 500)",
        values=integers(1),
        kind="list",
        option="hidden",
        metavar="H",
        group="model",
    )
    family: str | dict | Sequence[dict] | Family = setting("bernoulli")
    num_masks: int | Literal["unlimited"] = setting(
        1,
        "size of the mask pool cycled during training, one mask per minibatch; "
        "'unlimited' draws a fresh mask each minibatch (default: 1)",
        values=POOL_SIZES,
        option="masks",
        metavar="K|unlimited",
        group="model",
    )
    ordering: str | Sequence[int] = setting(
        "natural", "input ordering of a single mask (default: natural)", choices=("natural", "random"), group="model"
    )
    direct: bool = setting(
        False,
        "direct input-to-output connection, as in all the paper's experiments (default: off)",
        kind="switch",
        group="model",
    )
    seed: int = setting(
        0, "seed of weights, masks and minibatch order (default: 0)", values=integers(0, MAX_SEED), group="model"
    )
    activation: str = setting("relu", "hidden activation (default: relu)", values=one_of(ACTIVATIONS), group="model")
    resample: Resample = setting(
        "full", "what a pool of masks resamples (default: full)", values=one_of(get_args(Resample)), group="model"
    )
    degrees: DegreeRule = setting(
        "random",
        "hidden degrees: drawn uniformly as in the paper, or evenly spread (default: random)",
        values=one_of(get_args(DegreeRule)),
        group="model",
    )
    conditioning: bool = setting(False, "add the paper's connectivity-conditioning weights", kind="flag", group="model")
    context_size: int = setting(0, values=integers(0))
    init: Init = setting(
        "default",
        "weight initialization: PyTorch's, or semi-orthogonal with zero biases as in the "
        "authors' code (default: default)",
        values=one_of(get_args(Init)),
        group="model",
    )
    categories: int | Sequence[int] | None = setting(None)
    components: int | None = setting(None)
    # made 0.1 drew a layer's degrees unsorted
    sorted_degrees: bool = setting(True, added_in="0.2", before=False)
    blocks: Sequence[str] = setting(
        (),
        "blocks after the last hidden layer, e.g. 'residual residual': residual blocks "
        "h + W2 act(W1 h) whose layers share its degrees (default: none)",
        values=one_of(BLOCK_TYPES),
        kind="list",
        added_in="0.3",
        before=[],
        metavar="TYPE",
        group="model",
    )
    dropout: float = setting(
        0.0,
        "dropout probability of every hidden unit, in training only (default: 0)",
        values=reals(0.0, 1.0, high_open=True),
        added_in="0.3",
        before=0.0,
        metavar="P",
        group="model",
    )

    def __post_init__(self) -> None:
        check_settings(self)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON keeps them (tuples as lists), one key per field in order."""
        return {spec.name: _json(getattr(self, spec.name)) for spec in fields(self)}

    def __call__(self) -> dict[str, Any]:
        """``model.config()``, as made 0.2 spelled :meth:`to_dict` when ``config`` was a method."""
        warnings.warn(
            "model.config() is deprecated: model.config is a MADEConfig; use model.config.to_dict()",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.to_dict()


def _json(value: Any) -> Any:
    """``value`` with its tuples (at any depth) as lists."""
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value
