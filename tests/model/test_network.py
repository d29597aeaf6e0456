"""The network description: blocks it builds, and everything that reads it handles them."""

import threading

import pytest
import torch
from conftest import all_binary

import made.fast.dispatch
from made import MADE
from made.io.checkpoint import count_weights
from made.model.network import BLOCK_TYPES, Group, Link, register_block
from made.model.sampling import sample_incremental, sample_naive

FAST_PATHS = ["auto", "dense", "blocks", "off"]


@pytest.fixture
def standin_block():
    """A block type that exists only in this test: two parallel layers from the trunk, summed
    into a third group with the trunk's degrees, plus the trunk itself (a skip)."""

    @register_block("standin")
    def build(trunk: int, group: Group, prefix: str, dropout: float) -> list[Group]:
        degrees = group.degrees if isinstance(group.degrees, int) else trunk
        return [
            Group(group.width, degrees, (Link(trunk, f"{prefix}.0"),)),
            Group(group.width, degrees, (Link(trunk, f"{prefix}.1"),), dropout=dropout),
            Group(
                group.width,
                degrees,
                (Link(trunk + 1, f"{prefix}.2"), Link(trunk + 2, f"{prefix}.3", bias=False)),
                activation=False,
                residual=trunk,
            ),
        ]

    yield "standin"
    del BLOCK_TYPES["standin"]


def models(blocks):
    """Small models over every option that changes the network: depth, pools, orderings, direct,
    conditioning, context and non-binary families."""
    yield MADE(6, [12], blocks=blocks, seed=1)
    yield MADE(6, [12, 10], blocks=blocks, direct=True, ordering="random", seed=2, dropout=0.3)
    yield MADE(6, [12], blocks=blocks, num_masks=3, conditioning=True, seed=3, dropout=0.2)
    yield MADE(5, [16], blocks=blocks, family="categorical", categories=[2, 3, 2, 4, 3], direct=True, seed=4)
    yield MADE(6, [12], blocks=blocks, context_size=2, num_masks="unlimited", seed=5)


@pytest.mark.parametrize("blocks", [["residual"], ["residual", "residual"], "standin"])
def test_every_block_is_autoregressive_and_normalized(blocks, standin_block):
    blocks = [standin_block] * 2 if blocks == "standin" else blocks
    for model in models(blocks):
        model = model.double().eval()
        for seed in model.pool.ensemble_seeds(1 if model.num_masks == 1 else 2):
            model.check_autoregressive(model.masks(seed))
        if model.family.name == "bernoulli":
            x = all_binary(model.num_inputs)
            context = (
                torch.randn(1, model.context_size, dtype=torch.float64).expand(len(x), -1)
                if model.context_size
                else None
            )
            total = model.log_prob(x, context).exp().sum()
            torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64))
            if model.num_masks != 1:
                total = model.log_prob(x, context, ensemble=2).exp().sum()
                torch.testing.assert_close(total, torch.tensor(1.0, dtype=torch.float64))


@pytest.mark.parametrize("blocks", [["residual"], "standin"])
def test_outputs_do_not_depend_on_later_inputs_even_with_dropout(blocks, standin_block):
    """The Jacobian of each output with respect to the inputs at or after its position is zero,
    in training mode too (dropout acts per unit, so it cannot mix degrees)."""
    blocks = [standin_block] if blocks == "standin" else blocks
    model = MADE(6, [14, 12], blocks=blocks, direct=True, ordering="random", dropout=0.5, seed=7).double().train()
    x = torch.rand(3, 6, dtype=torch.float64, requires_grad=True)
    position = torch.empty(6, dtype=torch.long)
    position[model.ordering] = torch.arange(6)
    for d in range(6):
        torch.manual_seed(d)
        (grad,) = torch.autograd.grad(model(x)[:, d].sum(), x)
        later = position >= position[d]
        assert torch.all(grad[:, later] == 0)


@pytest.mark.parametrize("blocks", [["residual"], "standin"])
def test_one_pass_sampler_reads_the_blocks(blocks, standin_block):
    blocks = [standin_block] if blocks == "standin" else blocks
    for model in models(blocks):
        model = model.double().eval()
        uniform = torch.rand(50, model.num_inputs, dtype=torch.float64)
        context = torch.randn(50, model.context_size, dtype=torch.float64) if model.context_size else None
        torch.testing.assert_close(sample_incremental(model, uniform, context), sample_naive(model, uniform, context))


