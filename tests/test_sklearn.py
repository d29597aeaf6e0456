"""MADEDensity: a scikit-learn density estimator over arrays and DataFrames."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.utils.estimator_checks import parametrize_with_checks

from made.sklearn import MADEDensity

FAST = {"hidden_sizes": (16,), "epochs": 2, "batch_size": 32, "patience": 1}


def mixed_frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """String, categorical (with a declared category never used), boolean, small-integer and real columns."""
    rng = np.random.RandomState(seed)
    color = rng.choice(["red", "green", "blue"], n)
    return pd.DataFrame(
        {
            "color": color,
            "size": pd.Categorical(rng.choice(["S", "M", "L"], n), categories=["S", "M", "L", "XL"]),
            "flag": rng.rand(n) < np.where(color == "red", 0.8, 0.2),
            "count": rng.randint(0, 4, n),
            "x": rng.randn(n) + 2.0 * (color == "red"),
        }
    )


@pytest.fixture(scope="module")
def fitted_on_frame() -> MADEDensity:
    return MADEDensity(hidden_sizes=(32,), epochs=10, random_state=0).fit(mixed_frame())


def test_frame_in_frame_out(fitted_on_frame):
    """A DataFrame fit scores finite log-likelihoods and samples a DataFrame of the same columns,
    dtypes and categories, whose strings and integers are values seen in fit."""
    df = mixed_frame()
    scores = fitted_on_frame.score_samples(df)
    assert scores.shape == (len(df),) and np.isfinite(scores).all()
    samples = fitted_on_frame.sample(200, random_state=1)
    assert isinstance(samples, pd.DataFrame) and list(samples.columns) == list(df.columns)
    assert samples.dtypes.to_dict() == df.dtypes.to_dict()
    assert list(samples["size"].cat.categories) == ["S", "M", "L", "XL"]
    assert set(samples["color"]) <= {"red", "green", "blue"}
    assert set(samples["count"]) <= {0, 1, 2, 3}
    assert np.isfinite(fitted_on_frame.score_samples(samples)).all()
    assert list(fitted_on_frame.feature_names_in_) == list(df.columns)


def test_score_is_the_mean_of_score_samples(fitted_on_frame):
    df = mixed_frame(50, seed=1)
    assert fitted_on_frame.score(df) == pytest.approx(float(np.mean(fitted_on_frame.score_samples(df))), rel=1e-12)


def test_probabilities_of_all_discrete_rows_sum_to_one():
    """Over every combination of categories of string, categorical and boolean columns, the
    probabilities sum to 1: codes and categories correspond one to one, unseen 'XL' included."""
    df = mixed_frame().drop(columns=["count", "x"])
    est = MADEDensity(hidden_sizes=(16,), epochs=5, random_state=0).fit(df)
    grid = list(itertools.product(["blue", "green", "red"], ["S", "M", "L", "XL"], [False, True]))
    every = pd.DataFrame(grid, columns=df.columns).astype({"color": df["color"].dtype, "size": df["size"].dtype})
    assert math.isclose(np.exp(est.score_samples(every)).sum(), 1.0, rel_tol=1e-9)


def test_log_likelihood_is_in_the_data_units():
    """Scaling real data by 10 standardizes to the same values, so each row's log-density drops by D log 10."""
    X = np.random.RandomState(0).randn(200, 3) @ np.array([[1.0, 0.5, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 1.0]])
    one = MADEDensity(**FAST, random_state=0).fit(X)
    ten = MADEDensity(**FAST, random_state=0).fit(10 * X)
    np.testing.assert_allclose(ten.score_samples(10 * X), one.score_samples(X) - 3 * math.log(10), atol=1e-5)


def test_numpy_in_numpy_out():
    X = (np.random.RandomState(0).rand(200, 6) < 0.3).astype(np.float32)
    est = MADEDensity(**FAST, num_masks=2, random_state=0).fit(X)
    assert [c["type"] for c in est.schema_] == ["binary"] * 6
    samples = est.sample(20, random_state=0)
    assert samples.shape == (20, 6) and samples.dtype == np.float32 and set(np.unique(samples)) <= {0.0, 1.0}
    np.testing.assert_array_equal(samples, est.sample(20, random_state=0))
    every = np.array(list(itertools.product([0.0, 1.0], repeat=6)), dtype=np.float32)
    assert math.isclose(np.exp(est.score_samples(every)).sum(), 1.0, rel_tol=1e-9)  # the 2-mask mixture


