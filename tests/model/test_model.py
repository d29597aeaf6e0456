import random
import warnings

import pytest
import torch
from conftest import all_binary

from made import MADE
from made.fast.blocks import find_staircase
from made.fast.dispatch import fast_path
from made.model.masks import input_degrees


def random_configs(count: int, seed: int = 0):
    rng = random.Random(seed)
    for _ in range(count):
        d = rng.randint(1, 20)
        hidden = [rng.choice([1, 3, d, 2 * d + 5, 40]) for _ in range(rng.randint(0, 3))]
        ordering = rng.choice(["natural", "random", "perm"])
        if ordering == "perm":
            ordering = rng.sample(range(d), d)
        yield dict(
            num_inputs=d,
            hidden_sizes=hidden,
            ordering=ordering,
            direct=rng.random() < 0.5,
            degrees=rng.choice(["random", "even"]),
            num_masks=rng.choice([1, 1, 3, "unlimited"]),
            activation=rng.choice(["relu", "tanh", "softplus"]),
            conditioning=rng.random() < 0.3,
            seed=rng.randint(0, 10**6),
        )


def jacobian(model: MADE, x: torch.Tensor) -> torch.Tensor:
    return torch.autograd.functional.jacobian(lambda v: model(v[None])[0], x)


@pytest.mark.parametrize("config", list(random_configs(60)), ids=lambda c: f"D{c['num_inputs']}-{c['hidden_sizes']}")
def test_autoregressive_jacobian_and_mask_product(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MADE(**config).double()
        for mask_index in range(2):  # the current mask and, for pools, another one
            model.set_mask(mask_index)
            model.check_autoregressive()
            position = input_degrees(model.ordering)
            jac = jacobian(model, torch.randn(config["num_inputs"], dtype=torch.float64))
            forbidden = position[:, None] <= position[None, :]  # output row, input column
            assert torch.all(jac[forbidden] == 0)
            if config["direct"]:
                # the direct connection makes every allowed dependence real
                assert torch.all(jac[~forbidden] != 0)


@pytest.mark.parametrize(
    "config",
    [
        dict(num_inputs=10, hidden_sizes=[32, 32], direct=True, ordering="random"),
        dict(num_inputs=10, hidden_sizes=[], direct=True),
        dict(num_inputs=8, hidden_sizes=[5], degrees="even", activation="tanh"),
        dict(num_inputs=7, hidden_sizes=[20, 3, 20], ordering=[6, 5, 4, 3, 2, 1, 0], conditioning=True),
        dict(num_inputs=1, hidden_sizes=[4], direct=True),
        dict(num_inputs=9, hidden_sizes=[30], num_masks="unlimited", direct=True),
    ],
)
def test_probabilities_of_all_vectors_sum_to_one(config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = MADE(**config).double()
    with torch.no_grad():
        for p in model.parameters():  # random, not tiny, weights
            p.normal_(0, 1.0)
        total = model.log_prob(all_binary(config["num_inputs"])).exp().sum()
    assert abs(float(total) - 1.0) < 1e-9


def test_log_prob_is_sum_of_bernoulli_conditionals():
    model = MADE(6, [16], direct=True).double()
    x = all_binary(6)[::5]
    logits = model(x)
    expected = torch.distributions.Bernoulli(logits=logits).log_prob(x).sum(-1)
    torch.testing.assert_close(model.log_prob(x), expected)
    torch.testing.assert_close(model.family.distribution(logits).log_prob(x), model.conditional_log_probs(x))


def test_first_conditional_is_a_constant():
    model = MADE(5, [10], direct=True, ordering=[3, 1, 0, 2, 4])
    x = all_binary(5, torch.float32)
    logits = model(x)
    assert torch.all(logits[:, 3] == logits[0, 3])


def test_seeded_and_reproducible():
    a, b = MADE(12, [20], ordering="random", seed=4), MADE(12, [20], ordering="random", seed=4)
    assert torch.equal(a.ordering, b.ordering)
    assert all(torch.equal(x, y) for x, y in zip(a.buffers(), b.buffers()))
    c = MADE(12, [20], ordering="random", seed=5)
    assert not torch.equal(a.hidden[0].mask, c.hidden[0].mask)


def test_float32_and_float64_agree():
    model = MADE(8, [16, 16], direct=True)
    x = all_binary(8, torch.float32)[::7]
    lp32 = model.log_prob(x)
    lp64 = model.double().log_prob(x.double())
    assert lp64.dtype == torch.float64
    torch.testing.assert_close(lp32.double(), lp64, atol=1e-5, rtol=1e-5)


def test_state_dict_carries_masks_and_mask_state():
    a = MADE(6, [12], num_masks=4, seed=1)
    a.set_mask(2)
    b = MADE(6, [12], num_masks=4, seed=1)
    b.load_state_dict(a.state_dict())
    x = all_binary(6, torch.float32)
    torch.testing.assert_close(a.log_prob(x), b.log_prob(x))
    assert int(b.mask_seed) == a.mask_seeds[2]


def test_pool_masks_differ_and_cycle():
    model = MADE(6, [12], num_masks=3, seed=1)
    seen = []
    for step in range(6):
        model.mask_for_step(step)
        seen.append(model.ordering.tolist())
    assert seen[:3] == seen[3:]
    assert len({tuple(s) for s in seen[:3]}) > 1


def test_resample_connectivity_keeps_ordering():
    model = MADE(6, [12], num_masks=5, resample="connectivity", ordering="random", seed=2)
    orders, masks = set(), set()
    for k in range(5):
        model.set_mask(k)
        orders.add(tuple(model.ordering.tolist()))
        masks.add(model.hidden[0].mask.numpy().tobytes())
    assert len(orders) == 1 and len(masks) > 1


def test_bad_input_rejected():
    model = MADE(4, [8])
    with pytest.raises(ValueError, match="shape"):
        model.log_prob(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="binary"):
        model.log_prob(torch.full((2, 4), 0.5))
    with pytest.raises(ValueError, match="NaN"):
        model.log_prob(torch.tensor([[0.0, float("nan"), 1.0, 0.0]]))
    with pytest.raises(ValueError):
        MADE(0, [8])
    with pytest.raises(ValueError):
        MADE(4, [8], num_masks=0)
    with pytest.raises(ValueError):
        MADE(4, [8], activation="gelu")


def test_narrow_hidden_layer_warns_but_stays_normalized():
    with pytest.warns(UserWarning, match="narrower"):
        model = MADE(8, [3], direct=False).double()
    assert abs(float(model.log_prob(all_binary(8)).exp().sum()) - 1) < 1e-9


@pytest.mark.parametrize(
    "config",
    [
        dict(num_inputs=40, hidden_sizes=[300, 200], direct=True, ordering="random", seed=1),
        dict(num_inputs=30, hidden_sizes=[260], conditioning=True, num_masks=3, seed=2),
        dict(num_inputs=25, hidden_sizes=[], direct=True, seed=3),
    ],
)
@pytest.mark.parametrize("mode", ["auto", "dense", "blocks"])
def test_fast_paths_give_the_plain_likelihoods_samples_and_gradients(config, mode):
    from made.fast.dispatch import fast_path

    model = MADE(**config).double()
    x = (torch.rand(64, config["num_inputs"], dtype=torch.float64) < 0.4).double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    results = {}
    for path in ("off", mode):
        with fast_path(path):
            with torch.no_grad():
                lp = [model.log_prob(x) for _ in range(2)]  # cold, then reused
                samples = model.sample(8, generator=torch.Generator().manual_seed(0))
            model.zero_grad()
            (-model.log_prob(x).mean()).backward()
            results[path] = (lp, samples, [p.grad.clone() for p in model.parameters()])
    (lp_off, samples_off, grads_off), (lp_fast, samples_fast, grads_fast) = results["off"], results[mode]
    for a in lp_fast:
        torch.testing.assert_close(a, lp_off[0], rtol=1e-12, atol=1e-12)
    assert torch.equal(samples_fast, samples_off)
    for a, b in zip(grads_fast, grads_off):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


@pytest.mark.parametrize("bad", [0.5, float("nan"), float("inf"), -1.0, 2.0, 1e-45, 1 + 2**-23])
def test_bernoulli_support_check_is_exact(bad):
    x = torch.tensor([[0.0, 1.0, -0.0, bad]])
    with pytest.raises(ValueError, match="binary|NaN"):
        MADE(4, [8]).log_prob(x)
    MADE(4, [8]).family.check_support(x[:, :3])
    MADE(4, [8]).family.check_support(torch.tensor([[0, 1, 1, 0]], dtype=torch.uint8))


def test_mask_with_a_given_ordering_keeps_the_seeds_degrees_and_is_restored():
    model = MADE(6, [12, 12], num_masks=3, direct=True, seed=1)
    model.set_mask(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seed = model.mask_seeds[2]
    ordering = torch.tensor([5, 3, 1, 0, 2, 4])
    with model.using_mask(seed, ordering):
        assert model.ordering.tolist() == ordering.tolist()
        model.check_autoregressive()
        assert model.pool.connectivity(seed, ordering)[1][0].tolist() == model.pool.connectivity(seed)[1][0].tolist()
        hidden = model.hidden[1].mask.clone()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    model.set_mask_seed(seed)
    assert torch.equal(model.hidden[1].mask, hidden)  # same degrees, so same hidden-to-hidden mask
    assert model.pool.reorders and not MADE(6, [12], num_masks=3, resample="connectivity").pool.reorders
    with pytest.raises(ValueError, match="permutation"):
        model.set_mask_seed(seed, torch.tensor([0, 0, 1, 2, 3, 4]))


def test_orthogonal_init_is_a_config_option():
    model = MADE(6, [12], direct=True, init="orthogonal", conditioning=True)
    assert model.config.init == "orthogonal"
    assert all(torch.all(layer.bias == 0) for layer in [*model.hidden, model.output])
    w = model.hidden[0].weight.detach()
    torch.testing.assert_close(w.T @ w, torch.eye(6), rtol=0, atol=1e-5)  # 12 x 6: orthonormal columns
    rebuilt = MADE(**model.config.to_dict())
    assert rebuilt.init == "orthogonal"
    with pytest.raises(ValueError, match="init"):
        MADE(6, [12], init="xavier")


def test_fixed_degrees_are_sorted_so_every_mask_is_a_staircase_in_storage_order():
    model = MADE(30, [64, 48], direct=True, seed=3)
    for layer in model.masked_layers():
        stairs = find_staircase(layer.mask)
        assert stairs is not None and stairs.row_order is None and stairs.col_order is None
    pool = MADE(30, [64], num_masks=4, seed=3)  # degrees redrawn per mask stay unsorted, as in the paper
    degrees = pool.pool.connectivity(pool.mask_seeds[1])[1][0]
    assert not torch.equal(degrees, degrees.sort().values)


@pytest.mark.parametrize("ordering", ["natural", "random"])
def test_training_steps_on_staircases_equal_the_plain_path(ordering):
    models = {mode: MADE(30, [300, 300], direct=True, ordering=ordering, seed=2).double() for mode in ("off", "blocks")}
    models["blocks"].load_state_dict(models["off"].state_dict())
    optimizers = {mode: torch.optim.Adam(m.parameters(), lr=0.01) for mode, m in models.items()}
    x = (torch.rand(3, 40, 30, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    for batch in x:
        for mode, model in models.items():
            with fast_path(mode):
                optimizers[mode].zero_grad()
                (-model.log_prob(batch).mean()).backward()
                optimizers[mode].step()
    for fast, plain in zip(models["blocks"].parameters(), models["off"].parameters()):
        torch.testing.assert_close(fast, plain, rtol=1e-10, atol=1e-12)


def test_values_are_checked_chunk_by_chunk_and_the_first_bad_one_named(monkeypatch):
    import made.model.made

    monkeypatch.setattr(made.model.made, "CHECK_CHUNK_CPU", 40)  # 5 rows of 8 per chunk
    model = MADE(8, [16])
    x = (torch.rand(23, 8, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    model.check_values(x)
    model.check_values(x.to(torch.uint8))
    x[21, 6] = 0.25
    with pytest.raises(ValueError, match="dimension 6 must be binary .* found 0.25 in row 21"):
        model.check_values(x)
    x[17, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.check_values(x)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(hidden_sizes=[300, 300], direct=True, ordering="random"),
        dict(hidden_sizes=[40], conditioning=True, num_masks=3),
        dict(hidden_sizes=[40], context_size=3),
        dict(hidden_sizes=[], direct=True),
        dict(hidden_sizes=[40], family="categorical", categories=3),
        dict(hidden_sizes=[40], family="mog", components=2),
    ],
)
def test_frozen_log_prob_equals_log_prob(kwargs):
    model = MADE(12, seed=4, **kwargs).double().eval()
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 2, (50, 12), generator=gen).double()
    context = torch.randn(50, 3, generator=gen, dtype=torch.float64) if kwargs.get("context_size") else None
    with torch.no_grad():
        expected = model.log_prob(x, context)
        frozen = model.frozen_log_prob(50)
        for rows in (slice(0, 7), slice(7, 50)):
            c = None if context is None else context[rows]
            torch.testing.assert_close(frozen(x[rows], c), expected[rows], rtol=1e-12, atol=1e-12)


def test_frozen_log_prob_of_a_context_model_refuses_no_context():
    """frozen_log_prob skips the input checks; a missing context still ends in a message, not an AttributeError."""
    model = MADE(4, [8], context_size=2).eval()
    with torch.no_grad(), pytest.raises(ValueError, match="takes a context of 2 values per row; none was given"):
        model.frozen_log_prob(3)(torch.zeros(3, 4))


def test_log_prob_compiles_without_graph_breaks_when_validation_is_off():
    """Value checks need the host (a graph break each); with validation off the whole pass is one graph."""
    import torch._dynamo as dynamo

    model = MADE(8, [16], blocks=["residual"], direct=True, num_masks=2)
    x = torch.randint(0, 2, (4, 8)).float()
    model.validate_args = False
    dynamo.reset()
    assert dynamo.explain(model.log_prob)(x).graph_break_count == 0
    compiled = torch.compile(lambda v: model.log_prob(v, validate_args=False), backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x), model.log_prob(x))


def test_a_nan_context_is_refused_under_validate_args():
    model = MADE(4, [8], context_size=2)
    x, context = torch.zeros(3, 4), torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="context contains NaN"):
        model.log_prob(x, context)
    with pytest.raises(ValueError, match="context contains NaN"):
        model.sample(3, context)
    assert torch.isnan(model.log_prob(x, context, validate_args=False)[1])  # off: the caller's choice
