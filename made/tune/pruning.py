"""Median pruning among like trials, for ``made tune``: a mask pool is judged against pools, one mask against one mask.

A pool of K masks trains each of its masks K times less per epoch, so its early validation NLL lags a
one-mask trial's even where it ends far better (benchmarks/debd/README.md has the figures). Optuna's
``MedianPruner`` compares a trial with every finished trial at the same epoch, and so would stop nearly
every pool; :class:`KindMedianPruner` applies the same rule within each kind of trial.

Imported when a study is opened, not with ``made``: Optuna is an optional dependency.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Hashable
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["KindMedianPruner", "mask_kind"]


def mask_kind(params: dict[str, Any]) -> str:
    """The kind of a ``made tune`` trial for pruning: ``"one mask"`` or ``"mask pool"`` (any pool, unlimited too)."""
    return "one mask" if params.get("masks", 1) == 1 else "mask pool"


class KindMedianPruner(optuna.pruners.BasePruner):
    """Stop a trial whose best value so far is worse than the median, at the same step, of the finished
    trials of its own kind; only once ``n_startup_trials`` of that kind have finished, and never before
    step ``n_warmup_steps``. Minimizes (a study's direction is not consulted: ``made tune`` minimizes NLL)."""

    def __init__(
        self, n_startup_trials: int, n_warmup_steps: int, kind: Callable[[dict[str, Any]], Hashable] = mask_kind
    ) -> None:
        self.n_startup_trials, self.n_warmup_steps, self.kind = n_startup_trials, n_warmup_steps, kind

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self.n_warmup_steps:
            return False
        reported = [v for v in trial.intermediate_values.values() if not math.isnan(v)]
        if not reported:
            return True
        best = min(reported)
        kind = self.kind(trial.params)
        peers = [
            t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if self.kind(t.params) == kind
        ]
        at_step = [v for t in peers if not math.isnan(v := t.intermediate_values.get(step, math.nan))]
        if len(peers) < self.n_startup_trials or not at_step:
            return False
        return best > statistics.median(at_step)
