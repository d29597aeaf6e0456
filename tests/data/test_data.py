import warnings

import numpy as np
import pytest

from made.data import DataError, DataWarning, load_data, load_dataset, load_file, read_table

SHARED = __import__("pathlib").Path(__file__).resolve().parents[3] / "shared" / "data"


def test_digits_is_the_agreed_split():
    splits = load_dataset("digits")
    assert splits.train.shape == (1197, 64) and splits.valid.shape == (300, 64) and splits.test.shape == (300, 64)
    assert splits.image_shape == (8, 8)
    assert set(np.unique(splits.train)) == {0.0, 1.0}
    from sklearn.datasets import load_digits

    pixels = load_digits().data
    first = np.random.RandomState(0).permutation(len(pixels))[0]
    assert np.array_equal(splits.train[0], (pixels[first] >= 8).astype(np.float32))
    labels = load_digits().target[np.random.RandomState(0).permutation(len(pixels))]
    assert [len(part) for part in splits.labels] == [1197, 300, 300]
    assert np.array_equal(np.concatenate(splits.labels), labels)


@pytest.mark.skipif(not (SHARED / "dna.npz").exists(), reason="shared data not present")
def test_paper_set_from_data_dir():
    splits = load_dataset("dna", SHARED)
    assert splits.train.shape == (1400, 180) and splits.test.shape == (1186, 180)


