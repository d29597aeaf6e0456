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
