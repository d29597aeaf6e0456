import itertools

import numpy as np
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


def mixed_csv(path, n=120, seed=0):
    """A CSV with a header and a binary, a categorical and a real column (the real one depends on the binary)."""
    rng = np.random.RandomState(seed)
    a = rng.randint(0, 2, n)
    rows = np.c_[a, rng.choice([3, 7, 9], n), rng.randn(n) * 5 + 100 + 10 * a]
    np.savetxt(path, rows, delimiter=",", fmt=["%d", "%d", "%.5f"], header="a,b,c", comments="")
    return rows
