"""The typed run settings: the options of 'made train', args.json and the resume rule all come from them."""

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

import made
from made.cli import main
from made.cli.main import build_parser
from made.cli.train import command_parser
from made.config import RunSettings, option_names, options_of, resumable
from made.data.fields import SchemaError
from made.io.checkpoint import FORMAT_VERSION
from made.model import MADE
from made.model.config import MADEConfig
from made.model.settings import flag_of, setting_of
from made.training.loop import TrainConfig

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
    assert settings.model["hidden_sizes"] == [7, 9] and settings.model["num_masks"] == 4
    assert MADE(5, **settings.model).config.hidden_sizes == (7, 9)
    config = settings.train_config()
    assert (config.seed, config.epochs, config.max_seconds) == (11, 8, 150.0)


@pytest.mark.parametrize(
    "flag, text, value",
    [
        ("--dropout", "1.0", 1.0),
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


@pytest.mark.parametrize("settings, flag", [(MADEConfig, "--masks"), (TrainConfig, "--batch-size")])
def test_made_train_refuses_what_the_settings_class_refuses_in_its_words(settings, flag, capsys):
    name = {"--masks": "num_masks", "--batch-size": "batch_size"}[flag]
    with pytest.raises(ValueError, match=rf"^{name} must be (.+), got 0$") as refused:
        settings(**({"num_inputs": 3} if settings is MADEConfig else {}), **{name: 0})
    words = re.match(rf"^{name} must be (.+), got 0$", str(refused.value)).group(1)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", flag, "0"])
    assert f"argument {flag}: expected {words}, got '0'" in capsys.readouterr().err


def test_the_training_options_are_the_fields_of_train_config_with_a_help():
    described = {spec.name for spec in fields(TrainConfig) if setting_of(spec).help is not None}
    assert described <= option_names(RunSettings)
    assert described == {spec.name for spec in fields(TrainConfig)} - {
        "seed",  # the model's
        "adagrad_eps",
        "eval_batch_size",
        "max_seconds",  # made train takes --max-minutes
    }


def test_flag_of_spells_every_option_of_made_train_and_the_no_form_of_its_switches():
    text = command_parser()[1].format_help()
    for name, _, option in options_of(RunSettings):
        assert flag_of(name) in text
        assert (flag_of("no_" + name) in text) == (option.kind == "switch")  # how made tune turns one off
    assert flag_of("batch_size") == "--batch-size"


STAND_IN = """    stand_in: int = setting(
        3, "a stand-in setting (default: 3)", values=integers(1), added_in="0.3", before=3, group="model"
    )

"""


def test_a_setting_added_to_made_config_alone_reaches_the_cli_args_json_and_model_files(tmp_path):
    """Copy the package, add one field to MADEConfig and nothing else: made train offers it with its help and
    range, records it in args.json, and the model files carry it and load again."""
    package = tmp_path / "made"
    shutil.copytree(Path(made.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    source = package / "model" / "config.py"
    text = source.read_text()
    assert text.count("    def __post_init__(self) -> None:") == 1
    source.write_text(
        text.replace("    def __post_init__(self) -> None:", STAND_IN + "    def __post_init__(self) -> None:")
    )
    np.save(tmp_path / "tiny.npy", (np.random.RandomState(0).rand(60, 5) < 0.5).astype(np.uint8))

    def made_command(*argv):
        env = {**os.environ, "PYTHONPATH": str(tmp_path)}
        return subprocess.run(
            [sys.executable, "-m", "made", *argv], cwd=tmp_path, env=env, capture_output=True, text=True
        )

    helped = made_command("train", "--help")
    assert helped.returncode == 0 and re.search(
        r"--stand-in STAND_IN\s+a stand-in setting \(default: 3\)", helped.stdout
    )
    refused = made_command("train", "--data", "tiny.npy", "--stand-in", "0")
    assert "argument --stand-in: expected an integer of at least 1, got '0'" in refused.stderr
    trained = made_command(
        "train",
        "--data",
        "tiny.npy",
        "--hidden",
        "4",
        "--epochs",
        "1",
        "--stand-in",
        "5",
        "--out",
        "run",
        "--quiet",
        "--device",
        "cpu",
    )
    assert trained.returncode == 0, trained.stderr
    assert json.loads((tmp_path / "run" / "args.json").read_text())["options"]["stand_in"] == 5
    assert json.loads((tmp_path / "run" / "config.json").read_text())["model"]["stand_in"] == 5
    evaluated = made_command("eval", "run", "--data", "tiny.npy", "--json")
    assert evaluated.returncode == 0 and "test_nll" in json.loads(evaluated.stdout), evaluated.stderr
