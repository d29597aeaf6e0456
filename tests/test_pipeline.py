"""made.pipeline: the library route of 'made train' gives the run folder and metrics the command line does."""

import json

import pytest

from conftest import mixed_csv
from made.cli import main
from made.pipeline import build_model, data_spec, read_data, train_run
from made.training.loop import TrainConfig

TIMINGS = {"seconds", "seconds_per_epoch"}


def test_train_run_makes_the_run_that_made_train_makes(tmp_path, capsys):
    mixed_csv(tmp_path / "mixed.csv")
    cli_run, lib_run = tmp_path / "cli", tmp_path / "lib"
    assert main(["train", "--data", str(tmp_path / "mixed.csv"), "--schema", "auto", "--hidden", "8", "--masks", "2",
                 "--epochs", "2", "--quiet", "--out", str(cli_run)]) == 0

    data = read_data(data_spec(path=tmp_path / "mixed.csv"), schema="auto")
    model = build_model(data, hidden_sizes=[8], num_masks=2)
    metrics = train_run(lib_run, data, model, TrainConfig(epochs=2), progress=False)

    expected = json.loads((cli_run / "metrics.json").read_text())
    assert {k: v for k, v in metrics.items() if k not in TIMINGS} == {k: v for k, v in expected.items() if k not in TIMINGS}
    assert json.loads((lib_run / "metrics.json").read_text()) == metrics
    assert json.loads((lib_run / "config.json").read_text()) == json.loads((cli_run / "config.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(lib_run), "--json"]) == 0  # an ordinary run folder for the other commands
    assert json.loads(capsys.readouterr().out)["test_nll"] == pytest.approx(metrics["test_nll"], rel=1e-12)


def test_build_model_refuses_a_model_too_big_for_memory(tmp_path, monkeypatch):
    mixed_csv(tmp_path / "mixed.csv")
    data = read_data(data_spec(path=tmp_path / "mixed.csv"), schema="auto")
    monkeypatch.setattr("made.training.memory.available_memory", lambda: 1000)  # bytes: less than any model needs
    with pytest.raises(ValueError, match=r"hidden layers \(500,\) needs about .* GiB to train, more than the 0.0 GiB"):
        build_model(data)  # MADE's default hidden layer, checked before anything is allocated
