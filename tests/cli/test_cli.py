import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import mixed_csv
from PIL import Image

from made.cli import main
from made.io.run import save_mixture
from made.model import MADE
from made.model.mixture import Mixture


def test_train_eval_sample_end_to_end(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--out", str(run), "--hidden", "64", "--epochs", "3", "--quiet"]) == 0
    for name in ("config.json", "model.safetensors", "metrics.json", "log.jsonl"):
        assert (run / name).is_file()
    metrics = json.loads((run / "metrics.json").read_text())
    assert {"test_nll", "valid_nll", "epochs", "seconds"} <= set(metrics) and metrics["epochs"] == 3
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["test_nll"] == metrics["test_nll"]  # exactly the same figure
    assert main(["sample", str(run), "-n", "10"]) == 0
    assert Image.open(run / "samples.png").size[0] > 0
    assert main(["sample", str(run), "-n", "5", "--out", str(tmp_path / "s.npy")]) == 0
    s = np.load(tmp_path / "s.npy")
    assert s.shape == (5, 64) and set(np.unique(s)) <= {0, 1}


def test_refuses_to_overwrite_a_run(tmp_path, capsys):
    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--hidden", "8", "--epochs", "1", "--quiet"]
    assert main(args) == 0
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert main(args + ["--overwrite"]) == 0


def test_user_csv_and_bad_input(tmp_path, capsys):
    good = tmp_path / "good.csv"
    np.savetxt(good, np.random.RandomState(0).randint(0, 2, (60, 5)), fmt="%d", delimiter=",")
    run = tmp_path / "run"
    assert main(["train", "--data", str(good), "--out", str(run), "--hidden", "8", "--epochs", "2", "--quiet"]) == 0
    assert main(["sample", str(run), "-n", "3", "--out", str(tmp_path / "s.csv")]) == 0
    assert np.loadtxt(tmp_path / "s.csv", delimiter=",").shape == (3, 5)
    assert main(["sample", str(run), "--out", str(tmp_path / "s.png")]) == 2
    assert "not image-shaped" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("0,1\n2,1\n1,1\n0,0\n")
    assert main(["train", "--data", str(bad), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "not binary" in err and "Traceback" not in err
    assert main(["eval", str(tmp_path / "missing")]) == 2
    assert "not a run folder" in capsys.readouterr().err


def test_help_explains_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for option in ("--dataset", "--hidden", "--masks", "--patience", "--optimizer", "--direct"):
        assert option in text


@pytest.fixture(scope="module")
def agnostic_run(tmp_path_factory):
    """A small order-agnostic digits run (4 masks resampling orderings and connectivity)."""
    run = tmp_path_factory.mktemp("agnostic") / "run"
    args = [
        "train",
        "--dataset",
        "digits",
        "--out",
        str(run),
        "--hidden",
        "32",
        "--masks",
        "4",
        "--epochs",
        "2",
        "--quiet",
    ]
    assert main(args) == 0
    return run


def test_sample_in_batches_and_from_an_ensemble(agnostic_run, tmp_path):
    out = tmp_path / "s.npy"
    args = ["sample", str(agnostic_run), "-n", "25", "--batch-size", "10", "--ensemble", "4", "--out", str(out)]
    assert main(args) == 0
    assert np.load(out).shape == (25, 64)


def test_impute_csv_with_nan(agnostic_run, tmp_path, capsys):
    rows = np.random.RandomState(0).randint(0, 2, (5, 64)).astype(float)
    rows[:, 10:40] = np.nan
    rows[2, :] = np.nan
    data, out = tmp_path / "holes.csv", tmp_path / "filled.csv"
    np.savetxt(data, rows, delimiter=",", fmt="%g")
    assert main(["impute", str(agnostic_run), "--data", str(data), "--out", str(out), "--samples", "3"]) == 0
    filled = np.loadtxt(out, delimiter=",")
    assert filled.shape == (15, 64) and set(np.unique(filled)) <= {0, 1}
    known = ~np.isnan(rows)
    for i in range(5):  # rows i*3 .. i*3+2 complete row i
        assert (filled[3 * i : 3 * i + 3][:, known[i]] == rows[i, known[i]]).all()
    text = capsys.readouterr().out
    assert "filled" in text and "no conditional NLL" in text


def test_impute_with_a_mask_file_reports_the_conditional_nll(agnostic_run, tmp_path, capsys):
    from made.data import load_dataset
    from made.io.run import load_model

    test = load_dataset("digits").test[:20]
    hidden = np.zeros_like(test)
    hidden[:, 32:] = 1
    np.save(tmp_path / "x.npy", test)
    np.save(tmp_path / "m.npy", hidden)
    args = [
        "impute",
        str(agnostic_run),
        "--data",
        str(tmp_path / "x.npy"),
        "--mask",
        str(tmp_path / "m.npy"),
        "--out",
        str(tmp_path / "f.npy"),
    ]
    assert main(args) == 0
    assert np.load(tmp_path / "f.npy").shape == (20, 64)
    printed = float(capsys.readouterr().out.split("hidden values: ")[1].split()[0])
    model, _ = load_model(agnostic_run)
    observed = torch.from_numpy(hidden == 0)
    expected = -model.conditional_log_prob(torch.from_numpy(test), observed, ensemble=4).double().mean()
    assert printed == pytest.approx(float(expected), abs=1e-3)


def test_inpaint_picture(agnostic_run, tmp_path, capsys):
    out = tmp_path / "inpaint.png"
    assert main(["impute", str(agnostic_run), "--inpaint", str(out), "--examples", "3", "--samples", "4"]) == 0
    width, height = Image.open(out).size
    assert (width, height) == (4 * (6 * 9 + 1), 4 * (3 * 9 + 1))  # 6 columns (original, given, 4), 3 rows
    assert "given the top half, test split" in capsys.readouterr().out


def test_impute_errors(agnostic_run, tmp_path, capsys):
    wide = tmp_path / "wide.npy"
    np.save(wide, np.zeros((2, 65)))
    assert main(["impute", str(agnostic_run), "--data", str(wide)]) == 2
    assert "65 columns, the model expects 64" in capsys.readouterr().err
    bad = np.full((2, 64), np.nan)
    bad[0, 0] = 0.5
    np.save(tmp_path / "bad.npy", bad)
    assert main(["impute", str(agnostic_run), "--data", str(tmp_path / "bad.npy")]) == 2
    assert "bad.npy" in capsys.readouterr().err
    single = tmp_path / "single"
    assert main(["train", "--out", str(single), "--hidden", "8", "--epochs", "1", "--quiet"]) == 0
    assert main(["impute", str(single), "--inpaint", str(tmp_path / "x.png"), "--given", "bottom"]) == 2
    assert "resampled orderings" in capsys.readouterr().err
    assert main(["impute", str(single), "--inpaint", str(tmp_path / "x.png"), "--examples", "2"]) == 0  # top = prefix
    np.save(tmp_path / "zeros.npy", np.zeros((2, 64)))
    np.save(tmp_path / "mask.npy", np.full((2, 64), 2))
    args = ["impute", str(agnostic_run), "--data", str(tmp_path / "zeros.npy"), "--mask", str(tmp_path / "mask.npy")]
    assert main(args) == 2
    assert "0 (observed) or 1 (missing)" in capsys.readouterr().err


def test_eval_reports_the_ensemble_and_its_standard_error(tmp_path, capsys):
    import torch

    from made.data import load_dataset
    from made.inference.evaluate import evaluate_nll
    from made.io.run import load_model

    run = tmp_path / "run"
    args = ["train", "--out", str(run), "--hidden", "16", "--masks", "4", "--direct", "--epochs", "2", "--quiet"]
    assert main(args + ["--init", "orthogonal"]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["ensemble"] == 4  # the whole pool by default
    capsys.readouterr()
    assert main(["eval", str(run), "--ensemble", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    model, _ = load_model(run)
    expected = evaluate_nll(model, torch.from_numpy(load_dataset("digits").test), ensemble=3)
    assert printed["ensemble"] == 3
    assert printed["test_nll"] == expected.nll and printed["test_nll_stderr"] == expected.stderr > 0
    assert main(["eval", str(run), "--ensemble", "3"]) == 0
    text = capsys.readouterr().out
    assert f"{expected.nll:.4f} ± {expected.stderr:.4f}" in text and "ensemble of 3 masks" in text
    assert main(["eval", str(run), "--ensemble", "5"]) == 2
    assert "only 4" in capsys.readouterr().err


def test_unlimited_pool_is_tested_with_1000_masks(tmp_path):
    run = tmp_path / "run"
    args = [
        "train",
        "--out",
        str(run),
        "--hidden",
        "8",
        "--masks",
        "unlimited",
        "--epochs",
        "1",
        "--valid-ensemble",
        "3",
    ]
    assert main(args + ["--quiet"]) == 0
    assert json.loads((run / "metrics.json").read_text())["ensemble"] == 1000


def test_mixed_columns_train_eval_score_and_sample(tmp_path, capsys):
    mixed_csv(tmp_path / "mixed.csv")
    run = tmp_path / "run"
    args = ["train", "--data", str(tmp_path / "mixed.csv"), "--schema", "auto", "--components", "2", "--out", str(run)]
    assert main(args + ["--hidden", "16", "--epochs", "3", "--quiet"]) == 0
    config = json.loads((run / "config.json").read_text())
    assert [c["type"] for c in config["schema"]] == ["binary", "categorical", "real"]
    assert config["model"]["family"]["name"] == "mixed"
    metrics = json.loads((run / "metrics.json").read_text())
    std = config["schema"][2]["std"]
    assert metrics["nll_log_std_sum"] == pytest.approx(np.log(std))  # NLL reported in the data's units
    capsys.readouterr()
    assert main(["eval", str(run), "--json", "--per-dim", str(tmp_path / "per_dim.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["test_nll"] == metrics["test_nll"]
    per_dim = np.loadtxt(tmp_path / "per_dim.csv", delimiter=",", skiprows=1)
    assert per_dim.shape == (12, 3)
    assert per_dim.sum(1).mean() == pytest.approx(metrics["test_nll"], rel=1e-5)  # the terms of the NLL
    assert (tmp_path / "per_dim.csv").read_text().startswith("col1,col2,col3")
    assert main(["sample", str(run), "-n", "200", "--out", str(tmp_path / "s.csv")]) == 0
    samples = np.loadtxt(tmp_path / "s.csv", delimiter=",")
    assert set(samples[:, 0]) <= {0, 1} and set(samples[:, 1]) <= {3, 7, 9}
    assert 60 < samples[:, 2].mean() < 140  # back in the data's units, not standardized
    assert main(["eval", str(run), "--per-dim", str(tmp_path / "x.txt")]) == 2


def test_onehot_schema_and_unseen_codes(tmp_path, capsys):
    rng = np.random.RandomState(0)
    bits = np.c_[np.eye(3)[rng.randint(0, 3, 100)], np.eye(2)[rng.randint(0, 2, 100)]]
    np.save(tmp_path / "bits.npy", bits)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "bits.npy"),
                "--schema",
                "onehot",
                "--out",
                str(run),
                "--hidden",
                "8",
                "--epochs",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    config = json.loads((run / "config.json").read_text())
    assert config["model"]["family"] == {"name": "categorical", "categories": [3, 2]}
    assert main(["sample", str(run), "-n", "20", "--out", str(tmp_path / "s.npy")]) == 0
    assert (np.load(tmp_path / "s.npy").sum(1) == 2).all()  # one bit on in each group
    invalid = bits.copy()
    invalid[-1, :3] = 1
    np.save(tmp_path / "bad.npy", invalid)
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(tmp_path / "bad.npy")]) == 2  # every split is encoded and checked
    assert "was not seen in the training split" in capsys.readouterr().err


def test_class_conditional_digits(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--context",
                "labels",
                "--out",
                str(run),
                "--hidden",
                "32",
                "--epochs",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    assert json.loads((run / "config.json").read_text())["context"] == {"kind": "labels", "classes": 10}
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_nll"] == json.loads((run / "metrics.json").read_text())["test_nll"]
    assert main(["sample", str(run), "--context", "3", "-n", "9"]) == 0
    assert Image.open(run / "samples.png").size[0] > 0
    assert main(["sample", str(run), "-n", "9"]) == 2
    assert "pass --context LABEL (0..9)" in capsys.readouterr().err
    assert main(["sample", str(run), "--context", "12"]) == 2
    assert "0..9" in capsys.readouterr().err
    mixed_csv(tmp_path / "m.csv")
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "m.csv"),
                "--schema",
                "auto",
                "--context",
                "labels",
                "--out",
                str(tmp_path / "r2"),
                "--quiet",
            ]
        )
        == 2
    )
    assert "no class labels" in capsys.readouterr().err


TINY = ["--hidden", "16", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def auto_run(tmp_path_factory):
    """Issue 12's reproduction: a category column, a real column (mean about 1000) and a binary column,
    trained with --schema auto and 4 masks, on a CSV without a header."""
    folder = tmp_path_factory.mktemp("auto")
    rng = np.random.RandomState(0)
    rows = np.c_[rng.randint(0, 3, 300), 1000 + 50 * rng.randn(300), rng.randint(0, 2, 300)]
    np.savetxt(folder / "m.csv", rows, fmt=["%d", "%.6f", "%d"], delimiter=",")
    args = ["train", "--data", str(folder / "m.csv"), "--schema", "auto", "--masks", "4", "--split-seed", "5"]
    assert main(args + ["--hidden", "16", "--epochs", "3", "--out", str(folder / "run"), "--quiet"]) == 0
    return folder


def test_impute_reads_and_writes_the_data_in_its_own_values_and_units(auto_run, tmp_path, capsys):
    (tmp_path / "q.csv").write_text("2,,1\n0,,0\n,995.25,1\n")
    out = tmp_path / "o.csv"
    assert main(["impute", str(auto_run / "run"), "--data", str(tmp_path / "q.csv"), "--out", str(out)]) == 0
    filled = np.loadtxt(out, delimiter=",")
    assert filled.shape == (3, 3) and filled[:2, 0].tolist() == [2, 0] and filled[:2, 2].tolist() == [1, 0]
    assert (700 < filled[:2, 1]).all() and (filled[:2, 1] < 1300).all()  # the data's units, not standardized
    assert filled[2, 0] in (0, 1, 2) and filled[2, 1:].tolist() == [995.25, 1]  # observed cells kept exactly
    assert out.read_text().splitlines()[2].endswith(",995.25,1")  # integers as integers
    (tmp_path / "bad.csv").write_text("2,,1\n20,,0\n")
    assert main(["impute", str(auto_run / "run"), "--data", str(tmp_path / "bad.csv")]) == 2
    assert "bad.csv: line 2, column 1: value 20 was not seen in the training split (known: 0, 1, 2)" in (
        capsys.readouterr().err
    )


def test_categories_and_one_hot_groups_are_read_as_their_values(tmp_path):
    rng = np.random.RandomState(1)
    rows = np.c_[rng.choice([0, 2, 5], 200), np.eye(3)[rng.randint(0, 3, 200)], rng.randint(0, 2, 200)]
    np.save(tmp_path / "c.npy", rows)
    run = tmp_path / "run"
    assert (
        main(
            ["train", "--data", str(tmp_path / "c.npy"), "--schema", "onehot", "--masks", "3", "--out", str(run), *TINY]
        )
        == 0
    )
    holes = rows[:6].astype(float)
    holes[:3, 0] = np.nan  # a category
    holes[3:, 1:4] = np.nan  # a whole one-hot group
    np.save(tmp_path / "h.npy", holes)
    assert main(["impute", str(run), "--data", str(tmp_path / "h.npy"), "--out", str(tmp_path / "f.npy")]) == 0
    filled = np.load(tmp_path / "f.npy")
    assert filled.shape == (6, 5) and set(filled[:, 0]) <= {0, 2, 5} and (filled[:, 1:4].sum(1) == 1).all()
    assert (filled[3:, 0] == rows[3:6, 0]).all() and (filled[:3, 1:] == rows[:3, 1:]).all()
    part = holes.copy()
    part[0, 1] = np.nan
    np.save(tmp_path / "p.npy", part)
    assert main(["impute", str(run), "--data", str(tmp_path / "p.npy")]) == 2


def test_values_keep_their_precision(tmp_path, capsys):
    n = 200
    rng = np.random.RandomState(0)
    stamp = np.round(1.7e9 + rng.uniform(0, 1000, n), 3)
    big = rng.randint(16777216, 16777220, n)
    lines = [f"{s:.3f},{b},{rng.choice([10000001, 10000002, 10000003])}" for s, b in zip(stamp, big)]
    (tmp_path / "p.csv").write_text("time,id,code\n" + "\n".join(lines) + "\n")
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--data",
                str(tmp_path / "p.csv"),
                "--schema",
                "auto",
                "--dtype",
                "float64",
                "--out",
                str(run),
                *TINY,
            ]
        )
        == 0
    )
    schema = json.loads((run / "config.json").read_text())["schema"]
    assert [c["type"] for c in schema] == ["real", "categorical", "categorical"]
    assert schema[1]["values"] == [16777216, 16777217, 16777218, 16777219]
    assert main(["sample", str(run), "-n", "50", "--out", str(tmp_path / "s.csv")]) == 0
    cells = [line.split(",") for line in (tmp_path / "s.csv").read_text().splitlines()]
    assert {c[2] for c in cells} <= {"10000001", "10000002", "10000003"} and len({c[2] for c in cells}) > 1
    assert {c[1] for c in cells} <= {"16777216", "16777217", "16777218", "16777219"}
    (tmp_path / "b.csv").write_text("0,1\n1,0\n1e-50,1\n0,0\n1,1\n")
    assert main(["train", "--data", str(tmp_path / "b.csv"), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "b.csv: line 3, column 1: 1e-50 is not binary" in capsys.readouterr().err
    (tmp_path / "b.csv").write_text("0,1\n1,0\n0,0.99999999999\n0,0\n1,1\n")
    assert main(["train", "--data", str(tmp_path / "b.csv"), "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "line 3, column 2: 0.99999999999 is not binary" in capsys.readouterr().err


def test_header_guess_and_options_keep_every_row(auto_run, tmp_path, capsys):
    run = str(auto_run / "run")
    (tmp_path / "q.csv").write_text("N/A,1000,1\n1,,0\n,,\n2,990,\n0,1010,1\n1,,1\n")  # 6 rows, no header
    assert main(["impute", run, "--data", str(tmp_path / "q.csv"), "--out", str(tmp_path / "o.csv")]) == 0
    out = np.loadtxt(tmp_path / "o.csv", delimiter=",")
    assert out.shape == (6, 3) and out[4].tolist() == [0, 1010, 1] and out[0, 1:].tolist() == [1000, 1]
    (tmp_path / "h.csv").write_text("a,b,c\n1,,0\n")
    assert main(["impute", run, "--data", str(tmp_path / "h.csv"), "--out", str(tmp_path / "h_out.csv")]) == 0
    assert (tmp_path / "h_out.csv").read_text().splitlines()[0] == "a,b,c"  # the header is written back
    assert main(["impute", run, "--data", str(tmp_path / "h.csv"), "--no-header"]) == 2
    assert "h.csv: line 1, column 1: 'a' is not a number" in capsys.readouterr().err
    (tmp_path / "o.csv").write_text("1,O,0\n1,,0\n")  # a letter O in the first row: not a header
    assert main(["impute", run, "--data", str(tmp_path / "o.csv")]) == 2
    assert "line 1, column 2: 'O' is not a number (the first line holds numbers" in capsys.readouterr().err
    pandas = tmp_path / "pandas.csv"
    pandas.write_text("0,1,2\n" + (auto_run / "m.csv").read_text())
    assert main(["eval", run, "--data", str(pandas)]) == 2  # 302 rows: another split, unseen values
    assert "line 1 is 0,1,...,2, read as data; if it is a header (pandas writes one), pass --header" in (
        capsys.readouterr().err
    )
    assert main(["eval", run, "--data", str(pandas), "--header", "--json"]) == 0
    with_header = json.loads(capsys.readouterr().out)
    assert with_header["test_nll"] == json.loads((auto_run / "run" / "metrics.json").read_text())["test_nll"]


def test_eval_scores_the_runs_own_split(auto_run, capsys):
    metrics = json.loads((auto_run / "run" / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(auto_run / "run"), "--data", str(auto_run / "m.csv")]) == 0
    text = capsys.readouterr().out
    assert "m test (rows split with seed 5)" in text and f"NLL {metrics['test_nll']:.4f}" in text
    assert main(["eval", str(auto_run / "run"), "--data", str(auto_run / "m.csv"), "--split-seed", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split_seed"] == 0


def test_eval_names_no_split_seed_for_a_file_with_its_own_splits(tmp_path, capsys):
    """An .npz holding train/valid/test is not split by made, so neither the line nor --json names a seed."""
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "own.npz", **{s: (rng.random((40, 5)) < 0.3).astype(np.uint8) for s in ("train", "valid", "test")}
    )
    run = str(tmp_path / "run")
    assert main(["train", "--data", str(tmp_path / "own.npz"), "--out", run, "--epochs", "1", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["eval", run]) == 0
    line = capsys.readouterr().out
    assert line.startswith("own test: NLL") and "seed" not in line
    assert main(["eval", run, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split_seed"] is None


def test_impute_with_nothing_missing_copies_the_input(auto_run, tmp_path, capsys):
    rows = np.loadtxt(auto_run / "m.csv", delimiter=",")[:5]
    np.save(tmp_path / "full.npy", rows)
    out = tmp_path / "out.npy"
    assert main(["impute", str(auto_run / "run"), "--data", str(tmp_path / "full.npy"), "--out", str(out)]) == 0
    assert "nothing was missing" in capsys.readouterr().out
    assert np.array_equal(np.load(out), rows) and np.load(out).dtype == rows.dtype
    np.save(tmp_path / "zeros.npy", np.zeros_like(rows))
    assert (
        main(
            [
                "impute",
                str(auto_run / "run"),
                "--data",
                str(tmp_path / "full.npy"),
                "--mask",
                str(tmp_path / "zeros.npy"),
                "--out",
                str(out),
                "--samples",
                "2",
            ]
        )
        == 0
    )
    assert np.array_equal(np.load(out), np.repeat(rows, 2, axis=0))


def test_impute_a_class_conditional_run_takes_the_label(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--context", "labels", "--masks", "2", "--out", str(run), *TINY]) == 0
    rows = np.full((3, 64), np.nan)
    rows[:, :32] = 0
    np.save(tmp_path / "x.npy", rows)
    assert main(["impute", str(run), "--data", str(tmp_path / "x.npy")]) == 2
    assert "this run is conditioned on a class label: pass --context LABEL (0..9)" in capsys.readouterr().err
    assert (
        main(
            ["impute", str(run), "--data", str(tmp_path / "x.npy"), "--context", "3", "--out", str(tmp_path / "f.npy")]
        )
        == 0
    )
    assert set(np.unique(np.load(tmp_path / "f.npy")[:, 32:])) <= {0, 1}


def test_messages_name_what_the_user_wrote(tmp_path, capsys):
    rows = np.random.RandomState(0).randint(0, 2, (50, 5)).astype(float)
    text = "\n".join(",".join(f"{v:g}" for v in r) + "," for r in rows) + "\n"  # every line ends in a comma
    (tmp_path / "comma.csv").write_text(text)
    assert main(["train", "--data", str(tmp_path / "comma.csv"), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "comma.csv: line 1 has an empty last cell (column 6): a missing value, or a trailing comma?" in (
        capsys.readouterr().err
    )
    rows[36, 2] = 7
    np.savetxt(tmp_path / "seven.csv", rows, fmt="%g", delimiter=",", header="a,b,c,d,e", comments="")
    assert main(["train", "--data", str(tmp_path / "seven.csv"), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "seven.csv: line 38, column 3: 7 is not binary" in capsys.readouterr().err  # the file's line
    rows[36, 2] = np.nan
    np.save(tmp_path / "nan.npy", rows)
    assert main(["train", "--data", str(tmp_path / "nan.npy"), "--out", str(tmp_path / "r"), "--quiet"]) == 2
    assert "nan.npy: row 37, column 3: nan is a missing value" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--data", str(tmp_path / "comma.csv"), "--components", "0", "--schema", "auto"])
    assert "argument --components: expected an integer of at least 1, got '0'" in capsys.readouterr().err


def test_runs_of_made_0_2_evaluate_as_before(auto_run, tmp_path, capsys):
    """A config.json without the data's header and precision (made 0.2): the same figure, and one line
    when the data holds values that 0.2's float32 reading rounded."""
    import shutil

    run = tmp_path / "old"
    shutil.copytree(auto_run / "run", run)
    config = json.loads((run / "config.json").read_text())
    del config["data"]["header"], config["data"]["precision"]
    (run / "config.json").write_text(json.dumps(config))
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["test_nll"] == json.loads((run / "metrics.json").read_text())["test_nll"]
    assert captured.err.count("\n") == 1 and "made 0.2, which read its data as float32" in captured.err


# ------------------------------------------------------------ hostile input
def error_line(capsys):
    """The last line on stderr (warnings of the small test models may come before it)."""
    return capsys.readouterr().err.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("small") / "run"
    assert main(["train", "--out", str(run), "--hidden", "8", "--epochs", "2", "--quiet"]) == 0
    return run


@pytest.mark.parametrize(
    "argv, option",
    [
        (["eval", "RUN", "--batch-size", "-1"], "--batch-size"),
        (["eval", "RUN", "--ensemble", "0"], "--ensemble"),
        (["eval", "RUN", "--ensemble", "10000000"], "--ensemble"),
        (["sample", "RUN", "-n", "0"], "-n/--num-samples"),
        (["train", "--hidden", "-5"], "--hidden"),
        (["train", "--hidden", "8", "0"], "--hidden"),
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--seed", "1e23"], "--seed"),
        (["train", "--lr", "inf"], "--lr"),
        (["train", "--lr", "nan"], "--lr"),
        (["train", "--max-minutes", "-1"], "--max-minutes"),
        (["train", "--weight-decay", "nan"], "--weight-decay"),
        (["train", "--adadelta-rho", "2"], "--adadelta-rho"),
        (["train", "--checkpoint-every", "0"], "--checkpoint-every"),
        (["masks", "--hidden", "-1"], "--hidden"),
        (["masks", "--mask-index", "-1"], "--mask-index"),
    ],
)
def test_numeric_options_are_range_checked(argv, option, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exited.value.code == 2 and err[-1].startswith(f"made {argv[0]}: error: argument {option}")


@pytest.mark.parametrize(
    "section, key, value",
    [
        ("eval", "batch_size", -5),
        ("eval", "batch_size", 0),
        ("eval", "ensemble", 10**7),
        ("eval", "ensemble", 0),
        ("data", "split_seed", -1),
    ],
)
def test_numeric_settings_of_a_run_folder_are_range_checked(small_run, tmp_path, capsys, section, key, value):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    config = json.loads((run / "config.json").read_text())
    config[section][key] = value
    (run / "config.json").write_text(json.dumps(config))
    assert main(["eval", str(run), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and f"config.json: {section}.{key} has a value outside its allowed range" in captured.err


def test_resume_refuses_a_negative_width_in_args_json(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / "metrics.json").unlink()
    args = json.loads((run / "args.json").read_text())
    args["options"]["hidden"] = [-5]
    (run / "args.json").write_text(json.dumps(args))
    assert main(["train", "--resume", str(run)]) == 2
    assert "args.json: options.hidden: [-5] is not a valid value of --hidden" in capsys.readouterr().err


@pytest.mark.parametrize("device", ["meta", "mps", "xpu", "hpu", "cuda:99"])
def test_devices_that_are_not_here_are_refused_naming_the_option(tmp_path, capsys, device):
    if device == "cuda:99" and torch.cuda.device_count() > 99:
        pytest.skip("this machine has 100 GPUs")
    assert main(["train", "--out", str(tmp_path / "run"), "--device", device, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"made: error: --device {device.split(':')[0]}")
    assert not (tmp_path / "run").exists()


def test_a_device_from_args_json_is_checked_too(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    (run / "metrics.json").unlink()
    args = json.loads((run / "args.json").read_text())
    args["options"]["device"] = "meta"
    (run / "args.json").write_text(json.dumps(args))
    assert main(["train", "--resume", str(run)]) == 2
    assert capsys.readouterr().err.startswith("made: error: --device meta")


def test_masks_refuses_a_picture_too_big_before_building_the_model(monkeypatch, capsys):
    def never(*args, **kwargs):
        raise AssertionError("a model was built")

    monkeypatch.setattr("made.cli.masks.new_model", never)
    assert main(["masks", "--inputs", "100000", "--hidden", "3"]) == 2
    assert "--inputs and --hidden: at most 40 units a layer" in capsys.readouterr().err


@pytest.mark.parametrize(
    "error",
    [
        RuntimeError(
            "[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: you tried to "
            "allocate 25600000000 bytes. Error code 12 (Cannot allocate memory)"
        ),
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
    ],
)
def test_allocation_failures_are_one_line(small_run, monkeypatch, capsys, error):
    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr("made.model.made.MADE.sample", fail)
    assert main(["sample", str(small_run), "-n", "100000000", "--out", "/nonexistent/s.npy"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["made: error: out of memory; try a smaller model, --batch-size, -n or data set"]


def test_other_runtime_errors_are_not_taken_for_memory(small_run, monkeypatch):
    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("made.model.made.MADE.sample", fail)
    with pytest.raises(RuntimeError, match="a bug"):
        main(["sample", str(small_run), "-n", "2", "--out", "/nonexistent/s.npy"])


def test_the_memory_check_reads_the_address_space_limit(tmp_path):
    """Under ``ulimit -v`` (3 GB), a model that needs 9 GiB is refused before anything is allocated."""
    import resource

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3_000_000 * 1024, resource.getrlimit(resource.RLIMIT_AS)[1]))

    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "made",
            "train",
            "--hidden",
            "20000",
            "20000",
            "--quiet",
            "--out",
            str(tmp_path / "run"),
        ],
        preexec_fn=limit,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
        timeout=120,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert re.fullmatch(
        r"made: error: a model with 64 inputs and hidden layers \[20000, 20000\] needs about 9\.0 GiB "
        r"to train, more than the [\d.]+ GiB available\n",
        done.stderr,
    )


def test_overwrite_replaces_a_run_only_once_the_new_one_is_complete(small_run, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    assert main(["sample", str(run), "-n", "4"]) == 0
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr("made.pipeline.train.evaluate_nll", interrupted)  # the new run dies in its final evaluation
        assert main(["train", "--out", str(run), "--overwrite", "--hidden", "4", "--epochs", "1", "--quiet"]) == 130
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folder left
    assert main(["train", "--out", str(run), "--overwrite", "--hidden", "4", "--epochs", "1", "--quiet"]) == 0
    assert not (run / "samples.png").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert json.loads((run / "config.json").read_text())["model"]["hidden_sizes"] == [4]
    assert main(["eval", str(run)]) == 0
    assert f"run folder: {run}" in capsys.readouterr().out


def test_eval_of_a_killed_run_points_to_resume(small_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(small_run, run)
    for name in ("config.json", "model.safetensors", "metrics.json"):
        (run / name).unlink()
    assert main(["eval", str(run)]) == 2
    assert error_line(capsys) == (
        f"made: error: {run}: training did not finish (no config.json); continue it with made train --resume {run}"
    )


def test_errors_name_the_file_the_user_named(small_run, tmp_path, capsys):
    long_name = tmp_path / ("s" * 250 + ".npy")  # a valid name: its temporary file must be too
    assert main(["sample", str(small_run), "-n", "2", "--out", str(long_name)]) == 0
    assert np.load(long_name).shape == (2, 64)
    too_long = tmp_path / ("s" * 300 + ".npy")
    assert main(["sample", str(small_run), "-n", "2", "--out", str(too_long)]) == 2
    assert error_line(capsys) == f"made: error: {too_long}: File name too long"
    (tmp_path / "run" / "log.jsonl").mkdir(parents=True)
    assert main(["train", "--out", str(tmp_path / "run"), "--hidden", "4", "--epochs", "1", "--quiet"]) == 2
    assert error_line(capsys) == (
        f"made: error: {tmp_path / 'run' / 'log.jsonl'}: {tmp_path / 'run'} holds files made did not write; "
        "choose another --out, or pass --overwrite to write beside them (made deletes no file it did not write)"
    )
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["log.jsonl"]
    fifo = tmp_path / "fifo"
    shutil.copytree(small_run, fifo)
    (fifo / "model.safetensors").unlink()
    os.mkfifo(fifo / "model.safetensors")
    assert main(["eval", str(fifo)]) == 2
    assert error_line(capsys) == f"made: error: {fifo / 'model.safetensors'}: not a regular file"


def test_blocks_and_dropout_train_evaluate_and_sample(tmp_path, capsys):
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--dataset",
                "digits",
                "--out",
                str(run),
                "--hidden",
                "32",
                "--blocks",
                "residual",
                "residual",
                "--dropout",
                "0.2",
                "--masks",
                "2",
                "--epochs",
                "2",
                "--quiet",
            ]
        )
        == 0
    )
    model = json.loads((run / "config.json").read_text())["model"]
    assert model["blocks"] == ["residual", "residual"] and model["dropout"] == 0.2
    capsys.readouterr()
    assert main(["eval", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_nll"] == json.loads((run / "metrics.json").read_text())["test_nll"]
    assert main(["sample", str(run), "-n", "4", "--out", str(tmp_path / "s.npy")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (4, 64)
    for bad in (["--blocks", "dense"], ["--dropout", "1"]):
        with pytest.raises(SystemExit):
            main(["train", "--dataset", "digits", "--out", str(tmp_path / "bad"), *bad])


def test_made_masks_refuses_a_mixture_whatever_the_mask_index(tmp_path, capsys):
    """A mixture has no masks of its own: `made masks` says so in one line, also with --mask-index
    (which once reached the mixture's missing set_mask and ended in a traceback)."""
    save_mixture(tmp_path / "mix", Mixture([MADE(4, [8], seed=1), MADE(4, [8], seed=2)]))
    for extra in ([], ["--mask-index", "1"]):
        assert main(["masks", str(tmp_path / "mix"), "--out", str(tmp_path / "m.png"), *extra]) == 2
        err = capsys.readouterr().err
        assert err == "made: error: a mixture has no masks of its own; draw a member's (RUN/members/I)\n"
        assert not (tmp_path / "m.png").exists()
