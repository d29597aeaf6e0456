"""Property-based fuzzing of what reads untrusted input: the data loaders, the model's input
checks and the run-folder loader. Whatever comes in, the answer is a result or one clear
error of the documented kind, never another exception. The budgets are small and the
examples derandomized, so CI stays fast and reproducible."""

import io
import json
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from made import MADE
from made.data import DataError, load_file
from made.io.atomic import CheckpointError
from made.io.run import load_model, save_model

FUZZ = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _check_splits(splits):
    for part in (splits.train, splits.valid, splits.test):
        assert part.ndim == 2 and part.shape[0] > 0 and part.shape[1] == splits.num_inputs > 0
        assert part.dtype.kind in "uif" and np.isin(part, (0.0, 1.0)).all()  # the file's own precision


def _load(path):
    """``load_file``: a valid binary data set, or a DataError naming the file."""
    try:
        splits = load_file(path)
    except DataError as err:
        assert str(path) in str(err) and "\n" not in str(err)
        return None
    _check_splits(splits)
    return splits


def _valid_npz_bytes(compressed):
    buffer = io.BytesIO()
    rng = np.random.RandomState(0)
    save = np.savez_compressed if compressed else np.savez
    save(buffer, train=rng.randint(0, 2, (20, 4)), valid=rng.randint(0, 2, (5, 4)), test=rng.randint(0, 2, (5, 4)))
    return buffer.getvalue()


def _valid_npy_bytes():
    buffer = io.BytesIO()
    np.save(buffer, np.random.RandomState(0).randint(0, 2, (30, 4)).astype(np.uint8))
    return buffer.getvalue()


@FUZZ
@given(suffix=st.sampled_from([".npy", ".npz", ".csv"]), content=st.binary(max_size=400))
def test_random_bytes(tmp_path, suffix, content):
    path = tmp_path / f"f{suffix}"
    path.write_bytes(content)
    _load(path)


@FUZZ
@example(base="npy", cut=1.0, flips=[(0.24609375, 0)])  # a NUL in the header: numpy's parser raised TokenError
@given(
    base=st.sampled_from(["npy", "npz", "npz-compressed"]),
    cut=st.floats(0, 1),
    flips=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), max_size=4),
)
def test_truncated_and_corrupted_files(tmp_path, base, cut, flips):
    """Valid files cut short and with bytes overwritten: read correctly or refused."""
    content = bytearray(_valid_npy_bytes() if base == "npy" else _valid_npz_bytes(base == "npz-compressed"))
    for where, value in flips:
        content[int(where * (len(content) - 1))] = value
    content = content[: max(1, int(cut * len(content)))] if cut < 1 else content
    path = tmp_path / ("f.npy" if base == "npy" else "f.npz")
    path.write_bytes(bytes(content))
    _load(path)


CSV_TOKENS = st.sampled_from(
    [
        "0",
        "1",
        "1.0",
        "0.5",
        "2",
        "-1",
        "nan",
        "inf",
        "-inf",
        "1e400",
        "",
        " ",
        "x",
        "?",
        "NA",
        '"1"',
        '"',
        "1,1",
        "\t",
        "0x1",
        "\u00e9",
        "TRUE",
    ]
)


def _is_number(cell):
    try:
        float(cell)
    except ValueError:
        return cell.strip().lower() in ("", "nan", "na", "?")
    return True


@FUZZ
@given(rows=st.lists(st.lists(CSV_TOKENS, min_size=1, max_size=6), max_size=12), header=st.booleans())
def test_random_csv(tmp_path, rows, header):
    lines = (["a,b,c"] if header else []) + [",".join(row) for row in rows]
    path = tmp_path / "f.csv"
    path.write_text("\n".join(lines), encoding="utf-8")
    splits = _load(path)
    if splits is not None and '"' not in path.read_text():  # (quotes let a cell span lines)
        cells = [line.split(",") for line in lines if any(cell.strip() for cell in line.split(","))]
        header_lines = 0 if any(_is_number(cell) for cell in cells[0]) else 1  # a header has no number
        assert len(splits.train) + len(splits.valid) + len(splits.test) == len(cells) - header_lines


DTYPES = st.sampled_from(["u1", "i8", "f2", "f4", "f8", "?", "c8", "U3", "S2", "M8[s]", "m8[s]"])