def test_paper_set_missing_from_given_folder(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_dataset("mushrooms", tmp_path)


def test_download_failure_is_explained(tmp_path, monkeypatch):
    monkeypatch.setenv("MADE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MADE_DATA_DIR", raising=False)
    import made.data.datasets as data

    monkeypatch.setitem(data.DATASETS, "web", data.DatasetInfo("http://127.0.0.1:9/web.npz", 300, (1, 1, 1)))
    with pytest.raises(DataError, match="could not download web.*--data-dir"):
        load_dataset("web")
    assert not any((tmp_path / "cache").glob("*"))  # nothing partial left behind


def test_download_checks_content(tmp_path, monkeypatch):
    """A served file with the right shape but the wrong content is refused and not cached."""
    import made.data.datasets as data

    source = tmp_path / "served.npz"
    rng = np.random.RandomState(0)
    np.savez(
        source,
        **{
            k: rng.randint(0, 2, (n, 3)).astype(np.float32)
            for k, n in [("train_data", 4), ("valid_data", 2), ("test_data", 2)]
        },
    )
    info = data.DatasetInfo(source.as_uri(), 3, (4, 2, 2), content_sha256="0" * 64)
    monkeypatch.setitem(data.DATASETS, "toy", info)
    monkeypatch.setenv("MADE_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_dataset("toy")
    assert not (tmp_path / "cache" / "toy.npz").exists()
    good = data.DatasetInfo(source.as_uri(), 3, (4, 2, 2))
    monkeypatch.setitem(data.DATASETS, "toy", good)
    assert load_dataset("toy").train.shape == (4, 3)
    assert (tmp_path / "cache" / "toy.npz").exists()


def test_unknown_name():
    with pytest.raises(DataError, match="unknown data set"):
        load_dataset("cifar")


def _binary(n, d, seed=0):
    return np.random.RandomState(seed).randint(0, 2, (n, d))


def test_npz_layouts(tmp_path):
    made_layout = tmp_path / "a.npz"
    np.savez(made_layout, train_data=_binary(10, 3), valid_data=_binary(4, 3), test_data=_binary(5, 3))
    assert load_file(made_layout).test.shape == (5, 3)
    plain = tmp_path / "b.npz"
    np.savez(plain, train=_binary(10, 3), valid=_binary(4, 3), test=_binary(5, 3))
    assert load_file(plain).valid.shape == (4, 3)
    single = tmp_path / "c.npz"
    np.savez(single, x=_binary(100, 3))
    s = load_file(single)
    assert (len(s.train), len(s.valid), len(s.test)) == (80, 10, 10)


def test_single_array_split_is_seeded(tmp_path):
    path = tmp_path / "x.npy"
    np.save(path, _binary(50, 4))
    a, b, c = load_file(path, split_seed=1), load_file(path, split_seed=1), load_file(path, split_seed=2)
    assert np.array_equal(a.train, b.train) and not np.array_equal(a.train, c.train)
    together = np.concatenate([a.train, a.valid, a.test])
    assert sorted(map(tuple, together)) == sorted(map(tuple, _binary(50, 4).astype(np.float32)))


def test_csv_with_header(tmp_path):
    path = tmp_path / "x.csv"
    rows = "\n".join(",".join(str(v) for v in r) for r in _binary(30, 3))
    path.write_text("a,b,c\n" + rows + "\n")
    assert load_file(path).num_inputs == 3


@pytest.mark.parametrize(
    "content, message",
    [
        ("0,1\n1,0.5\n1,1\n0,0\n", "not binary"),
        ("0,1\n1,\n1,1\n0,0\n", "line 2 has an empty last cell"),
        ("0,1\n,1\n1,1\n0,0\n", "line 2, column 1: nan is a missing value"),
        ("0,1\n1,x\n1,1\n0,0\n", "not a number"),
        ("0,1\n1,0,1\n1,1\n", "has 3 columns"),
        ("", "no data rows"),
    ],
)
def test_bad_csv(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message) as err:
        load_file(path)
    assert "bad.csv" in str(err.value)


def test_bad_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_file(tmp_path / "missing.npz")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(DataError, match="corrupt.npz: not a readable"):
        load_file(corrupt)
    with pytest.raises(DataError, match="is not a file"):
        load_file(tmp_path)
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, train=_binary(10, 3), valid=_binary(4, 4), test=_binary(5, 3))
    with pytest.raises(DataError, match="valid split has 4 columns"):
        load_file(wrong)
    empty = tmp_path / "empty.npz"
    np.savez(empty, train=_binary(10, 3), valid=_binary(0, 3), test=_binary(5, 3))
    with pytest.raises(DataError, match="valid split is empty"):
        load_file(empty)
    nan = tmp_path / "nan.npy"
    arr = _binary(10, 3).astype(float)
    arr[2, 1] = np.nan
    np.save(nan, arr)
    with pytest.raises(DataError, match="nan"):
        load_file(nan)
    with pytest.raises(DataError, match="unsupported"):
        (tmp_path / "x.txt").write_text("1")
        load_file(tmp_path / "x.txt")


def test_read_table_keeps_missing_values(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("1,,0\nnan,1,1\n")
    arr = read_table(path).values
    assert np.isnan(arr[0, 1]) and np.isnan(arr[1, 0]) and arr[1, 2] == 1


def test_load_data_needs_exactly_one_source(tmp_path):
    with pytest.raises(DataError):
        load_data()
    with pytest.raises(DataError):
        load_data("digits", tmp_path / "x.npy")


def test_files_are_read_at_their_own_precision(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("1700000000.125,16777217\n1700000000.25,16777216\n")
    table = read_table(path)
    assert table.values.dtype == np.float64 and table.values[:, 1].tolist() == [16777217, 16777216]
    assert table.values[0, 0] == 1700000000.125
    for dtype in (np.float32, np.int64, np.uint8):
        np.save(tmp_path / "a.npy", np.arange(12, dtype=dtype).reshape(4, 3))
        assert read_table(tmp_path / "a.npy").values.dtype == dtype
    np.save(tmp_path / "b.npy", np.ones((4, 2), dtype=bool))
    assert read_table(tmp_path / "b.npy").values.dtype == np.uint8


def test_header_rule(tmp_path):
    path = tmp_path / "h.csv"
    path.write_text("a,b\n1,2\n")
    assert read_table(path).header == ["a", "b"] and read_table(path).lines.tolist() == [2]
    path.write_text("N/A,1\n1,2\n")  # a missing value and a number: data
    table = read_table(path)
    assert table.header is None and np.isnan(table.values[0, 0]) and table.lines.tolist() == [1, 2]
    path.write_text("a,1\n1,2\n")
    with pytest.raises(DataError, match="line 1, column 1: 'a' is not a number .*pass --header"):
        read_table(path)
    path.write_text("1,2\n3,x\n")
    with pytest.raises(DataError, match=r"h.csv: line 2, column 2: 'x' is not a number$"):
        read_table(path)
    path.write_text("7,8\n1,2\n")
    assert read_table(path, header=True).values.tolist() == [[1, 2]]
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DataError, match="line 1, column 1: 'a' is not a number"):
        read_table(path, header=False)


def test_a_numeric_pandas_header_is_read_as_data_with_a_warning(tmp_path):
    path = tmp_path / "p.csv"
    path.write_text("0,1,2\n5,6,7\n")
    with pytest.warns(DataWarning, match="line 1 is 0,1,...,2, read as data"):
        assert read_table(path).values.tolist() == [[0, 1, 2], [5, 6, 7]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_table(path, header=False).values.shape == (2, 3)
        assert read_table(path, header=True).values.tolist() == [[5, 6, 7]]


def test_no_row_is_skipped(tmp_path):
    path = tmp_path / "e.csv"
    path.write_text("1,,0\n,,\nnan,NA,N/A\n0,1,?\n")
    table = read_table(path)
    assert table.values.shape == (4, 3) and np.isnan(table.values[1:3]).all() and table.lines.tolist() == [1, 2, 3, 4]
    path.write_text("1,0\n\n0,1\n")
    with pytest.raises(DataError, match=r"e.csv: line 2 is blank, but the rows have 2 columns \(write a row"):
        read_table(path)
    path.write_text("1\n\n0\n\n")  # one column: a blank line is a missing value
    table = read_table(path)
    assert table.values.shape == (4, 1) and np.isnan(table.values[[1, 3], 0]).all()
    path.write_text("0,1\n,,\n" + "1,0\n" * 10)
    with pytest.raises(DataError, match="line 2 has 3 columns, expected 2"):
        load_file(path)


def test_bad_values_are_named_by_their_line_in_the_file(tmp_path):
    rows = _binary(40, 3).astype(float)
    rows[29, 1] = 2
    path = tmp_path / "x.csv"
    np.savetxt(path, rows, fmt="%g", delimiter=",", header="a,b,c", comments="")
    with pytest.raises(DataError, match=r"x.csv: line 31, column 2: 2 is not binary"):
        load_file(path, split_seed=3)
    rows[29, 1] = np.nan
    np.save(tmp_path / "x.npy", rows)
    with pytest.raises(DataError, match=r"x.npy: row 30, column 2: nan is a missing value"):
        load_file(tmp_path / "x.npy", split_seed=3)
    np.savetxt(path, _binary(40, 3), fmt="%d", delimiter=",", header="a,b,c", comments="")
    splits = load_file(path, split_seed=3)
    assert sorted(np.concatenate(splits.lines).tolist()) == list(range(2, 42))  # every line, once
