import math

import pytest
import torch
from conftest import all_binary, total_variation

from made import MADE
from made.model.conditional import observed_first


def sharp(model: MADE) -> MADE:
    """Float64 weights large enough that the conditionals are far from uniform."""
    model = model.double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.5)
    return model


def brute_force_conditional(joint: torch.Tensor, states: torch.Tensor, x: torch.Tensor, observed: torch.Tensor):
    """p(state | x_observed) over all states, from the table of joint probabilities."""
    consistent = (states[:, observed] == x[observed]).all(dim=1)
    table = torch.where(consistent, joint, torch.zeros_like(joint))
    return table / table.sum(), consistent


def reordered_mixture(model: MADE, seeds: list[int], observed: torch.Tensor, states: torch.Tensor, context=None):
    """Joint table of the uniform mixture of the masks with observed dimensions moved first, built by hand."""
    probs = []
    for seed in seeds:
        own = model.pool.connectivity(seed)[0].tolist()
        ordering = [d for d in own if observed[d]] + [d for d in own if not observed[d]]
        with model.using_mask(seed, torch.tensor(ordering)):
            probs.append(model.log_prob(states, context).exp())
    return torch.stack(probs).mean(dim=0).detach()


def check_against_table(model, joint, states, x, observed, ensemble, context=None, seed=0):
    """Conditional log-likelihoods to 1e-9 and imputation frequencies within 0.01 total variation."""
    target, consistent = brute_force_conditional(joint, states, x, observed)
    rows = states[consistent]
    mask = observed.expand(len(rows), -1)
    ctx = None if context is None else context[:1].expand(len(rows), -1)
    got = model.conditional_log_prob(rows, mask, ctx, ensemble=ensemble)
    assert torch.allclose(got, target[consistent].log(), atol=1e-9, rtol=0)
    x_nan = torch.where(observed, x, torch.full_like(x, math.nan))
    draws = model.impute(
        x_nan[None],
        observed[None],
        num_samples=200_000,
        context=None if context is None else context[:1],
        ensemble=ensemble,
        generator=torch.Generator().manual_seed(seed),
    )[:, 0]
    assert torch.equal(draws[:, observed], x[observed].expand(len(draws), -1))
    assert total_variation(draws, target) < 0.01


@pytest.mark.parametrize("direct", [False, True])
def test_prefix_of_a_single_mask_is_the_models_own_conditional(direct):
    """Any model conditions on a prefix of its ordering: exactly the conditional of its own joint."""
    model = sharp(MADE(5, [16, 16], ordering=[3, 0, 4, 1, 2], direct=direct, seed=1))
    states = all_binary(5)
    joint = model.log_prob(states).exp().detach()
    observed = torch.zeros(5, dtype=torch.bool)
    observed[[3, 0]] = True
    check_against_table(model, joint, states, torch.tensor([1.0, 0, 0, 1, 0], dtype=torch.float64), observed, None)


def test_prefix_of_a_connectivity_pool_is_the_ensembles_conditional():
    """A connectivity-agnostic ensemble shares one ordering: a prefix conditions the ensemble's joint itself."""
    model = sharp(MADE(6, [20], num_masks=4, resample="connectivity", ordering="random", seed=5))
    states = all_binary(6)
    joint = model.log_prob(states, ensemble=4).exp().detach()
    observed = torch.zeros(6, dtype=torch.bool)
    observed[model.ordering[:2]] = True
    x = torch.tensor([0.0, 1, 1, 0, 1, 0], dtype=torch.float64)
    check_against_table(model, joint, states, x, observed, 4, seed=1)


@pytest.mark.parametrize(
    "num_masks, resample, ensemble",
    [(4, "full", 4), (4, "ordering", 3), ("unlimited", "full", 5), (4, "full", None)],
)
def test_order_agnostic_conditional_is_the_reordered_mixtures(num_masks, resample, ensemble):
    """Observed dimensions anywhere: exact for the mixture of masks reordered with them first (built by hand)."""
    model = sharp(MADE(5, [16, 16], num_masks=num_masks, resample=resample, direct=True, seed=2))
    states = all_binary(5)
    observed = torch.tensor([False, True, False, True, False])
    seeds = [int(model.mask_seed)] if ensemble is None else model.pool.ensemble_seeds(ensemble)
    joint = reordered_mixture(model, seeds, observed, states)
    x = torch.tensor([0.0, 1, 0, 0, 1], dtype=torch.float64)
    check_against_table(model, joint, states, x, observed, ensemble, seed=2)


