"""made.pipeline: the library route of 'made train' gives the run folder and metrics the command line does."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from conftest import mixed_csv

from made.cli import main
from made.config import DataSettings, RunSettings
from made.pipeline import (
    build_model,
    data_spec,
    evaluate_run,
    impute_run,
    load_for_inference,
    read_data,
    sample_run,
    settings_data,
    train_run,
    write_samples,
)
from made.training.loop import TrainConfig

TIMINGS = {"seconds", "seconds_per_epoch", "eval_seconds"}


def train_mixed(tmp_path: Path, out: Path) -> None:
    """``made train`` on conftest's mixed.csv (in ``tmp_path``): a small two-mask model, two epochs."""
    argv = ["train", "--data", str(tmp_path / "mixed.csv"), "--schema", "auto", "--hidden", "8", "--masks", "2"]
    assert main([*argv, "--epochs", "2", "--quiet", "--out", str(out)]) == 0


def test_train_run_makes_the_run_that_made_train_makes(tmp_path, capsys):
    mixed_csv(tmp_path / "mixed.csv")
    cli_run, lib_run = tmp_path / "cli", tmp_path / "lib"
    train_mixed(tmp_path, cli_run)

    data = read_data(data_spec(path=tmp_path / "mixed.csv"), schema="auto")
    model = build_model(data, hidden_sizes=[8], num_masks=2)
    metrics = train_run(lib_run, data, model, TrainConfig(epochs=2), progress=False)

    expected = json.loads((cli_run / "metrics.json").read_text())
    assert {k: v for k, v in metrics.items() if k not in TIMINGS} == {
        k: v for k, v in expected.items() if k not in TIMINGS
    }
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


def documented_pipeline_example() -> str:
    """The documentation's example of made.pipeline (the Python block of docs/python/pipeline.md that loads a run)."""
    page = (Path(__file__).resolve().parents[1] / "docs" / "python" / "pipeline.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    return next(b for b in blocks if "load_for_inference" in b)


def test_the_documented_example_trains_loads_evaluates_samples_and_imputes(tmp_path, monkeypatch):
    mixed_csv(tmp_path / "table.csv")
    monkeypatch.chdir(tmp_path)  # the example's relative table.csv and runs/table
    code = documented_pipeline_example().replace("hidden_sizes=[200]", "hidden_sizes=[8]")
    assert "epochs=5" in code and "hidden_sizes=[8]" in code  # the shrinking took
    scope: dict = {}
    exec(code.replace("epochs=5", "epochs=2"), scope)  # noqa: S102 -- the documentation's code, on a tiny run

    run = tmp_path / "runs" / "table"
    assert scope["metrics"] == json.loads((run / "metrics.json").read_text())
    assert scope["test"]["test_nll"] == pytest.approx(scope["metrics"]["test_nll"], rel=1e-12)
    samples, filled = scope["rows"], scope["filled"]
    assert samples.shape == (10, 3) and filled.shape == (30, 3)
    assert set(np.unique(samples[:, 0])) <= {0, 1} and set(np.unique(samples[:, 1])) <= {3, 7, 9}
    assert not np.isnan(filled).any() and set(np.unique(filled[:, 0])) <= {0, 1}
    assert np.array_equal(filled[:, 1:], np.repeat(samples[:, 1:], 3, axis=0))  # the observed cells kept


def test_the_library_runs_what_the_commands_run(tmp_path, capsys):
    mixed_csv(tmp_path / "mixed.csv")
    run = tmp_path / "run"
    train_mixed(tmp_path, run)
    model, config = load_for_inference(run)
    for split in ("test", "valid"):
        capsys.readouterr()
        assert main(["eval", str(run), "--json", "--split", split, "--device", "cpu"]) == 0
        assert evaluate_run(model, config, split=split).metrics == json.loads(capsys.readouterr().out)
    assert main(["sample", str(run), "-n", "7", "--seed", "3", "--out", str(tmp_path / "s.npy"), "--quiet"]) == 0
    assert np.array_equal(sample_run(model, config, 7, seed=3), np.load(tmp_path / "s.npy"))
    holes = np.load(tmp_path / "s.npy").astype(float)
    holes[::2, 2] = np.nan
    np.save(tmp_path / "holes.npy", holes)
    assert (
        main(
            [
                "impute",
                str(run),
                "--data",
                str(tmp_path / "holes.npy"),
                "--samples",
                "2",
                "--seed",
                "5",
                "--out",
                str(tmp_path / "filled.npy"),
                "--quiet",
            ]
        )
        == 0
    )
    filled = impute_run(model, config, holes, samples=2, seed=5).rows
    assert np.array_equal(filled, np.load(tmp_path / "filled.npy"))


def test_a_new_run_without_a_split_seed_splits_its_file_with_the_default_seed(tmp_path):
    """``DataSettings(split_seed=None)`` (on the command line "the run's", for eval) in a new run splits a
    single array with the default seed 0, and records it: it once reached ``RandomState(None)``, a split
    no later eval could repeat (its test rows then overlapped the training rows)."""
    path = tmp_path / "rows.npy"
    np.save(path, np.random.RandomState(0).randint(0, 2, size=(60, 4)).astype(float))
    unset = settings_data(RunSettings(data=DataSettings(data=str(path), split_seed=None)))
    default = settings_data(RunSettings(data=DataSettings(data=str(path))))
    assert unset.spec["split_seed"] == default.spec["split_seed"] == 0
    for split in ("train", "valid", "test"):
        np.testing.assert_array_equal(unset.raw.split(split), default.raw.split(split))


def test_write_samples_refuses_a_picture_of_data_that_is_not_image_shaped(tmp_path):
    """A .png needs an image shape: without one ``write_samples`` says so in one line naming the file
    (it once ended in ``tuple(None)``'s TypeError) and writes nothing."""
    out = tmp_path / "s.png"
    with pytest.raises(ValueError, match=r"s\.png: a \.png needs image-shaped data; write \.npy or \.csv instead"):
        write_samples(out, np.zeros((2, 4)), None)
    assert not out.exists()
