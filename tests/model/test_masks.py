import pytest
import torch

from made import MADE
from made.model.masks import (
    check_path_counts,
    hidden_degrees,
    hidden_mask,
    input_degrees,
    make_ordering,
    output_mask,
)


def test_orderings():
    assert make_ordering(5).tolist() == [0, 1, 2, 3, 4]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(make_ordering(7, "random", g1), make_ordering(7, "random", g2))
    assert sorted(make_ordering(7, "random", g1).tolist()) == list(range(7))
    assert make_ordering(3, [2, 0, 1]).tolist() == [2, 0, 1]
    for bad in ([0, 0, 1], [0, 1], [1, 2, 3]):
        with pytest.raises(ValueError, match="permutation"):
            make_ordering(3, bad)
    with pytest.raises(ValueError):
        make_ordering(0)
    with pytest.raises(ValueError):
        make_ordering(3, "backwards")


def test_input_degrees_are_positions():
    ordering = torch.tensor([2, 0, 1])
    # input 2 comes first (degree 1), input 0 second, input 1 third
    assert input_degrees(ordering).tolist() == [2, 3, 1]


@pytest.mark.parametrize("rule", ["random", "even"])
def test_hidden_degrees_range(rule):
    g = torch.Generator().manual_seed(0)
    deg = hidden_degrees(200, 10, low=3, rule=rule, generator=g)
    assert deg.min() >= 3 and deg.max() <= 9
    assert set(deg.tolist()) == set(range(3, 10))  # wide enough: every value appears


def test_even_rule_covers_every_degree_exactly_when_wide_enough():
    deg = hidden_degrees(9, 10, low=1, rule="even")
    assert deg.tolist() == list(range(1, 10))


def test_d_equals_one_gives_constant_units():
    deg = hidden_degrees(4, 1, low=1)
    assert deg.tolist() == [0, 0, 0, 0]


def test_mask_rules_and_path_counts():
    d_in = torch.tensor([1, 2, 3])
    h = torch.tensor([1, 2, 2])
    m1 = hidden_mask(h, d_in)
    assert m1.tolist() == [[True, False, False], [True, True, False], [True, True, False]]
    m2 = output_mask(d_in, h)
    assert m2.tolist() == [[False, False, False], [True, False, False], [True, True, True]]
    counts = m2.double() @ m1.double()  # paths through the hidden layer
    assert counts.tolist() == [[0, 0, 0], [1, 0, 0], [3, 2, 0]]
    check_path_counts(counts, d_in, d_in)


def test_check_detects_a_leak():
    d = torch.tensor([1, 2, 3])
    leaky = hidden_mask(d, d).double()  # non-strict output rule lets x_d reach output d
    with pytest.raises(ValueError, match="not autoregressive"):
        check_path_counts(leaky, d, d)
    direct = output_mask(d, d).double() + torch.ones(3, 3, dtype=torch.float64)  # a direct link to every output
    with pytest.raises(ValueError, match="output 0 .* is reached from input 0"):
        check_path_counts(direct, d, d)


@pytest.mark.parametrize("direct", [False, True])
def test_model_path_counts_are_the_product_of_its_masks(direct):
    model = MADE(6, [8, 7], ordering="random", direct=direct, seed=2)
    counts = model.output.mask.double() @ model.hidden[1].mask.double() @ model.hidden[0].mask.double()
    if direct:
        counts = counts + model.direct.mask.double()
    assert torch.equal(model.path_counts(), counts)
    model.check_autoregressive()
    leaky = model.masks(0)
    leaky.links["output"].fill_(True)  # every output sees every unit of the last hidden layer
    with pytest.raises(ValueError, match="not autoregressive"):
        model.check_autoregressive(leaky)
