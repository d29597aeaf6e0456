"""Mask pools and ensembles: exact normalization, the cycle, and the logit-averaging pitfall."""

import warnings

import numpy as np
import pytest
import torch
from conftest import all_binary

from made import MADE
from made.model.pool import derive_seeds


def random_weights(model: MADE, scale: float = 1.0) -> MADE:
    """Large random weights, so that a wrong mixture would be visibly unnormalized."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, scale)
    return model


ENSEMBLE_CONFIGS = [
    dict(num_inputs=6, hidden_sizes=[12], num_masks=4, direct=True),
    dict(num_inputs=6, hidden_sizes=[12], num_masks=4, direct=False, conditioning=True),
    dict(num_inputs=8, hidden_sizes=[16, 16], num_masks=8, direct=True, conditioning=True),
    dict(num_inputs=7, hidden_sizes=[10, 10], num_masks=5, resample="ordering", direct=False),
    dict(num_inputs=7, hidden_sizes=[10], num_masks=5, resample="connectivity", ordering="random", conditioning=True),
    dict(num_inputs=10, hidden_sizes=[24], num_masks=3, direct=True, activation="softplus"),
    dict(num_inputs=9, hidden_sizes=[20], num_masks="unlimited", direct=True),
    dict(num_inputs=9, hidden_sizes=[20, 20], num_masks="unlimited", direct=False, conditioning=True),
    dict(num_inputs=5, hidden_sizes=[], num_masks=6, direct=True),
]


@pytest.mark.parametrize("config", ENSEMBLE_CONFIGS, ids=lambda c: f"D{c['num_inputs']}-K{c['num_masks']}")
def test_ensembles_sum_to_one_over_all_vectors(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = random_weights(MADE(**config).double())
    x = all_binary(config["num_inputs"])
    sizes = [2, 5, 30] if config["num_masks"] == "unlimited" else sorted({2, config["num_masks"]})
    with torch.no_grad():
        for k in sizes:
            total = model.log_prob(x, ensemble=k).exp().sum()
            assert abs(float(total) - 1.0) < 1e-9, (k, float(total))


def test_ensemble_members_are_different_autoregressive_models():
    model = random_weights(MADE(6, [12], num_masks=4, direct=True, conditioning=True).double())
    x = all_binary(6)
    members, orderings = [], set()
    with torch.no_grad():
        for k in range(4):
            model.set_mask(k)
            model.check_autoregressive()
            orderings.add(tuple(model.ordering.tolist()))
            members.append(model.log_prob(x).exp())
            assert abs(float(members[-1].sum()) - 1.0) < 1e-9
        model.set_mask(0)
        mixture = model.log_prob(x, ensemble=4).exp()
    assert len(orderings) == 4
    torch.testing.assert_close(mixture, torch.stack(members).mean(0), rtol=1e-12, atol=0)


def test_averaging_logits_is_not_a_distribution():
    """karpathy/pytorch-made averages the logits of several masks: that is not normalized; p-averaging is."""
    d, k = 6, 4
    model = random_weights(MADE(d, [12], num_masks=k, direct=True).double())
    x = all_binary(d)
    with torch.no_grad():
        logits = []
        for index in range(k):
            model.set_mask(index)
            logits.append(model(x))
        mean_logits = torch.stack(logits).mean(0)
        logit_average = torch.distributions.Bernoulli(logits=mean_logits).log_prob(x).sum(-1).exp().sum()
        model.set_mask(0)
        probability_average = model.log_prob(x, ensemble=k).exp().sum()
    assert abs(float(probability_average) - 1.0) < 1e-9
    assert abs(float(logit_average) - 1.0) > 1e-2, float(logit_average)


def test_ensemble_restores_the_current_mask():
    model = MADE(6, [12], num_masks=5, seed=3)
    model.set_mask(3)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.log_prob(all_binary(6, torch.float32), ensemble=5)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_ensemble_size_is_checked():
    model = MADE(4, [8], num_masks=3)
    with pytest.raises(ValueError, match="only 3"):
        model.log_prob(torch.zeros(1, 4), ensemble=4)
    with pytest.raises(ValueError, match=r"^ensemble \(a number of masks\) must be at least 1, got 0$"):
        model.log_prob(torch.zeros(1, 4), ensemble=0)


@pytest.mark.parametrize(
    "two", [np.int64(2), np.int32(2), np.array(2), torch.tensor(2), torch.tensor(2, dtype=torch.int8)]
)
def test_counts_take_any_integral_scalar(two):
    """Issue 25: ensemble=np.int64(2) or torch.tensor(2) was 'not a positive number'; the same for the other
    counts of the public methods (sample sizes, draws per row, batch sizes)."""
    model = MADE(4, [8], num_masks=3).double()
    x = torch.randint(0, 2, (5, 4)).double()
    assert torch.equal(model.log_prob(x, ensemble=two), model.log_prob(x, ensemble=2))
    assert torch.equal(model.per_example_nll(x, batch_size=two, ensemble=two), model.per_example_nll(x, 2, 2))
    assert model.sample(two).shape == (2, 4) and model.sample((two, 3)).shape == (2, 3, 4)
    observed = torch.rand(5, 4) < 0.5
    assert model.impute(x, observed, num_samples=two, ensemble=two).shape == (2, 5, 4)


@pytest.mark.parametrize("bad", [True, 2.5, torch.tensor(2.0), torch.tensor([2]), np.array([2]), "2", None])
def test_non_integral_counts_are_refused_naming_the_argument(bad):
    model = MADE(4, [8], num_masks=3).double()
    x = torch.zeros(2, 4, dtype=torch.float64)
    with pytest.raises(TypeError, match=r"^ensemble \(a number of masks\) must be an integer, got [^\n]*$"):
        model.pool.ensemble_seeds(bad)
    with pytest.raises(TypeError, match=r"^batch_size must be an integer, got [^\n]*$"):
        model.per_example_nll(x, batch_size=bad)
    if bad is not None:  # None: one completion, as documented
        with pytest.raises(TypeError, match=r"^num_samples must be an integer, got [^\n]*$"):
            model.impute(x, torch.ones(2, 4, dtype=torch.bool), num_samples=bad)


def test_train_and_test_use_the_same_pool():
    """The ensemble of a pool of K is the K masks cycled in training, not a set shifted by one."""
    model = MADE(6, [12], num_masks=4, seed=7)
    trained = []
    for step in range(4):
        model.mask_for_step(step)
        trained.append(int(model.mask_seed))
    assert trained == model.pool.ensemble_seeds(4) == model.mask_seeds
    assert len(set(trained)) == 4


@pytest.mark.parametrize("num_masks", [3, "unlimited"])
def test_mask_of_a_step_depends_on_the_step_alone(num_masks):
    """What a resumed run needs: minibatch ``step``'s mask follows from (config, step), not from history."""
    walked = MADE(6, [12], num_masks=num_masks, seed=11)
    masks_by_step, buffers_by_step = [], []
    for step in range(10):
        walked.mask_for_step(step)
        masks_by_step.append(int(walked.mask_seed))
        buffers_by_step.append([b.clone() for b in walked.buffers()])
    fresh = MADE(6, [12], num_masks=num_masks, seed=11)
    for step in (9, 2, 7, 0):
        fresh.mask_for_step(step)
        assert int(fresh.mask_seed) == masks_by_step[step]
        assert all(torch.equal(a, b) for a, b in zip(fresh.buffers(), buffers_by_step[step]))
    if num_masks == "unlimited":
        assert len(set(masks_by_step)) == 10  # a fresh mask every minibatch
        assert not set(masks_by_step) & set(walked.pool.ensemble_seeds(300))  # evaluation masks are other draws
    else:
        assert masks_by_step == [walked.mask_seeds[s % 3] for s in range(10)]


