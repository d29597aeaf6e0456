import pytest
import torch

from made.nn import MaskedLinear


def test_mask_is_a_buffer_that_moves_and_saves():
    layer = MaskedLinear(3, 2)
    assert "mask" in layer.state_dict()
    layer.set_mask(torch.tensor([[True, False, False], [False, True, True]]))
    double = layer.double()
    assert double.weight.dtype == torch.float64 and double.mask.dtype == torch.bool
    x = torch.randn(4, 3, dtype=torch.float64)
    expected = x @ (layer.weight * layer.mask).T + layer.bias
    torch.testing.assert_close(layer(x), expected)


def test_masked_weights_get_no_gradient_through_the_mask():
    layer = MaskedLinear(3, 2, conditioning=True)
    mask = torch.tensor([[True, False, False], [False, True, True]])
    layer.set_mask(mask)
    layer(torch.randn(5, 3)).sum().backward()
    assert torch.all(layer.weight.grad[~mask] == 0)
    assert torch.all(layer.conditioning.grad[~mask] == 0)
    assert torch.all(layer.conditioning.grad[mask] != 0)


def test_wrong_mask_shape_rejected():
    with pytest.raises(ValueError, match="mask shape"):
        MaskedLinear(3, 2).set_mask(torch.ones(3, 2, dtype=torch.bool))
