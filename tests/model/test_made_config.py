"""MADE's settings, one checked dataclass: the constructor and model files refuse the same values, in one line,
and model.config is the MADEConfig that rebuilds the model."""

import inspect
import re
from dataclasses import FrozenInstanceError, fields

import numpy as np
import pytest

from made import MADE
from made.data.fields import SchemaError
from made.io.checkpoint import check_model_settings
from made.model.config import MAX_POOL, MAX_SEED, MADEConfig
from made.model.settings import defaults

# Values the constructor used to take silently (a float seed truncated, True as one mask, a pool its own
# files refuse) or refuse with an error that named nothing (a negative or huge seed, a float width).
BAD = [
    ("num_inputs", 5.0),
    ("num_inputs", 0),
    ("hidden_sizes", 5),
    ("hidden_sizes", [True]),
    ("num_masks", True),
    ("num_masks", 0),
    ("num_masks", MAX_POOL + 1),
    ("num_masks", "many"),
    ("seed", -1),
    ("seed", 1.5),
    ("seed", MAX_SEED + 1),
    ("seed", "1"),
    ("activation", "gelu"),
    ("resample", "some"),
    ("degrees", "x"),
    ("context_size", 1.5),
    ("context_size", -1),
    ("init", "xavier"),
    ("blocks", ["dense"]),
    ("dropout", True),
    ("dropout", 1.0),
    ("dropout", "0.5"),
]


@pytest.mark.parametrize(("name", "value"), BAD)
def test_the_constructor_refuses_a_bad_value_naming_its_keyword(name, value):
    arguments = {"num_inputs": 4, name: value}
    with pytest.raises(ValueError, match=rf"^{name} must be .+, got {re.escape(repr(value))}$"):
        MADE(**arguments)


GOOD_FILE = {**defaults(MADEConfig), "num_inputs": 4, "hidden_sizes": [8], "blocks": [], "ordering": "natural"}


def test_a_model_file_of_allowed_values_passes():
    check_model_settings(GOOD_FILE, "model")  # raises nothing: the refusals below are the values'


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_model_file_with_a_value_the_constructor_refuses_is_refused_too(name, value):
    with pytest.raises((ValueError, SchemaError), match=f"model.{name}"):
        check_model_settings({**GOOD_FILE, name: value}, "model")


def test_the_largest_allowed_values_and_numpy_numbers_are_taken():
    model = MADE(np.int64(4), [np.int64(8)], seed=MAX_SEED, dropout=np.float32(0.25), context_size=np.int64(0))
    assert model.seed == MAX_SEED and model.hidden_sizes == [8]
    config = MADEConfig(num_masks=MAX_POOL, seed=MAX_SEED, num_inputs=np.int64(1), ordering=np.arange(1))
    assert type(config.num_inputs) is int and config.ordering == (0,)  # stored as plain Python
    assert type(model.config.dropout) is float and model.config.hidden_sizes == (8,)


def test_the_constructor_takes_the_fields_of_the_config_as_its_keywords():
    assert list(inspect.signature(MADE).parameters) == [spec.name for spec in fields(MADEConfig)]
    with pytest.raises(TypeError, match="unexpected keyword argument 'hiden_sizes'"):
        MADE(4, hiden_sizes=[8])


def test_model_config_is_the_frozen_config_that_rebuilds_the_model():
    model = MADE(3, [5], family="categorical", categories=[2, 3, 4], num_masks=2, ordering=[2, 0, 1])
    config = model.config
    assert isinstance(config, MADEConfig) and config.hidden_sizes == (5,) and config.ordering == (2, 0, 1)
    assert config.family == model.family.config() and config.categories is None  # the family carries them
    with pytest.raises(FrozenInstanceError):
        config.seed = 1
    assert MADE(config).config == config == MADE(**config.to_dict()).config
    assert config.to_dict()["hidden_sizes"] == [5] and config.to_dict()["ordering"] == [2, 0, 1]


def test_calling_model_config_is_deprecated_and_still_gives_the_dict():
    model = MADE(3, [4])
    with pytest.warns(DeprecationWarning, match="model.config.to_dict"):
        assert model.config() == model.config.to_dict()
