"""MADE through torch.distributions: shapes, exact normalization, sampling and argument checks."""

import pytest
import torch
from conftest import all_binary, total_variation
from torch.distributions import constraints

from made import MADE
from made.model.distribution import MADEDistribution

BATCH_SHAPES = [(), (3,), (2, 3)]


def sharp_model(d: int, **options) -> MADE:
    """A float64 MADE with weights large enough that its conditionals are far from uniform."""
    model = MADE(d, [16, 16], seed=1, **options).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.5)
    return model


@pytest.mark.parametrize("batch", BATCH_SHAPES)
def test_log_prob_takes_any_batch_shape(batch):
    """``[..., D]`` in, ``[...]`` out, each entry equal to the row-wise ``[N, D]`` value."""
    model = sharp_model(5, context_size=2)
    x = torch.randint(0, 2, (*batch, 5)).double()
    c = torch.randn(*batch, 2, dtype=torch.float64)
    rows = model.log_prob(x.reshape(-1, 5), c.reshape(-1, 2))
    assert model.log_prob(x, c).shape == batch
    torch.testing.assert_close(model.log_prob(x, c).reshape(-1), rows)
    dist = MADEDistribution(model, context=c)
    assert dist.batch_shape == batch and dist.event_shape == (5,)
    torch.testing.assert_close(dist.log_prob(x).reshape(-1), rows)


def test_log_prob_batch_shape_errors_name_the_argument():
    model = MADE(4, [8], context_size=2)
    with pytest.raises(ValueError, match=r"x must have shape \[\.\.\., 4\], got \[2, 3, 5\]"):
        model.log_prob(torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"context must have shape \[2, 3, 2\], got \[3, 2\]"):
        model.log_prob(torch.zeros(2, 3, 4), torch.zeros(3, 2))


@pytest.mark.parametrize("shape", [(), (3,), (2, 3)])
@pytest.mark.parametrize("ensemble", [None, 2])
def test_sample_shapes(shape, ensemble):
    """``MADE.sample`` and the distribution return ``[*sample_shape, (N,) D]``; an int is a 1-tuple."""
    model = MADE(4, [8], num_masks=2)
    assert model.sample(shape, ensemble=ensemble).shape == (*shape, 4)
    assert model.sample(torch.Size(shape), ensemble=ensemble).shape == (*shape, 4)
    assert model.sample(list(shape), ensemble=ensemble).shape == (*shape, 4)
    assert model.sample(7, ensemble=ensemble).shape == (7, 4)
    assert MADEDistribution(model, ensemble).sample(shape).shape == (*shape, 4)
    conditional = MADE(4, [8], num_masks=2, context_size=3)
    context = torch.randn(5, 3)
    dist = MADEDistribution(conditional, ensemble, context=context)
    assert dist.batch_shape == (5,)
    assert dist.sample(shape).shape == (*shape, 5, 4)
    assert conditional.sample(shape, context[0].expand(*shape, 3), ensemble=ensemble).shape == (*shape, 4)


@pytest.mark.parametrize("size", [True, -1, 2.5, (2, -1), (2, 1.0), "3"])
def test_bad_sample_sizes_are_refused_in_one_line(size):
    model = MADE(4, [8])
    with pytest.raises((TypeError, ValueError), match=r"^num_samples must [^\n]*$"):
        model.sample(size)
    with pytest.raises((TypeError, ValueError), match=r"^sample_shape must [^\n]*$"):
        MADEDistribution(model).sample(size if isinstance(size, tuple) else (size,))


@pytest.mark.parametrize("ensemble", [None, 3])
def test_probabilities_sum_to_one(ensemble):
    """Exact normalization through the distribution: all 2^10 vectors, one mask and a 3-mask mixture."""
    model = sharp_model(10, num_masks=3)
    dist = MADEDistribution(model, ensemble)
    total = dist.log_prob(all_binary(10)).exp().sum()
    torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64), rtol=0, atol=1e-10)


def test_probabilities_sum_to_one_for_every_context_row():
    model = sharp_model(6, context_size=2)
    dist = MADEDistribution(model, context=torch.randn(4, 2, dtype=torch.float64))
    probs = dist.log_prob(all_binary(6)[:, None, :]).exp()  # [64, 4]: every state against every row
    assert probs.shape == (64, 4)
    torch.testing.assert_close(probs.sum(0), torch.ones(4, dtype=torch.float64), rtol=0, atol=1e-10)


@pytest.mark.parametrize("ensemble", [None, 3])
def test_samples_follow_the_exact_probabilities(ensemble):
    """20,000 draws for D = 4 (fixed seed): total variation below 0.03, about three times the
    expected sampling error (sum over 16 states of sqrt(p / n) / 2 <= 0.014)."""
    model = sharp_model(4, num_masks=3)
    dist = MADEDistribution(model, ensemble)
    exact = dist.log_prob(all_binary(4)).exp().detach()
    samples = dist.sample((20_000,))
    assert total_variation(samples, exact) < 0.03


