import itertools
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from made import MADE
from made.data import DataError, Splits, load_dataset
from made.data.columns import (
    COLUMN_KINDS,
    ColumnKind,
    check_fitted_schema,
    decode,
    dimension_names,
    encode,
    encode_observed,
    encode_splits,
    family_config,
    fit_schema,
    in_original_units,
    infer_schema,
    log_scales,
    model_columns,
    onehot_widths,
    read_schema,
    register_column_kind,
    resolve_schema,
)
from made.data.columns.kinds import Where
from made.data.fields import SchemaError
from made.inference.evaluate import NLLResult

SHARED = Path("/work/shared/data")
if not SHARED.exists():
    SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"


def table(n: int = 200, seed: int = 0) -> np.ndarray:
    """Columns: binary, three integer levels {3, 7, 9}, a real column, and a one-hot group of three."""
    rng = np.random.RandomState(seed)
    group = np.eye(3)[rng.randint(0, 3, n)]
    return np.c_[rng.randint(0, 2, n), rng.choice([3, 7, 9], n), rng.randn(n) * 4 + 10, group].astype(np.float32)


def test_inference_rule():
    data = table()
    assert (
        infer_schema(data) == [{"type": "binary"}, {"type": "categorical"}, {"type": "real"}] + [{"type": "binary"}] * 3
    )
    grouped = infer_schema(data, onehot=True)
    assert grouped == [{"type": "binary"}, {"type": "categorical"}, {"type": "real"}, {"type": "onehot", "width": 3}]
    assert infer_schema(data, max_categories=2)[1] == {"type": "real"}  # too many levels for a categorical


