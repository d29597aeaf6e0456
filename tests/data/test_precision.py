"""Values through made's float64 precision: refused where float64 would change them, and drawn values
put back in their column's dtype and range (issue 25, round 3)."""

import numpy as np
import pytest

from made.data import DataError, read_table
from made.data.columns import check_fitted_schema, decode, encode, encode_observed, fit_schema
from made.data.fields import SchemaError
from made.data.precision import EXACT_INTEGERS, in_dtype, inexact_cell
from made.families import Mixed


@pytest.mark.parametrize(
    "array, cell",
    [
        (np.array([[1, 2], [2**53 + 1, 5]], dtype=np.int64), (1, 0)),
        (np.array([[2**53 + 2, -(2**53) - 1]], dtype=np.int64), (0, 1)),
        (np.array([[2**63 - 1]], dtype=np.int64), (0, 0)),  # float64 makes it 2**63, beyond int64
        (np.array([[2**64 - 1]], dtype=np.uint64), (0, 0)),
        (np.array([[1.5, np.nan], [np.longdouble(1) / 3, 1.0]], dtype=np.longdouble), (1, 0)),
        (np.array([[2**53, 2**60, -(2**63)]], dtype=np.int64), None),  # large, but float64 holds them
        (np.array([[2**63]], dtype=np.uint64), None),
        (np.array([[1.5, np.nan]], dtype=np.longdouble), None),
        (np.array([[0.1, 1e300]], dtype=np.float64), None),
        (np.array([[2**31 - 1]], dtype=np.int32), None),
        (np.zeros((0, 3), dtype=np.int64), None),
    ],
)
def test_inexact_cell_finds_the_first_value_float64_changes(array, cell):
    assert inexact_cell(array) == cell


def test_in_dtype_rounds_and_clips_to_the_range_of_the_dtype():
    assert in_dtype(np.array([255.6, -3.0, 10.4]), np.uint8).tolist() == [255, 0, 10]
    assert in_dtype(np.array([127.5, -200.0]), np.int8).tolist() == [127, -128]
    big = in_dtype(np.array([1e300, -1e300, 3.0]), np.int64)
    assert big.dtype == np.int64 and big[0] > 2**62 and big[1] == -(2**63) and big[2] == 3
    assert in_dtype(np.array([1e300, -1e300]), np.uint64).tolist()[1] == 0
    assert np.isfinite(in_dtype(np.array([1e300, -1e300]), np.float32)).all()
    assert in_dtype(np.array([0.7, 0.2, 5.0, -1.0]), np.bool_).tolist() == [True, False, True, False]


def test_a_csv_integer_float64_would_change_is_refused_naming_its_cell(tmp_path):
    """9007199254740995 was read as 9007199254740996, and made impute wrote it back so, observed."""
    path = tmp_path / "ids.csv"
    path.write_text("a,b\n1,2\n9007199254740995,3\n")
    with pytest.raises(DataError, match=r"ids.csv: line 3, column 1: 9007199254740995 cannot be represented exactly"):
        read_table(path)
    path.write_text("a,b\n1,-9007199254740993.000\n")
    with pytest.raises(DataError, match=r"line 2, column 2: -9007199254740993.000 cannot be represented exactly"):
        read_table(path)
    # what float64 holds exactly, and real numbers written with a fraction or an exponent, are read
    path.write_text(f"a,b\n{EXACT_INTEGERS},1e300\n{2**60},0.1\n")
    assert read_table(path).values.tolist() == [[2**53, 1e300], [2**60, 0.1]]


def test_fit_and_encode_refuse_an_integer_float64_would_change():
    train = np.array([[2**53 + 1, 0], [2**53 + 3, 1], [5, 0]], dtype=np.int64)
    with pytest.raises(DataError, match=r"^the training split: row 1, column 1: 9007199254740993 cannot be"):
        fit_schema([{"type": "categorical"}, {"type": "binary"}], train)
    schema = fit_schema([{"type": "real"}, {"type": "binary"}], np.array([[1, 0], [3, 1], [5, 0]], dtype=np.int64))
    rows = np.array([[2, 1], [2**53 + 3, 0]], dtype=np.int64)
    with pytest.raises(DataError, match=r"^q.npy: row 2, column 1: 9007199254740995 cannot be"):
        encode(schema, rows, "q.npy")
    with pytest.raises(DataError, match=r"^q.npy: row 2, column 1: 9007199254740995 cannot be"):
        encode_observed(schema, rows, np.zeros(rows.shape, dtype=bool), "q.npy")


@pytest.mark.parametrize("scale", [1e200, 1e155])
def test_a_real_column_too_large_to_standardize_is_named(scale):
    """A column around 1e200 said `schema[1] has values outside their allowed range: {... 'std': inf}`."""
    rng = np.random.RandomState(0)
    train = np.c_[rng.randn(40), rng.randn(40) * scale]
    with pytest.raises(DataError, match=r"^data column 2: its values \(up to [^)]*\) are too large to standardize"):
        fit_schema([{"type": "real"}, {"type": "real"}], train)
    # a user-written std is the user's: checked as written, not called too large
    with pytest.raises(DataError, match=r"^schema\[1\] has values outside their allowed range"):
        fit_schema([{"type": "real"}, {"type": "real", "mean": 0.0, "std": -1.0}], train)


def test_a_real_column_of_integers_keeps_its_dtype_and_draws_in_its_range():
    """A uint8 column modelled as real decoded 255.6 and -3.2: it now carries its dtype, and its draws are
    rounded and clipped to 0..255; a float column (or an older schema without dtype) decodes as before."""
    block = np.c_[np.linspace(200, 255, 50).astype(np.uint8)]
    (column,) = fit_schema([{"type": "real"}], block)
    assert column["dtype"] == "uint8"
    standardized = np.array([[10.0], [-100.0], [0.0], [0.3]])
    drawn = decode([column], standardized)[:, 0]
    assert drawn.tolist() == [255.0, 0.0, round(column["mean"]), round(column["mean"] + 0.3 * column["std"])]
    (floats,) = fit_schema([{"type": "real"}], block.astype(np.float64))
    assert "dtype" not in floats
    assert decode([floats], standardized)[0, 0] == 10.0 * floats["std"] + floats["mean"]
    check_fitted_schema([floats], Mixed(1, [{"type": "real", "components": 1}]), "schema")  # an older config loads
    for bad in ("float32", "int7", 8):
        with pytest.raises(SchemaError, match=r"^schema\[0\]"):
            check_fitted_schema([{**column, "dtype": bad}], Mixed(1, [{"type": "real", "components": 1}]), "schema")
    with pytest.raises(DataError, match=r"^schema\[0\]: dtype must be one of int8, "):
        fit_schema([{"type": "real", "dtype": "float32"}], block)