def test_samples_follow_each_context_row():
    model = sharp_model(4, context_size=2)
    context = 3 * torch.randn(2, 2, dtype=torch.float64)
    dist = MADEDistribution(model, context=context)
    exact = dist.log_prob(all_binary(4)[:, None, :]).exp().detach()  # [16, 2]
    assert 0.5 * (exact[:, 0] - exact[:, 1]).abs().sum() > 0.1  # the rows differ
    samples = dist.sample((20_000,))  # [20000, 2, 4]
    for row in range(2):
        assert total_variation(samples[:, row], exact[:, row]) < 0.03


def test_validate_args_checks_the_support_only_when_on():
    model = MADE(4, [8]).double()
    half = torch.full((4,), 0.5, dtype=torch.float64)
    with pytest.raises(ValueError, match="support"):
        MADEDistribution(model, validate_args=True).log_prob(half)
    off = MADEDistribution(model, validate_args=False).log_prob(half)
    assert torch.isfinite(off)
    assert model.validate_args  # the model's own checks are back on
    with pytest.raises(ValueError, match="binary"):
        model.log_prob(half)
    model.validate_args = False
    torch.testing.assert_close(off, model.log_prob(half))


def test_support_by_family():
    assert MADEDistribution(MADE(3, [8])).support.check(torch.tensor([[0.0, 1.0, 1.0], [0.0, 2.0, 1.0]])).tolist() == [
        True,
        False,
    ]
    assert MADEDistribution(MADE(3, [8], family="gaussian")).support.base_constraint is constraints.real
    categorical = MADEDistribution(MADE(2, [8], family="categorical", categories=[2, 3])).support
    assert categorical.check(torch.tensor([[1.0, 2.0], [2.0, 0.0], [0.0, 0.5]])).tolist() == [True, False, False]
    mixed = MADE(3, [8], family=[{"type": "binary"}, {"type": "categorical", "categories": 3}, {"type": "real"}])
    support = MADEDistribution(mixed).support
    values = torch.tensor([[1.0, 2.0, -0.3], [1.0, 3.0, 0.0], [0.5, 0.0, 0.0], [0.0, 0.0, float("nan")]])
    assert support.check(values).tolist() == [True, False, False, False]
    assert bool(support.check(MADEDistribution(mixed).sample((50,))).all())


def test_log_prob_has_gradients_for_every_parameter():
    model = MADE(4, [8], direct=True)
    loss = -MADEDistribution(model).log_prob(torch.randint(0, 2, (3, 5, 4)).float()).mean()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_expand_repeats_the_density():
    model = sharp_model(4, context_size=2)
    dist = MADEDistribution(model, context=torch.randn(3, 2, dtype=torch.float64))
    wide = dist.expand((2, 3))
    x = torch.randint(0, 2, (2, 3, 4)).double()
    assert wide.batch_shape == (2, 3) and wide.sample((5,)).shape == (5, 2, 3, 4)
    torch.testing.assert_close(wide.log_prob(x), dist.log_prob(x))


def test_constructor_checks_its_arguments():
    with pytest.raises(ValueError, match="pool has only 2"):
        MADEDistribution(MADE(4, [8], num_masks=2), ensemble=3)
    with pytest.raises(ValueError, match=r"context must have shape \[\.\.\., 2\]"):
        MADEDistribution(MADE(4, [8], context_size=2))
    with pytest.raises(ValueError, match="no context input"):
        MADEDistribution(MADE(4, [8]), context=torch.zeros(3, 2))


def test_support_is_a_constraint_on_the_class_as_torch_checks_read_it():
    """Issue 25: torch's generic checks read ``support`` on the class (as for Binomial, a dependent
    property): a Constraint of event_dim 1 there, the model's own support on an instance."""
    assert isinstance(MADEDistribution.support, constraints.Constraint)
    assert MADEDistribution.support.event_dim == 1
    assert constraints.is_dependent(MADEDistribution.support)
    dist = MADEDistribution(MADE(3, [8]))
    assert not constraints.is_dependent(dist.support) and dist.support.event_dim == 1
    assert dist.support.check(torch.tensor([[0.0, 1.0, 1.0], [0.0, 0.5, 1.0]])).tolist() == [True, False]


def test_vmap_over_log_prob():
    """Issue 25: under torch.vmap a value check cannot branch on the values; with validation on the
    refusal says so in one line (it failed inside aten::equal), with it off vmap gives the row values."""
    model = sharp_model(4)
    x = torch.randint(0, 2, (6, 1, 4)).double()
    rows = model.log_prob(x[:, 0])
    for call in (MADEDistribution(model, validate_args=True).log_prob, model.log_prob):
        with pytest.raises(ValueError, match=r"^under torch.vmap the values cannot be checked: turn validation off"):
            torch.vmap(call)(x)
    model.validate_args = False
    torch.testing.assert_close(torch.vmap(MADEDistribution(model, validate_args=False).log_prob)(x)[:, 0], rows)
    torch.testing.assert_close(torch.vmap(model.log_prob)(x)[:, 0], rows)