def test_order_agnostic_conditional_with_context():
    model = sharp(MADE(4, [12], num_masks=3, resample="full", context_size=2, seed=4))
    states = all_binary(4)
    context = torch.tensor([[0.5, -1.0]], dtype=torch.float64).expand(len(states), -1)
    observed = torch.tensor([False, False, True, False])
    joint = reordered_mixture(model, model.pool.ensemble_seeds(3), observed, states, context)
    x = torch.tensor([0.0, 0, 1, 0], dtype=torch.float64)
    check_against_table(model, joint, states, x, observed, 3, context=context, seed=3)


def test_weights_of_the_ensemble_matter():
    """The mixture weights p_c(x_observed) are not uniform here, so the test above checks them."""
    model = sharp(MADE(5, [16, 16], num_masks=4, resample="full", direct=True, seed=2))
    states, observed = all_binary(5), torch.tensor([False, True, False, True, False])
    x = torch.tensor([0.0, 1, 0, 0, 1], dtype=torch.float64)
    weighted = brute_force_conditional(
        reordered_mixture(model, model.pool.ensemble_seeds(4), observed, states), states, x, observed
    )[0]
    per_mask = [
        brute_force_conditional(reordered_mixture(model, [s], observed, states), states, x, observed)[0]
        for s in model.pool.ensemble_seeds(4)
    ]
    assert 0.5 * (weighted - torch.stack(per_mask).mean(0)).abs().sum() > 0.01


def test_rows_with_different_patterns_in_one_batch():
    """Grouping by observed pattern gives every row what it gets alone; nothing observed is log_prob itself."""
    model = sharp(MADE(6, [20], num_masks=3, resample="full", seed=7))
    x = torch.randint(0, 2, (12, 6)).double()
    observed = torch.rand(12, 6) < 0.5
    observed[0] = False
    observed[1] = True
    together = model.conditional_log_prob(x, observed, ensemble=3)
    alone = torch.cat([model.conditional_log_prob(x[i : i + 1], observed[i : i + 1], ensemble=3) for i in range(12)])
    assert torch.allclose(together, alone, atol=1e-12, rtol=0)
    assert torch.allclose(together[0], model.log_prob(x[:1], ensemble=3)[0], atol=1e-12, rtol=0)
    assert together[1] == 0
    filled = model.impute(x, observed, num_samples=3, ensemble=3, generator=torch.Generator().manual_seed(0))
    assert filled.shape == (3, 12, 6)
    assert torch.equal(filled[:, observed], x[observed].expand(3, -1))
    assert set(filled.unique().tolist()) <= {0.0, 1.0}
    assert model.impute(x, observed).shape == (12, 6)


def test_imputation_is_seeded_and_restores_the_mask():
    model = MADE(8, [16], num_masks=4, resample="ordering", seed=3)
    model.set_mask(2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.full((4, 8), math.nan)
    x[:, :3] = 1.0
    observed = ~x.isnan()
    a = model.impute(x, observed, 2, ensemble=4, generator=torch.Generator().manual_seed(5))
    b = model.impute(x, observed, 2, ensemble=4, generator=torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())


def test_observed_first_is_stable():
    ordering = torch.tensor([4, 2, 0, 3, 1])
    observed = torch.tensor([True, False, False, True, True])
    assert observed_first(ordering, observed).tolist() == [4, 0, 3, 2, 1]


def test_non_prefix_needs_an_order_agnostic_model():
    x = torch.zeros(2, 5)
    late = torch.zeros(2, 5, dtype=torch.bool)
    late[:, 4] = True
    for model in (MADE(5, [10]), MADE(5, [10], num_masks=3, resample="connectivity")):
        with pytest.raises(ValueError, match="resampled orderings"):
            model.conditional_log_prob(x, late)
        with pytest.raises(ValueError, match="resampled orderings"):
            model.impute(x, late)
    first = torch.zeros(2, 5, dtype=torch.bool)
    first[:, 0] = True
    assert MADE(5, [10]).impute(x, first).shape == (2, 5)


def test_bad_arguments_are_refused():
    model = MADE(4, [8], num_masks=2)
    x, observed = torch.zeros(3, 4), torch.ones(3, 4, dtype=torch.bool)
    with pytest.raises(ValueError, match="bool"):
        model.impute(x, observed.float())
    with pytest.raises(ValueError, match="shape"):
        model.impute(x, observed[:, :3])
    with pytest.raises(ValueError, match="binary"):
        model.impute(x + 0.5, observed)
    with pytest.raises(ValueError, match="NaN"):
        model.impute(torch.full((3, 4), math.nan), observed)
    with pytest.raises(ValueError, match="NaN"):
        model.conditional_log_prob(torch.full((3, 4), math.nan), ~observed)
    with pytest.raises(ValueError, match="num_samples"):
        model.impute(x, observed, num_samples=0)
    with pytest.raises(ValueError, match="ensemble"):
        model.impute(x, observed, ensemble=3)
