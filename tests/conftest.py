import itertools

import pytest
import torch


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global RNG state and leaves it untouched."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        yield


def all_binary(d: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """All 2^d binary vectors, one per row."""
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)), dtype=dtype)


def total_variation(samples: torch.Tensor, exact: torch.Tensor) -> float:
    """Total variation between the empirical law of binary ``samples`` and ``exact`` over all_binary(d)."""
    d = samples.shape[1]
    codes = (samples.double() @ (2.0 ** torch.arange(d - 1, -1, -1, dtype=torch.float64))).long()
    freq = torch.bincount(codes, minlength=2**d).double() / samples.shape[0]
    return float(0.5 * (freq - exact).abs().sum())
