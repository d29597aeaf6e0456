import numpy as np
import pytest

from made.data import DATASETS, DataError, load_data, load_dataset, load_file, read_array

SHARED = __import__("pathlib").Path(__file__).resolve().parents[2] / "shared" / "data"


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
    import made.data as data

    monkeypatch.setitem(data.DATASETS, "web", data.DatasetInfo("http://127.0.0.1:9/web.npz", 300, (1, 1, 1)))
    with pytest.raises(DataError, match="could not download web.*--data-dir"):
        load_dataset("web")
    assert not any((tmp_path / "cache").glob("*"))  # nothing partial left behind


def test_download_checks_content(tmp_path, monkeypatch):
    """A served file with the right shape but the wrong content is refused and not cached."""
    import made.data as data

    source = tmp_path / "served.npz"
    rng = np.random.RandomState(0)
    np.savez(source, **{k: rng.randint(0, 2, (n, 3)).astype(np.float32) for k, n in
                        [("train_data", 4), ("valid_data", 2), ("test_data", 2)]})
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


def test_read_array_keeps_missing_values(tmp_path):
    path = tmp_path / "m.csv"
    path.write_text("1,,0\nnan,1,1\n")
    arr = read_array(path)
    assert np.isnan(arr[0, 1]) and np.isnan(arr[1, 0]) and arr[1, 2] == 1


def test_load_data_needs_exactly_one_source(tmp_path):
    with pytest.raises(DataError):
        load_data()
    with pytest.raises(DataError):
        load_data("digits", tmp_path / "x.npy")
