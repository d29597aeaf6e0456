import json

import numpy as np
import pytest
from PIL import Image

from made.cli import main


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


def mixed_csv(path, n=120, seed=0):
    rng = np.random.RandomState(seed)
    a = rng.randint(0, 2, n)
    rows = np.c_[a, rng.choice([3, 7, 9], n), rng.randn(n) * 5 + 100 + 10 * a]
    np.savetxt(path, rows, delimiter=",", fmt=["%d", "%d", "%.5f"], header="a,b,c", comments="")
    return rows


def test_mixed_columns_train_eval_score_and_sample(tmp_path, capsys):
    rows = mixed_csv(tmp_path / "mixed.csv")
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
    assert main(["train", "--data", str(tmp_path / "bits.npy"), "--schema", "onehot", "--out", str(run),
                 "--hidden", "8", "--epochs", "2", "--quiet"]) == 0
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
    assert main(["train", "--dataset", "digits", "--context", "labels", "--out", str(run), "--hidden", "32",
                 "--epochs", "2", "--quiet"]) == 0
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
    assert main(["train", "--data", str(tmp_path / "m.csv"), "--schema", "auto", "--context", "labels",
                 "--out", str(tmp_path / "r2"), "--quiet"]) == 2
    assert "no class labels" in capsys.readouterr().err
