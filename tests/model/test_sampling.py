import random
import warnings

import pytest
import torch
import torch.nn.functional as F
from conftest import all_binary, total_variation
from torch.distributions import Categorical

from made import MADE
from made.families import Family
from made.model.sampling import IncrementalSampler, sample_incremental, sample_naive


class TwoLogits(Family):
    """A binary family with P = 2 parameters and a one-hot input encoding (2 network inputs) per dimension.

    It overrides neither ``sample_dim`` nor ``encode``'s identity, so it exercises the
    sampler's generic paths that categorical or mixture families take.
    """

    name = "two_logits"

    @property
    def params_per_dim(self) -> list[int]:
        return [2] * self.num_inputs

    @property
    def inputs_per_dim(self) -> list[int]:
        return [2] * self.num_inputs

    def encode(self, x):
        return F.one_hot(x.long(), 2).to(x.dtype).flatten(1)

    def shape_params(self, flat):
        return flat.reshape(flat.shape[0], self.num_inputs, 2)

    def log_prob(self, params, x):
        return torch.log_softmax(params, -1).gather(-1, x.long()[..., None])[..., 0]

    def sample(self, params, uniform):
        return (uniform < torch.softmax(params, -1)[..., 1]).to(params.dtype)

    def distribution(self, params):
        return Categorical(logits=params)

    @property
    def columns(self):
        return [{"type": "two_logits"}] * self.num_inputs

    def outside_support(self, x):
        return (x != 0) & (x != 1)

    def support_text(self, dim):
        return "binary (0 or 1)"


def random_model(rng: random.Random) -> tuple[MADE, int]:
    """A random architecture and mask with weights large enough to make sharp conditionals."""
    d = rng.randint(1, 20)
    ordering = rng.choice(["natural", "random", rng.sample(range(d), d)])
    context = rng.choice([0, 0, 3])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MADE(
            d,
            [rng.choice([1, 3, d, 2 * d + 5]) for _ in range(rng.randint(0, 3))],
            family=TwoLogits(d) if rng.random() < 0.2 else "bernoulli",
            ordering=ordering,
            direct=rng.random() < 0.5,
            conditioning=rng.random() < 0.5,
            context_size=context,
            num_masks=rng.choice([1, 1, 4, "unlimited"]),
            resample=rng.choice(["full", "ordering", "connectivity"]),
            degrees=rng.choice(["random", "even"]),
            activation=rng.choice(["relu", "tanh", "softplus"]),
            seed=rng.randint(0, 10**6),
        ).double()
        model.set_mask(rng.randint(0, 5))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.5)
    return model, context


@pytest.mark.parametrize("case", range(150))
def test_incremental_sampler_draws_what_the_naive_sampler_draws(case):
    """Same uniform noise, same draws, in float64, for random depth, ordering, masks, direct, conditioning,
    context and family; also when a prefix of the ordering is given rather than drawn."""
    rng = random.Random(case)
    model, context_size = random_model(rng)
    n, d = 40, model.num_inputs
    uniform = torch.rand(n, d, dtype=torch.float64)
    context = torch.randn(n, context_size, dtype=torch.float64) if context_size else None
    naive = sample_naive(model, uniform, context)
    assert torch.equal(sample_incremental(model, uniform, context), naive)
    given, num_given = torch.randint(0, 2, (n, d)).double(), rng.randint(0, d)
    naive_given = sample_naive(model, uniform, context, given, num_given)
    assert torch.equal(sample_incremental(model, uniform, context, given, num_given), naive_given)
    kept = model.ordering[:num_given]
    assert torch.equal(naive_given[:, kept], given[:, kept])


def test_equal_draws_are_not_degenerate():
    """The draws the equality test compares vary: about as many ones as zeros over its first cases."""
    ones = total = 0
    for case in range(20):
        model, context_size = random_model(random.Random(case))
        context = torch.randn(50, context_size, dtype=torch.float64) if context_size else None
        draws = sample_incremental(model, torch.rand(50, model.num_inputs, dtype=torch.float64), context)
        ones, total = ones + float(draws.sum()), total + draws.numel()
    assert 0.3 < ones / total < 0.7


def test_samples_follow_the_exact_distribution():
    """200,000 draws for D = 4: empirical frequencies within 0.01 total variation of exp(log_prob)."""
    model = MADE(4, [16], direct=True, ordering=[2, 0, 3, 1], seed=3).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.0)
    states = all_binary(4)
    exact = model.log_prob(states).exp().detach()
    samples = model.sample(200_000, generator=torch.Generator().manual_seed(0))
    assert total_variation(samples, exact) < 0.01
    assert set(samples.unique().tolist()) <= {0.0, 1.0}


def test_ensemble_samples_follow_the_mixture():
    """sample(n, ensemble=k) draws from the distribution log_prob(x, ensemble=k) scores."""
    model = MADE(4, [12, 12], num_masks=3, resample="full", seed=2).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.5)
    exact = model.log_prob(all_binary(4), ensemble=3).exp().detach()
    single = model.log_prob(all_binary(4)).exp().detach()
    assert 0.5 * (exact - single).abs().sum() > 0.05  # the mixture differs from the current mask
    samples = model.sample(200_000, ensemble=3, generator=torch.Generator().manual_seed(1))
    assert total_variation(samples, exact) < 0.01
    assert int(model.mask_seed) == model.mask_seeds[0]  # the current mask is restored


def test_sampling_is_seeded():
    model = MADE(10, [20])
    a = model.sample(5, generator=torch.Generator().manual_seed(1))
    b = model.sample(5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.shape == (5, 10)


def test_sampling_with_context_needs_the_context():
    model = MADE(5, [10], context_size=2)
    with pytest.raises(ValueError, match="context"):
        model.sample(3)
    assert model.sample(3, context=torch.zeros(3, 2)).shape == (3, 5)


def test_sampler_refuses_masks_that_are_not_autoregressive():
    model = MADE(4, [8])
    model.output.mask.fill_(True)
    with pytest.raises(ValueError, match="not autoregressive"):
        IncrementalSampler(model)