def test_onehot_widths_cut_at_the_first_shared_row():
    bits = np.array([[1, 0, 0, 1, 0], [0, 1, 0, 0, 1], [0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    assert onehot_widths(bits) == [3, 2]  # the all-zero row 3 is the first group's fourth value
    assert onehot_widths(np.ones((4, 3))) == [1, 1, 1]


def test_fit_encode_decode_round_trip():
    data = table()
    schema = fit_schema(infer_schema(data, onehot=True), data)
    assert schema[1]["values"] == [3.0, 7.0, 9.0]
    assert schema[2]["mean"] == pytest.approx(float(data[:, 2].mean())) and schema[2]["std"] > 0
    assert schema[3]["codes"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    encoded = encode(schema, data)
    assert encoded.shape == (200, 4)
    assert set(encoded[:, 1].tolist()) == {0.0, 1.0, 2.0} and set(encoded[:, 3].tolist()) == {0.0, 1.0, 2.0}
    assert abs(encoded[:, 2].mean()) < 1e-5 and abs(encoded[:, 2].std() - 1) < 1e-4
    np.testing.assert_allclose(decode(schema, encoded), data, rtol=1e-6, atol=1e-5)
    assert json.loads(json.dumps(schema)) == schema
    assert dimension_names(schema) == ["1", "2", "3", "4-6"]


def test_onehot_group_keeps_unseen_onehot_codes_and_refuses_other_unseen_codes():
    train = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)  # column 3 never on in training
    schema = fit_schema([{"type": "onehot", "width": 3}], train)
    assert schema[0]["codes"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0]]
    assert encode(schema, np.array([[0, 0, 1], [0, 0, 0]], dtype=np.float32))[:, 0].tolist() == [2.0, 3.0]
    with pytest.raises(DataError, match=r"test split: row 2, column 1: code \[1, 1, 0\] was not seen"):
        encode(schema, np.array([[0, 0, 1], [1, 1, 0]], dtype=np.float32), "test split")
    onehot_only = fit_schema([{"type": "onehot", "width": 2}], np.array([[1, 0], [0, 1]], dtype=np.float32))
    with pytest.raises(DataError, match="not seen in the training split"):
        encode(onehot_only, np.array([[0, 0]], dtype=np.float32))


def test_unseen_categorical_value_and_bad_schemas(tmp_path):
    schema = fit_schema([{"type": "categorical"}], np.array([[1.0], [2.0]], dtype=np.float32))
    with pytest.raises(DataError, match=r"value 5 was not seen in the training split \(known: 1, 2\)"):
        encode(schema, np.array([[5.0]], dtype=np.float32))
    declared = fit_schema([{"type": "categorical", "categories": 4}], np.array([[1.0]], dtype=np.float32))
    assert declared[0]["values"] == [0.0, 1.0, 2.0, 3.0]
    with pytest.raises(DataError, match="describes 2 data columns"):
        fit_schema([{"type": "binary"}, {"type": "real"}], np.zeros((3, 3), dtype=np.float32))
    with pytest.raises(DataError, match="constant"):
        fit_schema([{"type": "real"}], np.full((3, 1), 2.5, dtype=np.float32))
    with pytest.raises(DataError, match=r"schema\[0\]: unknown keys"):
        fit_schema([{"type": "real", "scale": 2}], np.zeros((3, 1), dtype=np.float32))
    with pytest.raises(DataError, match="is not binary"):
        encode([{"type": "binary"}], np.array([[2.0]], dtype=np.float32))
    path = tmp_path / "schema.json"
    path.write_text(json.dumps({"columns": [{"type": "real"}]}))
    assert read_schema(path) == [{"type": "real"}]
    path.write_text("[oops")
    with pytest.raises(DataError, match="not valid JSON"):
        read_schema(path)


def test_family_for_each_kind_of_schema():
    data = table()
    assert family_config(resolve_schema("binary", data[:, :1])) == "bernoulli"
    onehot = resolve_schema("onehot", data[:, 3:])
    assert family_config(onehot) == {"name": "categorical", "categories": [3]}
    assert family_config(resolve_schema("auto", data[:, 2:3], components=3))["name"] == "mog"
    mixed = family_config(resolve_schema("onehot", data, components=2))
    assert mixed["name"] == "mixed"
    assert [c["type"] for c in mixed["columns"]] == ["binary", "categorical", "real", "categorical"]


def test_nll_in_original_units_adds_the_log_of_each_std():
    """A standardized Gaussian density, moved back, is the density of the raw data."""
    data = table()
    schema = resolve_schema("auto", data[:, 2:3])
    x = torch.from_numpy(data[:, 2]).double()
    z = (x - schema[0]["mean"]) / schema[0]["std"]  # what encode gives, in float64
    standardized = -torch.distributions.Normal(0.0, 1.0).log_prob(z)
    mean, std = (torch.tensor(schema[0][k], dtype=torch.float64) for k in ("mean", "std"))
    raw = -torch.distributions.Normal(mean, std).log_prob(x)
    result = NLLResult(float(standardized.mean()), 0.1, 0.0, 200)
    moved = in_original_units(result, schema)
    assert moved.nll == pytest.approx(float(raw.mean()), rel=1e-9)
    assert moved.stderr == 0.1 and moved.bits_per_dim == pytest.approx(moved.nll / math.log(2))
    assert log_scales(schema).tolist() == [math.log(schema[0]["std"])]


def test_categorical_likelihood_of_a_code_is_that_of_the_bits():
    """Valid codes and categories are in one-to-one correspondence, so the categorical model is a
    distribution over bit vectors: it sums to one over all 2^5 of them (invalid codes have
    probability zero and are refused), and each code's probability is its category's."""
    bits = np.array([[1, 0, 0, 0, 1], [0, 1, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 1, 1, 0]], dtype=np.float32)
    schema = resolve_schema("onehot", bits)
    assert [len(c["codes"]) for c in schema] == [4, 2]  # three one-hot codes and all-zero; two one-hot codes
    model = randomize_double(MADE(2, [8], family=family_config(schema), direct=True))
    total, seen = 0.0, set()
    for row in itertools.product([0.0, 1.0], repeat=5):
        row = np.array([row], dtype=np.float32)
        try:
            x = encode(schema, row)
        except DataError:
            continue
        np.testing.assert_array_equal(decode(schema, x), row)
        seen.add(tuple(x[0].tolist()))
        with torch.no_grad():
            total += float(model.log_prob(torch.from_numpy(x).double()).exp())
    assert seen == set(itertools.product(range(4), range(2)))
    assert abs(total - 1) < 1e-12


def randomize_double(model: MADE) -> MADE:
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.0)
    return model.double()


@pytest.mark.skipif(not (SHARED / "dna.npz").exists(), reason="shared data not present")
@pytest.mark.parametrize("name, dims, categories", [("dna", 60, {4}), ("mushrooms", 21, None)])
def test_paper_sets_split_into_their_attributes(name, dims, categories):
    splits = load_dataset(name, SHARED)
    schema = resolve_schema("onehot", splits.train)
    assert len(schema) == dims
    encoded = encode_splits(schema, splits)  # every valid and test code maps to a category
    assert encoded.test.shape == (len(splits.test), dims)
    np.testing.assert_array_equal(decode(schema, encoded.test), splits.test)
    if categories:
        assert {len(c["codes"]) for c in schema} == categories  # three one-hot bits and the all-zero pattern
    else:
        assert sum(1 for c in schema if c["type"] == "onehot") == 20  # and the constant column stays binary


def test_encode_splits_keeps_labels_and_names_the_split():
    data = table(30)
    splits = Splits("toy", data, data[:5], data[:5].copy(), labels=(np.zeros(30), np.zeros(5), np.zeros(5)))
    schema = resolve_schema("auto", data)
    encoded = encode_splits(schema, splits)
    assert encoded.labels is splits.labels and encoded.train.shape == (30, 6)
    bad = data[:5].copy()
    bad[1, 1] = 4.0
    with pytest.raises(DataError, match="toy: the test split, row 2, column 2"):
        encode_splits(schema, Splits("toy", data, data[:5], bad))
    lines = (np.arange(30) + 2, np.arange(5) + 40, np.array([9, 3, 17, 5, 6]))  # a shuffled file's lines
    with pytest.raises(DataError, match="toy: line 3, column 2: value 4 was not seen"):
        encode_splits(schema, Splits("toy", data, data[:5], bad, lines=lines, unit="line"))


def test_a_stored_schema_is_checked_against_the_model():
    data = table()
    schema = resolve_schema("onehot", data, components=2)
    family = MADE(len(schema), [8], family=family_config(schema)).family
    check_fitted_schema(json.loads(json.dumps(schema)), family, "config.json: schema")

    def tampered(index, **change):
        copy = json.loads(json.dumps(schema))
        copy[index].update(change)
        return copy

    for bad, message in [
        ({"not": "a list"}, "must be a list"),
        (tampered(0, type="ordinal"), r"schema\[0\] must be an object with type"),
        (tampered(2, std=0.0), "outside their allowed range"),
        (tampered(2, std="1"), r"schema\[2\].std must be a number"),
        (tampered(1, values=[3.0, 3.0, 9.0]), "outside their allowed range"),
        (tampered(3, codes=[[1, 0], [0, 1]]), "outside their allowed range"),
        (tampered(1, values=[3.0, 7.0, 9.0, 11.0]), "does not describe the dimensions"),
        (tampered(2, components=3), "does not describe the dimensions"),
        (tampered(0, extra=1), "unknown keys"),
    ]:
        with pytest.raises(SchemaError, match=message):
            check_fitted_schema(bad, family, "config.json: schema")


@pytest.mark.parametrize(
    "column, message",
    [
        ({"type": "categorical", "values": ["a", "b"]}, r"schema\[0\].values must be a list"),
        ({"type": "real", "std": -1.0}, "outside their allowed range"),
        ({"type": "onehot", "width": 2, "codes": [[1, 0], [1, 0]]}, "outside their allowed range"),
        ({"type": "onehot", "width": 2, "codes": [[1, 2], [0, 1]]}, "outside their allowed range"),
        ({"type": "real", "components": 0}, "outside their allowed range"),
    ],
)
def test_user_written_values_are_checked(column, message):
    with pytest.raises(DataError, match=message):
        fit_schema(
            [column],
            np.array([[0.0], [1.0]], dtype=np.float32)
            if column["type"] != "onehot"
            else np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32),
        )


