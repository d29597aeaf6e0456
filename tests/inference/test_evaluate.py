import math

import pytest
import torch
from conftest import all_binary

from made import MADE
from made.inference.evaluate import evaluate_nll, per_dimension_nll, per_example_nll


def test_mean_stderr_and_bits():
    model = MADE(6, [10], direct=True).double()
    x = all_binary(6)
    nll = -model.log_prob(x).detach()
    result = evaluate_nll(model, x, batch_size=7)
    assert math.isclose(result.nll, float(nll.mean()), rel_tol=1e-12)
    assert math.isclose(result.stderr, float(nll.std() / math.sqrt(64)), rel_tol=1e-12)
    assert math.isclose(result.bits_per_dim, result.nll / (6 * math.log(2)), rel_tol=1e-12)
    assert result.num_examples == 64


def test_batches_do_not_change_the_result():
    model = MADE(6, [10])
    x = all_binary(6, torch.float32)
    torch.testing.assert_close(per_example_nll(model, x, 5), per_example_nll(model, x, 64))


def test_ensemble_is_log_mean_exp_of_joint_probabilities():
    model = MADE(6, [10], num_masks=3).double()
    x = all_binary(6)
    joint = []
    for k in range(3):
        model.set_mask(k)
        joint.append(model.log_prob(x).detach().exp())
    model.set_mask(0)
    expected = -torch.log(torch.stack(joint).mean(0))
    torch.testing.assert_close(per_example_nll(model, x, ensemble=3), expected)


def test_ensemble_over_batches_equals_log_prob_ensemble_and_restores_the_mask():
    model = MADE(8, [40], num_masks="unlimited", seed=3).double()
    model.set_mask(5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = all_binary(8)
    expected = -model.log_prob(x, ensemble=6).detach()
    torch.testing.assert_close(per_example_nll(model, x, batch_size=50, ensemble=6), expected, rtol=1e-12, atol=1e-12)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bad_data_rejected_and_model_state_kept():
    model = MADE(4, [8], num_masks=2)
    model.train()
    bad = torch.zeros(10, 4)
    bad[7, 2] = 0.5
    with pytest.raises(ValueError, match="binary"):
        per_example_nll(model, bad, batch_size=3, ensemble=2)
    assert model.training and model.validate_args and int(model.mask_seed) == model.mask_seeds[0]


def test_data_of_another_dtype_is_converted():
    model = MADE(6, [10]).double()
    x = all_binary(6)
    torch.testing.assert_close(per_example_nll(model, x.to(torch.uint8), batch_size=9), per_example_nll(model, x))


def test_ensemble_builds_each_mask_once_whatever_the_batches():
    model = MADE(6, [10], num_masks=4, seed=1)
    seeds, switched = [], []
    original = model.masks
    model.masks = lambda s, *rest: (seeds.append(s), original(s, *rest))[1]
    model.set_mask_seed = switched.append
    per_example_nll(model, all_binary(6, torch.float32), batch_size=5, ensemble=4)  # 13 batches
    assert seeds == model.mask_seeds  # each mask built once, as a value
    assert switched == []  # the model's own mask is never switched


def test_per_dimension_nll_is_the_terms_of_the_nll():
    model = MADE(4, [10], family="categorical", categories=[2, 3, 2, 4], direct=True).double()
    x = torch.tensor([[0.0, 2.0, 1.0, 3.0], [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    per_dim = per_dimension_nll(model, x, batch_size=2)
    assert per_dim.shape == (3, 4) and (per_dim > 0).all()
    torch.testing.assert_close(per_dim, -model.conditional_log_probs(x).detach())
    torch.testing.assert_close(per_dim.sum(1), per_example_nll(model, x))


def test_values_are_checked_once_for_all_batches_and_masks():
    model = MADE(6, [10], num_masks=3)
    calls = []
    original = model.family.in_support
    model.family.in_support = lambda x: (calls.append(x.shape[0]), original(x))[1]
    per_example_nll(model, all_binary(6, torch.float32), batch_size=5, ensemble=3)  # 13 batches, 3 masks
    assert sum(calls) == 64  # one pass over the whole data set
    assert model.validate_args


@pytest.mark.parametrize(
    "value, message",
    [(float("nan"), "NaN or infinite"), (float("inf"), "NaN or infinite"), (2.0, "dimension 3 must be binary")],
)
def test_bad_values_are_named_whatever_the_batch(value, message):
    model = MADE(6, [10])
    x = all_binary(6, torch.float32)
    x[41, 3] = value
    with pytest.raises(ValueError, match=message):
        per_example_nll(model, x, batch_size=5)


def test_categorical_integer_data_is_checked_and_converted():
    model = MADE(3, [12], family="categorical", categories=3)
    x = torch.tensor([[0, 1, 2], [2, 2, 0]], dtype=torch.uint8)
    torch.testing.assert_close(per_example_nll(model, x), per_example_nll(model, x.float()))
    with pytest.raises(ValueError, match="category in 0..2"):
        per_example_nll(model, torch.tensor([[0, 3, 1]], dtype=torch.int64))
