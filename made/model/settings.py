r"""What a setting of :class:`~made.MADE` is, said once: its keyword, type and default (MADE's
signature), and from :mod:`made.model.arguments` the values it may take and the made version that added
it with the value that rebuilds a model saved before.

Model files are checked against it (:func:`made.io.checkpoint.check_model_settings`), older ones are
completed from it (:func:`older_defaults`), and ``made train``'s options take from it the version that
added a model setting (:class:`made.config.ModelSettings`).
"""

from __future__ import annotations

import copy
import inspect
import typing

from .arguments import MAX_ENSEMBLE, MAX_POOL, MAX_SEED, MODEL_ARGUMENTS, ModelArgument
from .made import MADE

__all__ = [
    "ModelArgument",
    "MODEL_ARGUMENTS",
    "MODEL_HINTS",
    "MODEL_DEFAULTS",
    "MODEL_RANGES",
    "MAX_POOL",
    "MAX_ENSEMBLE",
    "MAX_SEED",
    "older_defaults",
]

MODEL_HINTS = {k: v for k, v in typing.get_type_hints(MADE.__init__).items() if k != "return"}
MODEL_DEFAULTS = {k: p.default for k, p in inspect.signature(MADE).parameters.items() if p.default is not p.empty}
MODEL_RANGES = {k: a.allowed for k, a in MODEL_ARGUMENTS.items() if a.allowed is not None}


def older_defaults(settings: dict) -> dict:
    """``settings`` from a config written by an older made, completed with the values of the keywords
    added since that rebuild the model it saved."""
    added = {k: copy.copy(a.before) for k, a in MODEL_ARGUMENTS.items() if a.added_in is not None and k not in settings}
    return {**settings, **added}