@pytest.mark.parametrize("count", ["3", 3.5, 0, -2, True, None])
def test_a_category_count_must_be_a_positive_integer(count):
    with pytest.raises(DataError) as err:
        fit_schema([{"type": "categorical", "categories": count}], np.array([[0.0], [1.0]]))
    assert str(err.value) == f"schema[0]: categories must be a positive integer (a count), got {count!r}"


def test_a_categorical_schema_on_a_real_column_gives_a_short_message():
    train = np.random.RandomState(0).randn(3000, 1)
    schema = fit_schema([{"type": "categorical"}], train)
    with pytest.raises(DataError) as err:
        encode(schema, np.array([[0.5]]), "x.csv", lambda row: f"line {row + 2}")
    message = str(err.value)
    assert message.startswith("x.csv: line 2, column 1: value 0.5 was not seen in the training split (known: ")
    assert message.endswith(", ... (3000 in all))") and len(message) < 400 and "\n" not in message


# ------------------------------------------------------------------ registry
@pytest.fixture
def column_kinds() -> Iterator[dict]:
    """The column-kind registry, restored after the test so a stand-in kind does not leak."""
    saved = dict(COLUMN_KINDS)
    yield COLUMN_KINDS
    COLUMN_KINDS.clear()
    COLUMN_KINDS.update(saved)


