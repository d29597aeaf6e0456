"""The CUDA-graph sampler: draws as MADE.sample does, refused where it cannot be right."""

import pytest
import torch

from made import MADE
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


@cuda
def test_a_fused_optimizer_step_makes_the_sampler_stale():
    """Fused kernels update the weights without bumping their version counters; the backward is counted."""
    torch.manual_seed(0)
    model = MADE(8, [32]).cuda()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1, fused=True)
    sampler = GraphedSampler(model, 10)
    model.log_prob(torch.ones(4, 8, device="cuda")).sum().backward()
    optimizer.step()
    with pytest.raises(ValueError, match="weights changed"):
        sampler.sample()
