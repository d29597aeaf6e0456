"""KindMedianPruner: a trial is pruned against the finished trials of its own kind only."""

import math

import pytest

optuna = pytest.importorskip("optuna")

from made.tune.pruning import KindMedianPruner, mask_kind  # noqa: E402

MASKS = {"masks": optuna.distributions.CategoricalDistribution([1, 8, 32])}


def finished(study, masks, curve):
    """Add a finished trial with ``masks`` whose validation NLL was ``curve[epoch]`` at each epoch."""
    study.add_trial(
        optuna.trial.create_trial(
            params={"masks": masks}, distributions=MASKS, value=curve[-1], intermediate_values=dict(enumerate(curve))
        )
    )


def running(masks, curve):
    return optuna.trial.FrozenTrial(
        number=99,
        state=optuna.trial.TrialState.RUNNING,
        value=None,
        datetime_start=None,
        datetime_complete=None,
        params={"masks": masks},
        distributions=MASKS,
        user_attrs={},
        system_attrs={},
        intermediate_values=dict(enumerate(curve)),
        trial_id=99,
    )


@pytest.fixture
def study():
    """Four one-mask trials at 20-23 nats by epoch 2, and four pools that were still at 30-33 then."""
    study = optuna.create_study(direction="minimize")
    for offset in range(4):
        finished(study, 1, [40, 30, 20 + offset, 15])
        finished(study, 8, [60, 45, 30 + offset, 14])
    return study


def test_a_pool_is_judged_against_pools_not_one_mask_trials(study):
    pruner = KindMedianPruner(n_startup_trials=4, n_warmup_steps=2)
    assert not pruner.prune(study, running(8, [58, 44, 31]))  # behind every one-mask trial, ahead of the pools' median
    assert pruner.prune(study, running(8, [60, 46, 33]))  # behind the pools' median (31.5)
    assert pruner.prune(study, running(1, [40, 30, 25]))  # a one-mask trial behind the one-mask median (21.5)
    assert not pruner.prune(study, running(1, [40, 30, 21]))


def test_unlimited_masks_count_as_a_pool():
    assert (
        mask_kind({"masks": "unlimited"})
        == mask_kind({"masks": 32})
        == mask_kind({"masks": 8})
        != mask_kind({"masks": 1})
    )


def test_no_pruning_before_the_warmup_or_enough_trials_of_the_same_kind(study):
    assert not KindMedianPruner(n_startup_trials=4, n_warmup_steps=3).prune(study, running(8, [90, 90, 90]))
    assert not KindMedianPruner(n_startup_trials=5, n_warmup_steps=2).prune(study, running(8, [90, 90, 90]))
    assert KindMedianPruner(n_startup_trials=4, n_warmup_steps=2).prune(study, running(8, [90, 90, 90]))


def test_a_trial_that_reported_only_nan_is_pruned(study):
    assert KindMedianPruner(n_startup_trials=4, n_warmup_steps=2).prune(study, running(1, [math.nan] * 3))
