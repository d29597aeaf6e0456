import pytest
import torch

from made import MADE
from made.model.pool import MaskPool


def test_the_pool_is_a_part_the_model_holds():
    model = MADE(6, [12, 12], num_masks=4, seed=3)
    assert isinstance(model.pool, MaskPool) and not isinstance(model, MaskPool)
    assert model.mask_seeds == list(model.pool.seeds) == model.mask_pool[1:].tolist()
    assert int(model.mask_pool[0]) == model.pool.seed == 3


@pytest.mark.parametrize("num_masks", [1, 3, "unlimited"])
def test_masks_and_training_steps_are_pure_functions_of_seed_and_step(num_masks):
    first, second = (MADE(6, [12], num_masks=num_masks, seed=5) for _ in range(2))
    before = {k: v.clone() for k, v in first.state_dict().items()}
    for step in range(5):
        assert first.pool.training_seed(step) == second.pool.training_seed(step)
        seed = first.pool.seed_of(step)
        ours, theirs = first.pool.masks(seed), second.pool.masks(seed)
        assert ours.links.keys() == theirs.links.keys()
        assert all(torch.equal(ours.links[k], theirs.links[k]) for k in ours.links)
    assert all(torch.equal(v, first.state_dict()[k]) for k, v in before.items())  # values: the model is unchanged
    if num_masks == 1:
        assert first.pool.training_seed(7) is None  # one fixed mask
    first.mask_for_step(4)
    second.set_mask_seed(second.pool.training_seed(4) or second.mask_seeds[0])
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(first.masked_layers(), second.masked_layers()))


def test_a_loaded_state_brings_its_pool_seeds():
    saved = MADE(6, [12], num_masks=3, seed=1)
    saved.mask_seeds = [11, 12, 13]
    loaded = MADE(6, [12], num_masks=3, seed=1)
    loaded.load_state_dict(saved.state_dict())
    assert loaded.mask_seeds == [11, 12, 13] == loaded.mask_pool[1:].tolist()
    loaded.set_mask(1), saved.set_mask(1)
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(saved.masked_layers(), loaded.masked_layers()))
    assert int(loaded.mask_seed) == 12
