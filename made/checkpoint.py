"""Moved to :mod:`made.io.atomic`, :mod:`made.io.checkpoint`, :mod:`made.io.run`,
:mod:`made.io.training_state` and :mod:`made.model.settings`; kept so 0.2 code works."""

from .io.atomic import CheckpointError, atomic_write, check_no_links, read_json, write_json
from .io.checkpoint import FORMAT_VERSION, check_model_settings, count_weights, mask_state
from .io.run import CONFIG_FILE, METRICS_FILE, STATE_FILE, WEIGHTS_FILE, load_model, save_model
from .io.training_state import (
    clear_training_state,
    has_training_state,
    load_training_state,
    save_training_state,
)
from .model.settings import MAX_POOL, MODEL_DEFAULTS, MODEL_HINTS, MODEL_RANGES

__all__ = ["CheckpointError", "FORMAT_VERSION", "MAX_POOL", "CONFIG_FILE", "WEIGHTS_FILE", "METRICS_FILE", "STATE_FILE",
           "MODEL_HINTS", "MODEL_DEFAULTS", "MODEL_RANGES", "atomic_write", "write_json", "read_json", "check_no_links",
           "count_weights", "check_model_settings", "save_model", "load_model", "mask_state", "has_training_state",
           "clear_training_state", "save_training_state", "load_training_state"]
