import pytest
import torch
import torch.nn.functional as F

from made.fast.blocks import BlockTriangular, StaircaseProduct, TrainingPlan, find_staircase
from made.model.masks import hidden_mask, output_mask


def degree_mask(out: int, inp: int, d: int, strict: bool, seed: int, context: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    deg_out = torch.randint(1 if strict else 0, d, (out,), generator=gen) + int(strict)
    deg_in = torch.cat([torch.randint(1, d, (inp - context,), generator=gen), torch.zeros(context, dtype=torch.long)])
    return (output_mask if strict else hidden_mask)(deg_out, deg_in)


MASKS = [
    dict(out=300, inp=200, d=50, strict=False, seed=0),
    dict(out=257, inp=31, d=30, strict=True, seed=1),  # output layer: some rows read nothing
    dict(out=64, inp=90, d=20, strict=False, seed=2, context=7),  # context columns reach every row
    dict(out=1, inp=5, d=3, strict=True, seed=3),
]


@pytest.mark.parametrize("spec", MASKS)
def test_staircase_groups_read_every_allowed_input(spec):
    mask = degree_mask(**spec)
    stairs = find_staircase(mask)
    assert stairs is not None
    rows = torch.arange(mask.shape[0]) if stairs.row_order is None else stairs.row_order
    cols = torch.arange(mask.shape[1]) if stairs.col_order is None else stairs.col_order
    sorted_mask = mask[rows][:, cols]
    assert stairs.groups[0][0] == 0 and stairs.groups[-1][1] == mask.shape[0]
    for (start, stop, prefix), nxt in zip(stairs.groups, [*stairs.groups[1:], None]):
        assert start < stop and (nxt is None or nxt[0] == stop)
        assert not sorted_mask[start:stop, prefix:].any()
    if stairs.row_inverse is not None:
        assert torch.equal(stairs.row_order[stairs.row_inverse], torch.arange(mask.shape[0]))


def test_masks_that_are_not_nested_have_no_staircase():
    assert find_staircase(torch.tensor([[True, False], [False, True]])) is None


@pytest.mark.parametrize("spec", MASKS)
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (300,), (2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_block_product_equals_the_masked_product(spec, shape, bias):
    mask = degree_mask(**spec)
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(mask.shape, generator=gen, dtype=torch.float64)
    b = torch.randn(mask.shape[0], generator=gen, dtype=torch.float64) if bias else None
    x = torch.randn(*shape, mask.shape[1], generator=gen, dtype=torch.float64)
    product = BlockTriangular(weight * mask, b, find_staircase(mask))
    expected = F.linear(x, weight * mask, b)
    torch.testing.assert_close(product(x), expected, rtol=1e-12, atol=1e-12)


def test_blocks_skip_most_of_the_masked_out_half():
    mask = degree_mask(out=2000, inp=2000, d=784, strict=False, seed=0)
    assert float(mask.double().mean()) == pytest.approx(0.5, abs=0.02)
    assert find_staircase(mask).fraction < 0.6


@pytest.mark.parametrize("spec", MASKS)
@pytest.mark.parametrize("shape", [(0,), (1,), (7,), (2, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_staircase_training_product_and_its_gradients_equal_the_plain_product(spec, shape, bias):
    mask = degree_mask(**spec)
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(mask.shape, generator=gen, dtype=torch.float64, requires_grad=True)
    b = torch.randn(mask.shape[0], generator=gen, dtype=torch.float64, requires_grad=True) if bias else None
    x = torch.randn(*shape, mask.shape[1], generator=gen, dtype=torch.float64, requires_grad=True)
    upstream = torch.randn(*shape, mask.shape[0], generator=gen, dtype=torch.float64)
    params = [x, weight, *([b] if bias else [])]
    expected = F.linear(x, weight * mask, b)
    expected_grads = torch.autograd.grad(expected, params, upstream)
    plan = TrainingPlan(find_staircase(mask), mask.to(weight.dtype))
    got = StaircaseProduct.apply(x, weight, b, plan)
    got_grads = torch.autograd.grad(got, params, upstream)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    for g, e in zip(got_grads, expected_grads):
        torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)
    assert torch.all(got_grads[1][~mask] == 0)


def test_staircase_columns_are_read_by_suffixes_of_the_sorted_rows():
    mask = degree_mask(out=300, inp=200, d=50, strict=False, seed=0)
    stairs = find_staircase(mask)
    sorted_mask = mask[stairs.row_order][:, stairs.col_order]
    assert torch.equal(sorted_mask, torch.arange(200)[None, :] < sorted_mask.sum(1)[:, None])
    assert stairs.col_groups[0][1] == 0 and stairs.col_groups[-1][2] == 200
    for first, start, stop in stairs.col_groups:
        assert not sorted_mask[:first, start:stop].any()
        assert first == 300 or sorted_mask[first, start]
