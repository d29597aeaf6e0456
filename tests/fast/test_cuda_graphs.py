"""CUDA graphs: the sampler draws as MADE.sample does, replayed evaluation equals the plain path, refused where
they cannot be right."""

import pytest
import torch

from made import MADE
from made.fast.replay import GraphedBatches
from made.inference.graphed import GraphedSampler

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def test_refuses_a_cpu_model_and_bad_sizes():
    model = MADE(6, [16])
    with pytest.raises(ValueError, match="CUDA device"):
        GraphedSampler(model, 4)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_samples"):
            GraphedSampler(model, bad)


@cuda
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("hidden, direct", [([32], False), ([32, 24], True)])
def test_draws_equal_made_sample(dtype, hidden, direct):
    torch.manual_seed(0)
    model = MADE(12, hidden, direct=direct).to("cuda", dtype)
    sampler = GraphedSampler(model, 50)
    for seed in (1, 2):  # replayed twice: the graph reads new noise each time
        mine = sampler.sample(generator=torch.Generator("cuda").manual_seed(seed))
        theirs = model.sample(50, generator=torch.Generator("cuda").manual_seed(seed))
        assert torch.equal(mine, theirs)


@cuda
def test_conditional_draws_and_stale_weights_refused():
    torch.manual_seed(0)
    model = MADE(8, [32], context_size=3).to("cuda", torch.float64)
    context = torch.randn(20, 3, device="cuda", dtype=torch.float64)
    sampler = GraphedSampler(model, 20)
    mine = sampler.sample(context, generator=torch.Generator("cuda").manual_seed(3))
    theirs = model.sample(20, context, generator=torch.Generator("cuda").manual_seed(3))
    assert torch.equal(mine, theirs)
    with pytest.raises(ValueError, match="context"):
        sampler.sample()
    with torch.no_grad():
        model.output.weight.add_(1.0)
    with pytest.raises(ValueError, match="weights changed"):
        sampler.sample(context)


def test_replay_is_chosen_only_on_cuda_with_enough_batches():
    from made.fast.dispatch import GRAPH_MIN_BATCHES, fast_path, replay_pays

    assert not replay_pays(torch.device("cpu"), 100)
    assert replay_pays(torch.device("cuda"), GRAPH_MIN_BATCHES)
    assert not replay_pays(torch.device("cuda"), GRAPH_MIN_BATCHES - 1)
    with fast_path("off"):
        assert not replay_pays(torch.device("cuda"), 100)
    with pytest.raises(ValueError, match="CUDA device"):
        GraphedBatches(lambda x, c: x.sum(1), torch.zeros(3, 2))


@cuda
@pytest.mark.parametrize("ensemble", [None, 3])
def test_replayed_evaluation_equals_the_plain_path(ensemble):
    from made.fast.dispatch import fast_path
    from made.inference.evaluate import per_example_nll

    torch.manual_seed(0)
    model = MADE(10, [40, 40], direct=True, num_masks=4, context_size=2).to("cuda", torch.float64)
    data = torch.randint(0, 2, (1037, 10), device="cuda").double()  # 10 full batches of 100 and a partial one
    context = torch.randn(1037, 2, device="cuda", dtype=torch.float64)
    replayed = per_example_nll(model, data, 100, ensemble, context)
    with fast_path("off"):
        plain = per_example_nll(model, data, 100, ensemble, context)
    torch.testing.assert_close(replayed, plain, rtol=1e-12, atol=1e-12)
    # the recording itself works for the model (batched_nll would fall back to eager if not)
    log_prob = model.frozen_log_prob(200)
    graphed = GraphedBatches(log_prob, data[:100], context[:100])
    torch.testing.assert_close(
        graphed(data[100:200], context[100:200]), log_prob(data[100:200], context[100:200]), rtol=1e-12, atol=1e-12
    )