def test_numpy_object_array_with_strings():
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.choice(["a", "b", "c"], 100), rng.randn(100)]).astype(object)
    X[:, 1] = X[:, 1].astype(float)
    est = MADEDensity(**FAST, random_state=0).fit(X)
    samples = est.sample(10)
    assert samples.dtype == object and set(samples[:, 0]) <= {"a", "b", "c"}
    assert np.isfinite(est.score_samples(X)).all()


def test_bad_input_is_refused_in_one_line(fitted_on_frame):
    df = mixed_frame(20)
    df.loc[3, "x"] = np.nan
    with pytest.raises(ValueError, match=r"^X column 'x', row 4: nan \(NaN and infinity are refused\)$"):
        fitted_on_frame.score_samples(df)
    df = mixed_frame(20).astype({"color": object})
    df.loc[5, "color"] = "purple"
    with pytest.raises(ValueError, match=r"^X column 'color', row 6: 'purple' was not seen in fit$"):
        fitted_on_frame.score_samples(df)
    df.loc[5, "color"] = None
    with pytest.raises(ValueError, match=r"^X column 'color', row 6: missing value \(NaN or None\)$"):
        MADEDensity(**FAST).fit(df)
    with pytest.raises(ValueError, match="^n_samples must be a positive integer, got 0$"):
        fitted_on_frame.sample(0)
    with pytest.raises(ValueError, match="^schema must be one of auto, binary, onehot"):
        MADEDensity(**FAST, schema="bogus").fit(mixed_frame(20))
    with pytest.raises(ValueError, match=r"^validation_fraction must be in \(0, 1\), got 1.5$"):
        MADEDensity(**FAST, validation_fraction=1.5).fit(mixed_frame(20))


def test_import_needs_no_pandas():
    code = (
        "import sys; sys.modules['pandas'] = None\n"
        "import numpy as np; from made.sklearn import MADEDensity\n"
        "X = (np.random.RandomState(0).rand(40, 3) < 0.5).astype(float)\n"
        "print(MADEDensity(hidden_sizes=(4,), epochs=1).fit(X).sample(2).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(2, 3)"


# Every check passes with these settings; check_array_api_input skips itself unless SCIPY_ARRAY_API=1.
@parametrize_with_checks([MADEDensity(**FAST)])
def test_scikit_learn_checks(estimator, check):
    check(estimator)


# ---------------------------------------------------------------- issue 25 (round 3)
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint16, np.float16, np.float32, bool])
def test_samples_lie_in_the_range_and_dtype_of_their_column(dtype):
    """A uint8 column modelled as real sampled 255.6 and wrapped it to 0 (or pandas refused the cast):
    samples are rounded for integers and clipped to what the dtype holds, in arrays and in frames."""
    info = np.iinfo(dtype) if np.dtype(dtype).kind in "iu" else None
    rng = np.random.RandomState(0)
    if np.dtype(dtype).kind == "b":
        column = rng.rand(200) < 0.5
    elif info is not None:
        column = np.linspace(info.max - 60, info.max, 200).round().astype(dtype)  # piled against the top
    else:
        column = (np.finfo(dtype).max * (0.9 + 0.1 * rng.rand(200))).astype(dtype)
    X = np.c_[column, rng.randn(200)]
    frame = pd.DataFrame({"c": column, "x": rng.randn(200)})
    for fitted, drawn in (
        (X.astype(dtype), lambda e: e.sample(2000, random_state=1)[:, 0]),
        (frame, lambda e: e.sample(2000, random_state=1)["c"].to_numpy()),
    ):
        est = MADEDensity(**FAST, random_state=0).fit(fitted)
        values = drawn(est)
        assert values.dtype == np.dtype(dtype)
        if info is not None:
            assert int(values.min()) >= int(column.min()) - 100  # wrapped draws (255.6 -> 0) would be far below
        elif np.dtype(dtype).kind == "f":
            assert np.isfinite(values).all()


