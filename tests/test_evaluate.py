import math

import torch

from conftest import all_binary
from made import MADE
from made.evaluate import evaluate_nll, per_dimension_nll, per_example_nll


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


def test_per_dimension_nll_is_the_terms_of_the_nll():
    model = MADE(4, [10], family="categorical", categories=[2, 3, 2, 4], direct=True).double()
    x = torch.tensor([[0.0, 2.0, 1.0, 3.0], [1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 0.0]], dtype=torch.float64)
    per_dim = per_dimension_nll(model, x, batch_size=2)
    assert per_dim.shape == (3, 4) and (per_dim > 0).all()
    torch.testing.assert_close(per_dim, -model.conditional_log_probs(x).detach())
    torch.testing.assert_close(per_dim.sum(1), per_example_nll(model, x))
