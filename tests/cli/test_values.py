"""Values, columns and mixtures through the command line (issue 25, round 3): integers float64 would
change, observed cells kept to the bit, a column too large to standardize, an edited pool, and a
validation row no member of a mixture can score."""

import json

import numpy as np
import pytest

from made.cli import main

TRAIN = ["--hidden", "8", "--epochs", "1", "--quiet"]


def train(tmp_path, data, out="run", *extra):
    return main(["train", "--data", str(data), "--out", str(tmp_path / out), *TRAIN, *extra])


def last_error(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_train_refuses_an_integer_float64_would_change(tmp_path, capsys, suffix):
    """An int64 id column {2**53 + 1, 2**53 + 3} sampled as {2**53, 2**53 + 4}: refused, naming the cell."""
    rows = np.c_[np.array([2**53 + 1, 2**53 + 3] * 15, dtype=np.int64), np.arange(30) % 2]
    path = tmp_path / f"ids{suffix}"
    if suffix == ".npy":
        np.save(path, rows)
    else:
        path.write_text("".join(f"{a},{b}\n" for a, b in rows.tolist()))
    assert train(tmp_path, path, "run", "--schema", "auto") == 2
    where = "row 1" if suffix == ".npy" else "line 1"
    assert last_error(capsys).startswith(f"made: error: {path}: {where}, column 1: 9007199254740993 cannot be")
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def int_run(tmp_path_factory):
    """A run over an int64 file: a categorical column and a real one, trained order-agnostic."""
    folder = tmp_path_factory.mktemp("ints")
    rng = np.random.RandomState(0)
    np.save(folder / "train.npy", np.c_[rng.randint(0, 3, 90), rng.randint(0, 1000, 90)].astype(np.int64))
    assert train(folder, folder / "train.npy", "run", "--schema", "auto", "--masks", "2") == 0
    return folder / "run"


def test_impute_keeps_observed_cells_and_writes_the_data_dtype(int_run, tmp_path, capsys):
    """Observed cells come back exactly (2**60 + 2**10 survives; it went through float64 before), drawn ones
    in the data's dtype (an int64 file's real column is rounded), and a float32 file stays float32."""
    rows = np.array([[1, 2**60 + 2**10], [2, 7], [0, 999]], dtype=np.int64)
    mask = np.array([[1, 0], [0, 1], [1, 0]])
    np.save(tmp_path / "q.npy", rows)
    np.save(tmp_path / "m.npy", mask)
    out = tmp_path / "out.npy"
    args = ["impute", str(int_run), "--data", str(tmp_path / "q.npy"), "--mask", str(tmp_path / "m.npy")]
    assert main([*args, "--out", str(out), "--samples", "3"]) == 0
    done = np.load(out)
    assert done.dtype == np.int64
    observed = np.repeat(mask == 0, 3, axis=0)
    assert np.array_equal(done[observed], np.repeat(rows, 3, axis=0)[observed])
    assert set(done[~observed & (np.arange(2) == 0)]) <= {0, 1, 2}
    floats = np.array([[1.0, np.nan], [np.nan, 0.1], [2.0, -0.0]], dtype=np.float32)
    np.save(tmp_path / "f.npy", floats)
    capsys.readouterr()
    assert main(["impute", str(int_run), "--data", str(tmp_path / "f.npy"), "--out", str(out)]) == 0
    done = np.load(out)
    assert done.dtype == np.float32 and np.isfinite(done).all()
    given = ~np.isnan(floats)
    assert done[given].tobytes() == floats[given].tobytes()  # bit for bit, -0.0 included


def test_impute_refuses_an_observed_integer_float64_would_change(int_run, tmp_path, capsys):
    np.save(tmp_path / "q.npy", np.array([[1, 5], [2, 2**53 + 3]], dtype=np.int64))
    np.save(tmp_path / "m.npy", np.array([[1, 0], [1, 0]]))
    args = ["impute", str(int_run), "--data", str(tmp_path / "q.npy"), "--mask", str(tmp_path / "m.npy")]
    assert main([*args, "--out", str(tmp_path / "o.npy")]) == 2
    assert "q.npy: row 2, column 2: 9007199254740995 cannot be represented exactly" in last_error(capsys)
    assert not (tmp_path / "o.npy").exists()


def test_train_names_a_column_too_large_to_standardize(tmp_path, capsys):
    rng = np.random.RandomState(0)
    np.save(tmp_path / "big.npy", np.c_[rng.randn(40), rng.randn(40) * 1e200])
    assert train(tmp_path, tmp_path / "big.npy", "run", "--schema", "auto") == 2
    assert last_error(capsys).startswith("made: error: data column 2: its values (up to ")


def test_eval_refuses_a_config_whose_pool_seeds_were_edited(tmp_path, capsys):
    """Edited pool_seeds made eval score other masks than the weights were trained with, silently."""
    np.save(tmp_path / "bits.npy", np.random.RandomState(0).randint(0, 2, (40, 5)).astype(np.uint8))
    assert train(tmp_path, tmp_path / "bits.npy", "run", "--masks", "3") == 0
    config_path = tmp_path / "run" / "config.json"
    config = json.loads(config_path.read_text())
    config["masks"]["pool_seeds"][1] += 1
    config_path.write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run")]) == 2
    assert "config.json: 'masks.pool_seeds' differs from the mask pool stored in model.safetensors" in last_error(
        capsys
    )


@pytest.mark.parametrize("fit", [["--fit-weights"], []])
def test_mix_names_a_validation_row_no_member_can_score(tmp_path, capsys, fit):
    """Every member scores validation row 4 (a value of 1e30) -inf: EM gave NaN weights, reported as 'every
    run but one has a weight under 0.01'; with equal weights the mixture was refused as no better."""
    rng = np.random.RandomState(0)
    valid = rng.randn(6, 2)
    valid[3, 0] = 1e30
    np.savez(tmp_path / "d.npz", train=rng.randn(60, 2), valid=valid, test=rng.randn(6, 2))
    for seed in ("1", "2"):
        assert train(tmp_path, tmp_path / "d.npz", f"r{seed}", "--schema", "auto", "--seed", seed) == 0
    capsys.readouterr()
    assert main(["mix", str(tmp_path / "r1"), str(tmp_path / "r2"), *fit, "--out", str(tmp_path / "mix")]) == 2
    assert last_error(capsys) == (
        f"made: error: {tmp_path / 'd.npz'}: the valid split, row 4: every member gives it probability 0 "
        "(log p = -inf), so any mixture of them does too; check that row, or mix members that can score it"
    )
    assert not (tmp_path / "mix").exists()


def test_sample_of_an_integer_column_lies_in_its_dtype_and_range(tmp_path):
    """A uint8 column modelled as real sampled 255.6 (and below 0): draws are rounded and clipped to 0..255,
    and written as uint8."""
    column = np.linspace(200, 255, 100).astype(np.uint8)
    np.save(tmp_path / "u.npy", np.c_[column, np.arange(100) % 2].astype(np.uint8))
    assert train(tmp_path, tmp_path / "u.npy", "run", "--schema", "auto") == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["schema"][0]["dtype"] == "uint8"
    assert main(["sample", str(tmp_path / "run"), "-n", "3000", "--out", str(tmp_path / "s.npy")]) == 0
    drawn = np.load(tmp_path / "s.npy")
    assert drawn.dtype == np.uint8 and int(drawn[:, 0].min()) > 100  # no draw wrapped round to a small value
    assert (drawn[:, 0] == 255).any()  # draws above 255 were clipped to it


def test_impute_csv_gives_observed_floats_back_bit_for_bit(int_run, tmp_path):
    """Observed cells of a CSV come back as the same float64, a negative zero included (written as 0)."""
    (tmp_path / "q.csv").write_text("-0,\n1,0.1\n,5e-324\n2,-123.456789012345678\n")
    out = tmp_path / "out.csv"
    assert main(["impute", str(int_run), "--data", str(tmp_path / "q.csv"), "--out", str(out)]) == 0
    given = np.genfromtxt(tmp_path / "q.csv", delimiter=",")
    done = np.genfromtxt(out, delimiter=",")
    observed = ~np.isnan(given)
    assert done[observed].tobytes() == given[observed].tobytes()
    assert out.read_text().splitlines()[0].startswith("-0,")
