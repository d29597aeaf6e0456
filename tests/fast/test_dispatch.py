"""made.fast decides which kernel computes a masked layer and owns its caches; it knows nothing of the model."""

import ast
from pathlib import Path

import pytest
import torch

import made.fast
from made import MADE
from made.fast.dispatch import fast_path
from made.inference.evaluate import per_example_nll


def test_made_fast_imports_no_other_package_of_made():
    """Layers: fast <- model <- inference; what fast needs comes as arguments or protocols."""
    imported = set()
    for path in Path(made.fast.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                imported.add((node.level, node.module))
            elif isinstance(node, ast.ImportFrom | ast.Import):
                names = [node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                assert not any(n and n.split(".")[0] == "made" for n in names), (path.name, names)
    assert all(level == 1 for level, _ in imported), imported  # only siblings inside made.fast


def plain(model, x, **kwargs):
    with fast_path("off"), torch.no_grad():
        return model.log_prob(x, **kwargs)


@pytest.mark.parametrize("num_masks", [1, 3])
def test_a_model_used_under_inference_mode_then_called_normally(num_masks):
    """Issue 25: the fast path raised 'Inference tensors ...' on the first normal call."""
    model = MADE(20, [300, 300], num_masks=num_masks, conditioning=True).double()
    x = (torch.rand(64, 20, generator=torch.Generator().manual_seed(0)) < 0.5).double()
    with torch.inference_mode():
        inside = [model.log_prob(x), model.log_prob(x), per_example_nll(model, x, 16)]
        ensemble = model.log_prob(x, ensemble=2) if num_masks > 1 else None
        model.sample(4)
    torch.testing.assert_close(inside[1], plain(model, x), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(inside[2], -plain(model, x), rtol=1e-12, atol=1e-12)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for step in range(3):  # the second step with the same mask trains on the staircase
        model.mask_for_step(step)
        optimizer.zero_grad()
        (-model.log_prob(x).mean()).backward()
        optimizer.step()
    with torch.no_grad():
        torch.testing.assert_close(model.log_prob(x), plain(model, x), rtol=1e-12, atol=1e-12)
        if ensemble is not None:
            torch.testing.assert_close(
                model.log_prob(x, ensemble=2), plain(model, x, ensemble=2), rtol=1e-12, atol=1e-12
            )
    model.sample(4)