def define_count() -> None:
    """A stand-in column kind, one class and one registration: whole numbers from a fitted
    ``offset``, modelled as a categorical column of ``categories`` values."""

    @register_column_kind("count")
    class Count(ColumnKind):
        keys = frozenset({"type", "offset", "categories"})
        hints = {"type": str, "offset": int, "categories": int}

        def fit(self, column: dict, block: np.ndarray, index: int, start: int, components: int) -> dict:
            column.setdefault("offset", int(block.min()))
            column.setdefault("categories", int(block.max()) - column["offset"] + 1)
            return column

        def fitted_ok(self, column: dict) -> bool:
            return column["categories"] >= 1

        def encode(self, column: dict, block: np.ndarray, source: str, start: int, where: Where) -> np.ndarray:
            shifted = block[:, 0] - column["offset"]
            bad = (shifted < 0) | (shifted >= column["categories"]) | (shifted != np.round(shifted))
            if bad.any():
                raise DataError(f"{source}: {where(int(np.argmax(bad)))}, column {start + 1}: not a known count")
            return shifted

        def decode(self, column: dict, values: np.ndarray) -> np.ndarray:
            return (values + column["offset"])[:, None]

        def placeholder(self, column: dict) -> list[float]:
            return [float(column["offset"])]

        def model_column(self, column: dict) -> dict:
            return {"type": "categorical", "categories": column["categories"]}


def test_a_registered_column_kind_is_fitted_encoded_decoded_and_modelled(column_kinds):
    define_count()
    train = np.array([[0, 3, 1], [1, 5, 0], [1, 4, 0], [0, 3, 0]], dtype=np.float32)
    schema = fit_schema([{"type": "binary"}, {"type": "count"}, {"type": "binary"}], train)
    assert schema[1] == {"type": "count", "offset": 3, "categories": 3}
    encoded = encode(schema, train)
    assert encoded[:, 1].tolist() == [0.0, 2.0, 1.0, 0.0]
    np.testing.assert_array_equal(decode(schema, encoded), train)
    gapped, hidden = train.copy(), np.zeros(train.shape, dtype=bool)
    gapped[1, 1], hidden[1, 1] = np.nan, True
    filled, observed = encode_observed(schema, gapped, hidden)
    assert observed[:, 1].tolist() == [True, False, True, True] and filled[1, 1] == 0.0  # the placeholder
    with pytest.raises(DataError, match="test: row 2, column 2: not a known count"):
        encode(schema, np.array([[0, 3, 0], [0, 6, 0]], dtype=np.float32), "test")
    assert model_columns(schema)[1] == {"type": "categorical", "categories": 3}
    config = family_config(schema)
    assert config["name"] == "mixed" and dimension_names(schema) == ["1", "2", "3"]
    model = MADE(3, [8], family=config, seed=0).double()
    check_fitted_schema(json.loads(json.dumps(schema)), model.family, "config.json: schema")
    every = torch.tensor(list(itertools.product([0, 1], range(3), [0, 1])), dtype=torch.float64)
    with torch.no_grad():
        assert abs(float(model.log_prob(every).exp().sum()) - 1.0) < 1e-12
    with pytest.raises(DataError, match=r"schema\[0\]: unknown keys \['width'\] for type count"):
        fit_schema([{"type": "count", "width": 2}], train[:, 1:2])
    with pytest.raises(SchemaError, match=r"schema\[1\] has values outside their allowed range"):
        check_fitted_schema([schema[0], {**schema[1], "categories": 0}, schema[2]], model.family, "schema")
    only_counts = [{"type": "count", "offset": 0, "categories": 4}]
    assert family_config(only_counts) == {"name": "categorical", "categories": [4]}


def test_schema_types_come_from_the_registry(column_kinds):
    with pytest.raises(DataError, match=r"expected an object with type binary, categorical, real, onehot, got"):
        fit_schema([{"type": "count"}], np.zeros((2, 1)))
    define_count()
    assert fit_schema([{"type": "count"}], np.array([[2.0], [4.0]]))[0]["categories"] == 3
    with pytest.raises(ValueError, match="'count' is already registered"):
        define_count()
