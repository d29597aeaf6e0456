"""The typed run settings: the options of 'made train', args.json and the resume rule all come from them."""

import json

import numpy as np
import pytest

from made.cli import main
from made.cli.main import build_parser
from made.config import RunSettings, option_names, resumable
from made.data.fields import SchemaError
from made.io.checkpoint import FORMAT_VERSION

# a value other than the default for every option (but --dataset, which --data excludes), of every kind:
# values, lists, flags, switches, choices
NON_DEFAULTS = [
    "--data",
    "x.npy",
    "--data-dir",
    "sets",
    "--split-seed",
    "3",
    "--header",
    "--hidden",
    "7",
    "9",
    "--direct",
    "--blocks",
    "residual",
    "--dropout",
    "0.25",
    "--masks",
    "unlimited",
    "--resample",
    "ordering",
    "--ordering",
    "random",
    "--degrees",
    "even",
    "--activation",
    "tanh",
    "--conditioning",
    "--init",
    "orthogonal",
    "--seed",
    "11",
    "--schema",
    "auto",
    "--max-categories",
    "5",
    "--components",
    "2",
    "--min-scale",
    "0.01",
    "--context",
    "labels",
    "--optimizer",
    "adadelta",
    "--lr",
    "0.5",
    "--batch-size",
    "17",
    "--patience",
    "4",
    "--epochs",
    "8",
    "--max-minutes",
    "2.5",
    "--weight-decay",
    "0.001",
    "--lr-schedule",
    "cosine",
    "--warmup-epochs",
    "2",
    "--adadelta-eps",
    "1e-06",
    "--adadelta-rho",
    "0.9",
    "--valid-ensemble",
    "5",
    "--test-ensemble",
    "6",
    "--device",
    "cpu",
    "--dtype",
    "float64",
    "--quiet",
    "--checkpoint-every",
    "3",
]
ADDED_SINCE_0_2 = {"header": None, "blocks": [], "dropout": 0.0, "lr_schedule": "constant", "warmup_epochs": 0}


def parsed(*argv):
    return RunSettings.from_args(build_parser().parse_args(["train", *argv]))


def test_every_option_is_a_setting_and_round_trips_through_args_json():
    settings = parsed(*NON_DEFAULTS)
    record = json.loads(json.dumps(settings.to_json()))
    assert set(record) == option_names(RunSettings)
    assert record["data"].endswith("/x.npy") and record["data"] != "x.npy"  # absolute: read from anywhere
    assert RunSettings.from_json(record, "args") == settings
    differ = {name for name, value in parsed().to_json().items() if record[name] != value}
    assert differ == option_names(RunSettings) - {"dataset"}


def test_the_defaults_are_those_of_the_settings_classes():
    assert parsed() == RunSettings()


def test_an_args_json_of_made_0_2_trains_as_it_did():
    record = RunSettings().to_json()
    old = {name: value for name, value in record.items() if name not in ADDED_SINCE_0_2}
    assert RunSettings.from_json(old, "args") == RunSettings()
    assert {name: record[name] for name in ADDED_SINCE_0_2} == ADDED_SINCE_0_2


def test_the_settings_give_made_and_train_config():
    settings = parsed("--hidden", "7", "9", "--masks", "4", "--seed", "11", "--max-minutes", "2.5", "--epochs", "8")
    assert settings.model.made_kwargs()["hidden_sizes"] == [7, 9]
    assert settings.model.made_kwargs()["num_masks"] == 4
    config = settings.train_config()
    assert (config.seed, config.epochs, config.max_seconds) == (11, 8, 150.0)


@pytest.mark.parametrize(
    "flag, text, value",
    [
        ("--dropout", "0.99", 0.99),
        ("--hidden", "0", [0]),
        ("--masks", "0", 0),
        ("--seed", "-1", -1),
        ("--adadelta-rho", "1.5", 1.5),
        ("--optimizer", "lbfgs", "lbfgs"),
        ("--min-scale", "0", 0.0),
        ("--valid-ensemble", "100001", 100001),
        ("--blocks", "dense", ["dense"]),
    ],
)
def test_a_range_check_refuses_the_same_value_from_the_cli_and_from_args_json(flag, text, value, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", flag, text])
    assert exit_.value.code == 2 and f"argument {flag}" in capsys.readouterr().err
    name = flag[2:].replace("-", "_")
    with pytest.raises(SchemaError, match=f"^args.{name}: .* is not a valid value of {flag}$"):
        RunSettings.from_json({**RunSettings().to_json(), name: value}, "args")


@pytest.mark.parametrize(
    "record, message",
    [
        ({**RunSettings().to_json(), "quiet": 1}, "is not a valid value of --quiet"),
        ({**RunSettings().to_json(), "epochs": "6"}, "is not a valid value of --epochs"),
        ({**RunSettings().to_json(), "lr": None, "seed": None}, "is not a valid value of --seed"),
        ({**RunSettings().to_json(), "evil": 1}, r"unknown options \['evil'\]"),
        ([], "args must be an object, got list"),
    ],
)
def test_args_json_values_are_checked_strictly(record, message):
    with pytest.raises(SchemaError, match=message):
        RunSettings.from_json(record, "args")


def test_resume_may_change_how_a_run_goes_not_what_it_trains():
    assert resumable() == {"device", "quiet", "checkpoint_every", "max_minutes"}


@pytest.fixture
def stored_run(tmp_path):
    rng = np.random.RandomState(0)
    np.save(tmp_path / "tiny.npy", (rng.rand(100, 6) < 0.5).astype(np.uint8))
    settings = parsed("--data", str(tmp_path / "tiny.npy"), "--hidden", "4", "--epochs", "1", "--device", "cpu")
    run = tmp_path / "run"
    run.mkdir()
    record = {"format_version": FORMAT_VERSION, "command": "train", "options": settings.to_json()}
    (run / "args.json").write_text(json.dumps(record))
    return run


def test_resume_refuses_a_what_option(stored_run, capsys):
    assert main(["train", "--resume", str(stored_run), "--hidden", "8", "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"made: error: --resume takes every setting from {stored_run / 'args.json'}; drop --hidden\n"
    )


def test_resume_accepts_a_how_option(stored_run, capsys):
    assert main(["train", "--resume", str(stored_run), "--quiet", "--checkpoint-every", "2"]) == 0
    config = json.loads((stored_run / "config.json").read_text())
    assert config["model"]["hidden_sizes"] == [4] and config["train"]["checkpoint_every"] == 2
    assert json.loads((stored_run / "args.json").read_text())["options"]["checkpoint_every"] == 1  # as started