@FUZZ
@given(array=hnp.arrays(DTYPES, hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6)))
def test_random_arrays(tmp_path, array):
    """Any dtype and shape saved by numpy: only 2-D (or 1-D) real 0/1 arrays of 3+ rows load."""
    path = tmp_path / "f.npy"
    np.save(path, array)
    splits = _load(path)
    if splits is not None:
        assert array.dtype.kind in "biuf" and array.ndim in (1, 2) and len(array) >= 3


@FUZZ
@given(rows=st.integers(0, 10**15), cols=st.integers(1, 10**6), dtype=st.sampled_from(["<f4", "<f8", "|u1", "|b1"]))
def test_lying_headers_are_refused_without_allocating(tmp_path, rows, cols, dtype):
    """A header that claims more (or less) data than the file holds is refused from the header
    alone; 10^15 rows would need petabytes if the loader believed it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": dtype, "fortran_order": False, "shape": (rows, cols)})
    buffer.write(b"\x00" * 64)
    if rows * cols * np.dtype(dtype).itemsize == 64:
        return  # the header tells the truth
    path = tmp_path / "f.npy"
    path.write_bytes(buffer.getvalue())
    with pytest.raises(DataError, match="header announces"):
        load_file(path)
    with zipfile.ZipFile(tmp_path / "f.npz", "w") as archive:
        archive.writestr("train.npy", buffer.getvalue())
    with pytest.raises(DataError, match="header announces"):
        load_file(tmp_path / "f.npz")


MODEL = MADE(6, [10], num_masks=2, seed=0)
TENSOR_DTYPES = [torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool, torch.complex64]


@FUZZ
@given(
    shape=st.lists(st.integers(0, 7), min_size=0, max_size=3),
    dtype=st.sampled_from(TENSOR_DTYPES),
    values=st.lists(st.sampled_from([0.0, 1.0, 0.5, -1.0, 2.0, float("nan"), float("inf")]), min_size=1, max_size=4),
    ensemble=st.sampled_from([None, 1, 2, 0, 3, -1]),
)
def test_log_prob_input_checks(shape, dtype, values, ensemble):
    """log_prob answers a [..., 6] float32 tensor of 0/1 with finite log-probabilities [...], and
    anything else (shape, dtype, values, ensemble size) with a TypeError or ValueError."""
    n = int(np.prod(shape)) if shape else 1
    x = torch.tensor([values[i % len(values)] for i in range(n)], dtype=torch.float64).reshape(shape)
    if dtype.is_complex or dtype.is_floating_point:
        x = x.to(dtype)
    else:
        x = x.nan_to_num(0, 0, 0).to(dtype)
    valid = (
        dtype == torch.float32
        and len(shape) >= 1
        and shape[-1] == 6
        and ensemble in (None, 1, 2)
        and bool(((x == 0) | (x == 1)).all())
    )
    if valid:
        log_p = MODEL.log_prob(x, ensemble=ensemble)
        assert log_p.shape == tuple(shape[:-1]) and bool(torch.isfinite(log_p).all()) and bool((log_p <= 0).all())
    else:
        with pytest.raises((TypeError, ValueError)) as err:
            MODEL.log_prob(x, ensemble=ensemble)
        assert "\n" not in str(err.value) and str(err.value)


@FUZZ
@given(
    x=st.one_of(
        st.none(),
        st.integers(),
        st.text(max_size=3),
        st.lists(st.floats(), max_size=3),
        st.just(np.zeros((2, 6), np.float32)),
    )
)
def test_log_prob_refuses_non_tensors(x):
    with pytest.raises(TypeError, match="torch.Tensor"):
        MODEL.log_prob(x)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    save_model(run, MADE(5, [7], num_masks=3, direct=True, seed=1))
    return run, json.loads((run / "config.json").read_text())


@FUZZ
@given(key=st.sampled_from(sorted(MADE(2, []).config.to_dict())), value=JSON)
def test_hostile_model_settings(saved_run, key, value):
    """Any JSON value in any model setting: the original model, or a CheckpointError."""
    run, config = saved_run
    try:
        (run / "config.json").write_text(json.dumps({**config, "model": {**config["model"], key: value}}))
        try:
            model, _ = load_model(run)
        except CheckpointError as err:
            assert "\n" not in str(err)
        else:
            assert key == "family" or model.config.to_dict()[key] == value  # loaded as the config says
    finally:
        (run / "config.json").write_text(json.dumps(config))
