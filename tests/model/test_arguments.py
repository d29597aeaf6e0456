"""The table of MADE's keyword values: the constructor and model files refuse the same values, in one line."""

import re

import numpy as np
import pytest

from made import MADE
from made.data.fields import SchemaError
from made.io.checkpoint import check_model_settings
from made.model.arguments import MAX_POOL, MAX_SEED, MODEL_ARGUMENTS, check_model_arguments
from made.model.settings import MODEL_DEFAULTS

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


GOOD_FILE = {**MODEL_DEFAULTS, "num_inputs": 4, "hidden_sizes": [8], "blocks": [], "ordering": "natural"}


def test_a_model_file_of_allowed_values_passes():
    check_model_settings(GOOD_FILE, "model")  # raises nothing: the refusals below are the values'


@pytest.mark.parametrize(("name", "value"), BAD)
def test_a_model_file_with_a_value_the_constructor_refuses_is_refused_too(name, value):
    with pytest.raises((ValueError, SchemaError), match=f"model.{name}"):
        check_model_settings({**GOOD_FILE, name: value}, "model")


def test_the_largest_allowed_values_and_numpy_numbers_are_taken():
    model = MADE(np.int64(4), [np.int64(8)], seed=MAX_SEED, dropout=np.float32(0.25), context_size=np.int64(0))
    assert model.seed == MAX_SEED and model.hidden_sizes == [8]
    check_model_arguments({"num_masks": MAX_POOL, "seed": MAX_SEED, "num_inputs": np.int64(1)})  # raises nothing


def test_every_keyword_of_the_constructor_is_in_the_table():
    assert set(MODEL_ARGUMENTS) == set(MODEL_DEFAULTS) | {"num_inputs"}
