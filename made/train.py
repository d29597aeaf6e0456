"""Moved to :mod:`made.training.loop`; kept so 0.2 code works."""

from .training.loop import (
    DEFAULT_LR,
    LR_SCHEDULES,
    History,
    TrainConfig,
    fingerprint,
    fit,
    learning_rate,
    make_optimizer,
    validation_masks,
)

__all__ = ["TrainConfig", "History", "make_optimizer", "learning_rate", "fit", "fingerprint", "validation_masks",
           "DEFAULT_LR", "LR_SCHEDULES"]