def test_integers_float64_would_change_are_refused_at_fit():
    """An int64 id column {2**53 + 1, 2**53 + 3} sampled as {2**53, 2**53 + 4}: refused, naming the column."""
    ids = np.array([2**53 + 1, 2**53 + 3] * 10, dtype=np.int64)
    message = r"^X column {}, row 1: 9007199254740993 cannot be represented exactly in float64"
    with pytest.raises(ValueError, match=message.format("0")):
        MADEDensity(**FAST).fit(np.c_[ids, ids % 2])
    with pytest.raises(ValueError, match=message.format("'id'")):
        MADEDensity(**FAST).fit(pd.DataFrame({"id": ids, "x": np.arange(20.0)}))
    with pytest.raises(ValueError, match=message.format("'id'")):
        MADEDensity(**FAST).fit(pd.DataFrame({"id": ids.astype(object), "x": np.arange(20.0)}))
    with pytest.raises(ValueError, match=message.format("'id'")):
        MADEDensity(**FAST).fit(pd.DataFrame({"id": pd.array(ids, dtype="Int64"), "x": np.arange(20.0)}))
    exact = np.array([2**53, 2**60] * 10, dtype=np.int64)  # large, but float64 holds them: accepted and returned
    est = MADEDensity(**FAST, random_state=0).fit(np.c_[exact, np.arange(20)])
    assert set(est.sample(50)[:, 0]) <= {2**53, 2**60}


@pytest.mark.parametrize(
    "cell, error, message",
    [
        ({"x": 1}, TypeError, r"^X column 'a', row 2: a cell of type dict \(\{'x': 1\}\) in a column of numbers"),
        ([1, 2], TypeError, r"^X column 'a', row 2: a cell of type list \(\[1, 2\]\) in a column of numbers"),
        ("x", ValueError, r"^X column 'a' mixes strings \('x' in row 2\) with other values \(1.0 in row 1\)"),
    ],
)
def test_cells_that_are_not_values_of_their_column_are_refused(cell, error, message):
    """Dicts, lists and stray strings in a numeric column gave NumPy's own errors (or silently made every
    number a category)."""
    frame = pd.DataFrame({"a": [1.0, cell, 2.0, 3.0], "b": [1.0, 2.0, 3.0, 4.5]})
    with pytest.raises(error, match=message):
        MADEDensity(**FAST).fit(frame)


def test_score_refuses_a_cell_that_is_not_a_number_in_a_numeric_column(fitted_on_frame):
    df = mixed_frame(5).astype({"x": object})
    df.loc[2, "x"] = "3.5"
    with pytest.raises(TypeError, match=r"^X column 'x', row 3: a cell of type str \('3.5'\) in a column of numbers"):
        fitted_on_frame.score_samples(df)


def test_a_column_of_one_category_samples_that_category():
    """A one-category column was modelled as binary and sampled code 1: IndexError in sample."""
    frame = pd.DataFrame({"c": pd.Categorical(["x"] * 6), "s": ["a"] * 6, "v": [1.0, 2.0, 3.0, 1.5, 2.5, 0.5]})
    est = MADEDensity(**FAST, random_state=0).fit(frame)
    drawn = est.sample(50)
    assert set(drawn["c"]) == {"x"} and set(drawn["s"]) == {"a"}
    assert np.isfinite(est.score_samples(frame.iloc[:1])).all()  # a one-row frame scores
    with pytest.raises(ValueError, match=r"^X has shape \(1, 3\); at least 2 row\(s\) and 1 column are needed$"):
        MADEDensity(**FAST).fit(frame.iloc[:1])


@pytest.mark.parametrize("n", [2.0, "3", None, np.float64(2.0), True])
def test_sample_refuses_a_count_that_is_not_an_integer(fitted_on_frame, n):
    with pytest.raises(TypeError, match=r"^n_samples must be a positive integer, got "):
        fitted_on_frame.sample(n)


@pytest.mark.parametrize("n", [np.int64(3), np.uint8(3), torch.tensor(3)])
def test_sample_takes_any_integral_count(fitted_on_frame, n):
    assert len(fitted_on_frame.sample(n)) == 3


def test_a_column_too_large_to_standardize_is_named():
    """Values around 1e200 said `schema[1] has values outside their allowed range: {... 'std': inf}`."""
    rng = np.random.RandomState(0)
    X = np.c_[rng.randn(50), rng.randn(50) * 1e200]
    with pytest.raises(
        ValueError, match=r"^data column 2: its values \(up to [0-9.e+]+ in size\) are too large to standardize"
    ):
        MADEDensity(**FAST).fit(X)
