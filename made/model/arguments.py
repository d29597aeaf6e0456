r"""The values each keyword of :class:`~made.MADE` may take, said once.

The constructor refuses any other value in one line naming the keyword
(:func:`check_model_arguments`), and model files are checked against the same
table (:mod:`made.model.settings`), so a model that could be built can always be
loaded again. The table also says which made version added a keyword and the
value that rebuilds a model saved before it.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from .layers import ACTIVATIONS
from .masks import DegreeRule
from .network import BLOCK_TYPES

__all__ = [
    "ModelArgument",
    "MODEL_ARGUMENTS",
    "MAX_POOL",
    "MAX_ENSEMBLE",
    "MAX_SEED",
    "Resample",
    "Init",
    "check_model_arguments",
]

Resample = Literal["full", "ordering", "connectivity"]
Init = Literal["default", "orthogonal"]

MAX_POOL = 1_000_000  # largest finite mask pool; beyond it use "unlimited"
MAX_ENSEMBLE = 100_000  # masks an ensemble may average: beyond it one evaluation runs for days
MAX_SEED = 2**63 - 1  # the seed travels in an int64 buffer


def _integer(value: Any) -> bool:
    """An integer (numpy's included), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _real(value: Any) -> bool:
    """A real number (numpy's included), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass(frozen=True)
class ModelArgument:
    """A keyword of ``MADE``: ``allowed`` says which values it takes (None: any its type allows) and
    ``expects`` says them in words (or gives the words when asked: registries grow); ``added_in`` is the
    made version that added it, and ``before`` the value that rebuilds a model saved by an older version
    (whose config lacks the keyword)."""

    allowed: Callable[[Any], bool] | None = None
    expects: str | Callable[[], str] = ""
    added_in: str | None = None
    before: Any = None


def _choice(kind: Any) -> ModelArgument:
    """A keyword that takes one of a ``Literal``'s values: the type says them, the table repeats none."""
    values = get_args(kind)
    return ModelArgument(lambda v: v in values, ", ".join(map(repr, values[:-1])) + f" or {values[-1]!r}")


MODEL_ARGUMENTS: dict[str, ModelArgument] = {
    "num_inputs": ModelArgument(lambda v: _integer(v) and v >= 1, "an integer of at least 1"),
    "hidden_sizes": ModelArgument(lambda v: all(_integer(h) and h >= 1 for h in v), "positive integers"),
    "family": ModelArgument(),
    "num_masks": ModelArgument(
        lambda v: v == "unlimited" or (_integer(v) and 1 <= v <= MAX_POOL),
        f"an integer from 1 to {MAX_POOL:,} or 'unlimited'",
    ),
    "ordering": ModelArgument(),
    "direct": ModelArgument(),
    "seed": ModelArgument(lambda v: _integer(v) and 0 <= v <= MAX_SEED, "an integer from 0 to 2**63 - 1"),
    "activation": ModelArgument(lambda v: v in ACTIVATIONS, f"one of {sorted(ACTIVATIONS)}"),
    "resample": _choice(Resample),
    "degrees": _choice(DegreeRule),
    "conditioning": ModelArgument(),
    "context_size": ModelArgument(lambda v: _integer(v) and v >= 0, "an integer of at least 0"),
    "init": _choice(Init),
    "categories": ModelArgument(),
    "components": ModelArgument(),
    # made 0.1 drew a layer's degrees unsorted
    "sorted_degrees": ModelArgument(added_in="0.2", before=False),
    "blocks": ModelArgument(
        lambda v: all(b in BLOCK_TYPES for b in v),
        lambda: f"block types of {sorted(BLOCK_TYPES)}",
        added_in="0.3",
        before=[],
    ),
    "dropout": ModelArgument(lambda v: _real(v) and 0 <= v < 1, "a number in [0, 1)", added_in="0.3", before=0.0),
}


def check_model_arguments(values: Mapping[str, Any]) -> None:
    """Refuse a value outside its keyword's allowed ones, in one line naming the keyword."""
    for name, value in values.items():
        allowed = MODEL_ARGUMENTS[name].allowed
        if allowed is not None and not _holds(allowed, value):
            expects = MODEL_ARGUMENTS[name].expects
            raise ValueError(f"{name} must be {expects() if callable(expects) else expects}, got {value!r:.80}")


def _holds(allowed: Callable[[Any], bool], value: Any) -> bool:
    """Whether ``value`` is allowed; a value of another type (which the test cannot compare) is not."""
    try:
        return bool(allowed(value))
    except (TypeError, ValueError):
        return False