def test_mask_seed_derivation_is_pinned():
    """Pool, training and ensemble masks of saved models derive from these seeds: changing them breaks checkpoints."""
    assert derive_seeds(0, 0, 3) == [3948308845846928943, 3097659634595163794, 590459027412935504]
    assert derive_seeds(1234, 2, 2, offset=7) == [367124137869768895, 548288426128645612]
    assert derive_seeds(0, 0, 5)[:3] == derive_seeds(0, 0, 3)  # prefixes are stable: pools can grow


@pytest.mark.parametrize(
    "saved, loaded",
    [
        ({"ordering": "random"}, {}),  # a random-ordering state into a natural-ordering model of the same seed
        ({"degrees": "even"}, {}),  # a degrees="even" state into a degrees="random" model
        ({"ordering": [5, 4, 3, 2, 1, 0]}, {"ordering": "random"}),
        ({"sorted_degrees": False}, {}),
        ({"num_masks": 3, "resample": "connectivity", "degrees": "even"}, {"num_masks": 3, "resample": "connectivity"}),
        ({"num_masks": 3, "resample": "ordering"}, {"num_masks": 3, "resample": "connectivity"}),
    ],
)
def test_a_state_of_other_mask_rules_is_refused(saved, loaded):
    """Issue 25: the state of one mask rule loaded into a model of another (same seed, same shapes), which
    then evaluated masks the weights were never trained with."""
    state = MADE(6, [32], seed=4, **saved).state_dict()
    model = MADE(6, [32], seed=4, **loaded)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"^[\w.]*(ordering|mask) does not match the masks of the stored seed \d+"):
        model.load_state_dict(state)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was loaded


def test_a_state_of_equivalent_mask_rules_loads():
    """Rules that draw the same masks are the same model: a pool that resamples orderings ignores the
    ordering it was built with, and a state loads into a model of its own settings (also as a member)."""
    model = MADE(6, [32], num_masks=3, seed=4)
    model.load_state_dict(MADE(6, [32], num_masks=3, seed=4, ordering="random").state_dict())
    other = MADE(6, [32], seed=4, degrees="even", ordering="random")
    other.load_state_dict(MADE(6, [32], seed=4, degrees="even", ordering="random").state_dict())
    x = torch.randint(0, 2, (4, 6)).float()
    trained = MADE(6, [32], num_masks=3, seed=4, ordering="random")
    model.load_state_dict(trained.state_dict())
    torch.testing.assert_close(model.log_prob(x, ensemble=3), trained.log_prob(x, ensemble=3), rtol=0, atol=0)
