r"""What a setting of :class:`~made.MADE` is, said once: its keyword, type and default (MADE's
signature), the values it may take, and the made version that added it with the value that rebuilds a
model saved before.

Model files are checked against it (:func:`made.io.checkpoint.check_model_settings`), older ones are
completed from it (:func:`older_defaults`), and ``made train``'s options take from it the version that
added a model setting (:class:`made.config.ModelSettings`).
"""

from __future__ import annotations

import copy
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .layers import ACTIVATIONS
from .made import MADE
from .network import BLOCK_TYPES

__all__ = ["ModelArgument", "MODEL_ARGUMENTS", "MODEL_HINTS", "MODEL_DEFAULTS", "MODEL_RANGES", "MAX_POOL",
           "MAX_ENSEMBLE", "MAX_SEED", "older_defaults"]

MAX_POOL = 1_000_000  # largest finite mask pool; beyond it use "unlimited"
MAX_ENSEMBLE = 100_000  # masks an ensemble may average: beyond it one evaluation runs for days
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class ModelArgument:
    """A keyword of ``MADE``: ``allowed`` says which values of its type it takes (None: all of them);
    ``added_in`` the made version that added it, and ``before`` the value that rebuilds a model saved by
    an older version (whose config lacks the keyword)."""

    allowed: Callable[[Any], bool] | None = None
    added_in: str | None = None
    before: Any = None


MODEL_ARGUMENTS: dict[str, ModelArgument] = {
    "num_inputs": ModelArgument(lambda v: v >= 1),
    "hidden_sizes": ModelArgument(lambda v: all(h >= 1 for h in v)),
    "family": ModelArgument(),
    "num_masks": ModelArgument(lambda v: v == "unlimited" or 1 <= v <= MAX_POOL),
    "ordering": ModelArgument(),
    "direct": ModelArgument(),
    "seed": ModelArgument(lambda v: v >= 0),
    "activation": ModelArgument(lambda v: v in ACTIVATIONS),
    "resample": ModelArgument(),
    "degrees": ModelArgument(),
    "conditioning": ModelArgument(),
    "context_size": ModelArgument(lambda v: v >= 0),
    "init": ModelArgument(),
    "categories": ModelArgument(),
    "components": ModelArgument(),
    # made 0.1 drew a layer's degrees unsorted
    "sorted_degrees": ModelArgument(added_in="0.2", before=False),
    "blocks": ModelArgument(lambda v: all(b in BLOCK_TYPES for b in v), added_in="0.3", before=[]),
    "dropout": ModelArgument(lambda v: 0 <= v < 1, added_in="0.3", before=0.0),
}
MODEL_HINTS = {k: v for k, v in typing.get_type_hints(MADE.__init__).items() if k != "return"}
MODEL_DEFAULTS = {k: p.default for k, p in inspect.signature(MADE).parameters.items() if p.default is not p.empty}
MODEL_RANGES = {k: a.allowed for k, a in MODEL_ARGUMENTS.items() if a.allowed is not None}


def older_defaults(settings: dict) -> dict:
    """``settings`` from a config written by an older made, completed with the values of the keywords
    added since that rebuild the model it saved."""
    added = {k: copy.copy(a.before) for k, a in MODEL_ARGUMENTS.items() if a.added_in is not None and k not in settings}
    return {**settings, **added}
