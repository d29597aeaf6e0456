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