@pytest.mark.parametrize("blocks", [[], ["residual"], "standin"])
def test_weight_count_reads_the_network(blocks, standin_block):
    blocks = [standin_block] * 2 if blocks == "standin" else blocks
    for model in models(blocks):
        weights = sum(layer.weight.numel() for layer in model.masked_layers())
        assert count_weights(model.config.to_dict()) == weights


def test_blocks_and_dropout_round_trip_through_a_run_folder(tmp_path):
    from made.io.run import load_model, save_model

    model = MADE(6, [12], blocks=["residual"], dropout=0.25, num_masks=2, seed=3).double().eval()
    save_model(tmp_path, model)
    loaded, _ = load_model(tmp_path)
    loaded = loaded.double().eval()
    x = all_binary(6)
    torch.testing.assert_close(loaded.log_prob(x), model.log_prob(x))
    assert loaded.config == model.config


def test_unknown_blocks_and_bad_dropout_are_refused():
    with pytest.raises(ValueError, match=r"blocks must be a list, each 'residual', got \['dense'\]"):
        MADE(4, [8], blocks=["dense"])
    with pytest.raises(ValueError, match="at least one hidden layer"):
        MADE(4, [], blocks=["residual"])
    for bad in (-0.1, 1.0, "0.5"):
        with pytest.raises(ValueError, match="dropout"):
            MADE(4, [8], dropout=bad)
    for bad in ([-2], [0], [2.5], [True]):
        with pytest.raises(ValueError, match="hidden_sizes"):
            MADE(4, bad)


def test_masks_are_values_that_leave_the_model_unchanged():
    model = MADE(6, [12], num_masks=4, seed=1).double()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    masks = model.masks(model.mask_seeds[2])
    x = all_binary(6)
    under = model.log_prob(x, ensemble=1)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())
    model.set_mask(2)
    torch.testing.assert_close(
        model.conditional_log_probs(x).sum(1), model.conditional_log_probs(x, None, masks).sum(1)
    )
    model.set_mask(0)
    torch.testing.assert_close(model.log_prob(x), under)


@pytest.mark.parametrize("mode", FAST_PATHS)
def test_ensemble_gradient_on_every_fast_path(mode):
    """Masks evaluated as values: nothing autograd saved is overwritten between forward and backward."""
    model = MADE(6, [16], num_masks=3).double()
    x = torch.randint(0, 2, (5, 6)).double()
    with made.fast.dispatch.fast_path(mode):
        model.log_prob(x, ensemble=3).sum().backward()
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    model.zero_grad()
    with made.fast.dispatch.fast_path("off"):
        expected = torch.logsumexp(
            torch.stack([model.conditional_log_probs(x, None, model.masks(s)).sum(1) for s in model.mask_seeds]), 0
        )
        (expected - torch.log(torch.tensor(3.0))).sum().backward()
    for name, p in model.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, msg=name)


def test_concurrent_callers_see_their_own_masks():
    """One thread evaluates ensembles, samples and imputes while another scores under the model's mask."""
    torch.set_num_threads(1)
    model = MADE(64, [500], num_masks=4, seed=0).eval()
    x = torch.randint(0, 2, (200, 64)).float()
    with torch.no_grad():
        reference = model.log_prob(x)
    stop, errors = threading.Event(), []

    def switcher():
        while not stop.is_set():
            model.log_prob(x[:50], ensemble=4)
            model.sample(8, ensemble=4)
            model.impute(x[:8], torch.rand(8, 64) < 0.5, ensemble=4)

    thread = threading.Thread(target=switcher)
    thread.start()
    try:
        with torch.no_grad():
            for _ in range(30):
                errors.append(float((model.log_prob(x) - reference).abs().max()))
    finally:
        stop.set()
        thread.join()
    assert max(errors) == 0.0


def test_a_pool_state_carries_its_seeds_and_refuses_another_seed():
    model = MADE(6, [12], num_masks=3, seed=1).double()
    model.mask_seeds = [11, 12, 13]  # a checkpoint may store other pool seeds than the seed derives
    other = MADE(6, [12], num_masks=3, seed=1).double()
    other.load_state_dict(model.state_dict())
    assert other.mask_seeds == [11, 12, 13]
    x = all_binary(6)
    torch.testing.assert_close(other.log_prob(x, ensemble=3), model.log_prob(x, ensemble=3))
    for wrong in (MADE(6, [12], num_masks=3, seed=2), MADE(6, [12], num_masks=2, seed=1)):
        with pytest.raises(ValueError, match="same seed and num_masks"):
            wrong.double().load_state_dict(model.state_dict())
