"""CUDA-graph replay of equal batches: chosen only where it pays, equal to the plain path."""

import pytest
import torch

from made import MADE
from made.fast.replay import GraphedBatches

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


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
