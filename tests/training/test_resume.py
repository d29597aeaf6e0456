"""Interrupted training resumes exactly: killed runs end with the weights of an uninterrupted one.

The kills are real SIGKILLs, at named moments (``tests/crash_driver.py``): mid-epoch, while a checkpoint file is written
but not yet renamed, between the files of one checkpoint, and while the final
results are written. Every process runs with one thread so that all of them do
the same floating-point operations.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from made import MADE
from made.cli import main
from made.io.atomic import CheckpointError
from made.io.training_state import has_training_state
from made.training.loop import TrainConfig, fit

TRAIN = ["--hidden", "16", "--masks", "3", "--epochs", "6", "--batch-size", "20", "--lr", "0.01", "--quiet"]
STEPS_PER_EPOCH = 12  # 240 training rows in minibatches of 20


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    rng = np.random.RandomState(0)
    x = (rng.rand(300, 10) < np.linspace(0.1, 0.9, 10)).astype(np.uint8)
    x[:, 5] = x[:, 4]
    path = tmp_path_factory.mktemp("data") / "tiny.npy"
    np.save(path, x)
    return path


DRIVER = Path(__file__).parents[1] / "crash_driver.py"


def run_cli(args, crash_at=None):
    """``made train ARGS`` in a fresh process, SIGKILLed at ``crash_at`` (a moment of crash_driver.py) if given."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    command = ["-m", "made"] if crash_at is None else [str(DRIVER), crash_at]
    return subprocess.run([sys.executable, *command, "train", *args], env=env, capture_output=True, text=True)


@pytest.fixture(scope="module")
def reference(data_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("reference") / "run"
    done = run_cli(["--data", str(data_file), "--out", str(out), *TRAIN])
    assert done.returncode == 0, done.stderr
    return out


def epochs_logged(run):
    return [json.loads(line)["epoch"] for line in (run / "log.jsonl").read_text().splitlines()]


def test_killed_at_every_kind_of_moment_resumes_to_identical_weights(data_file, reference, tmp_path):
    run = tmp_path / "run"
    killed = run_cli(["--data", str(data_file), "--out", str(run), *TRAIN], crash_at=f"step:{STEPS_PER_EPOCH + 5}")
    assert killed.returncode == -signal.SIGKILL
    assert epochs_logged(run) == [1, 2][: len(epochs_logged(run))] and has_training_state(run / "checkpoint")
    # Each resume is killed again somewhere else; the last one finishes.
    for crash_at, leftover in [
        ("write:state-000002.safetensors", ".state-000002.safetensors."),  # mid-write of a checkpoint file
        ("write:state.json@2", ".state.json."),  # epoch 3's files written, its state.json not yet renamed
        ("write:log.jsonl", ".log.jsonl."),  # while the log is rewritten at the start of a resume
        ("write:model.safetensors", ".model.safetensors."),  # training done, final weights half written
    ]:
        killed = run_cli(["--resume", str(run), "--quiet"], crash_at=crash_at)
        assert killed.returncode == -signal.SIGKILL, (crash_at, killed.stderr)
        assert any(p.name.startswith(leftover) for p in run.rglob(".*")), crash_at  # the kill hit mid-write
        assert not (run / "metrics.json").exists()
    finished = run_cli(["--resume", str(run), "--quiet"])
    assert finished.returncode == 0, finished.stderr
    assert (run / "model.safetensors").read_bytes() == (reference / "model.safetensors").read_bytes()
    ours, theirs = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
    assert ours["test_nll"] == theirs["test_nll"] and ours["epochs"] == theirs["epochs"] == 6
    assert epochs_logged(run) == epochs_logged(reference) == [1, 2, 3, 4, 5, 6]
    assert not list((run / "checkpoint").glob(".*")), "temporary files of the killed writes are cleaned up"
    assert sorted(p.name for p in (run / "checkpoint").iterdir()) == [
        "best-000006.safetensors",
        "state-000006.safetensors",
        "state.json",
    ]


def test_resume_rejects_other_options_and_finished_runs(data_file, reference, tmp_path, capsys):
    assert main(["train", "--resume", str(reference), "--epochs", "9"]) == 2
    assert "--resume takes every setting" in capsys.readouterr().err
    assert main(["train", "--resume", str(reference), "--quiet"]) == 2
    assert "finished already" in capsys.readouterr().err
    assert main(["train", "--resume", str(tmp_path / "nothing")]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["train", "--data", str(data_file), "--out", str(reference), *TRAIN]) == 2
    assert "--resume" in capsys.readouterr().err  # a started run is not silently replaced


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda a: a["options"].update(epochs="6"), "epochs"),
        (lambda a: a["options"].update(hidden=[True]), "hidden"),
        (lambda a: a["options"].update(optimizer="lbfgs"), "optimizer"),
        (lambda a: a["options"].update(direct=1), "direct"),
        (lambda a: a["options"].pop("seed"), "missing options"),
        (lambda a: a["options"].update(evil=1), "unknown options"),
        (lambda a: a.update(format_version=2), "format_version"),
    ],
)
def test_resume_refuses_a_tampered_args_file(data_file, tmp_path, capsys, edit, message):
    run = tmp_path / "run"
    assert (
        main(["train", "--data", str(data_file), "--out", str(run), "--hidden", "4", "--epochs", "1", "--quiet"]) == 0
    )
    args = json.loads((run / "args.json").read_text())
    (run / "metrics.json").unlink()
    edit(args)
    (run / "args.json").write_text(json.dumps(args))
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err
    assert "args.json" in err and message in err and "Traceback" not in err


def _digits_like(seed=0):
    rng = np.random.RandomState(seed)
    x = torch.from_numpy((rng.rand(200, 8) < 0.3).astype(np.float32))
    return x[:160], x[160:]


class Interrupted(Exception):
    pass


def interrupt_at(epoch):
    def on_epoch(record):
        if record["epoch"] == epoch:
            raise Interrupted

    return on_epoch


def seeded_model():
    torch.manual_seed(0)
    return MADE(8, [12], num_masks="unlimited", seed=3)


def test_fit_resumes_exactly_in_process(tmp_path):
    """Library level: a fit interrupted in epoch 3 and resumed equals an uninterrupted one, bit for bit."""
    train, valid = _digits_like()
    config = TrainConfig(epochs=5, batch_size=32, lr=0.02, optimizer="adagrad")
    straight = seeded_model()
    fit(straight, train, valid, config, checkpoint_dir=tmp_path / "a")
    with pytest.raises(Interrupted):
        fit(
            seeded_model(),
            train,
            valid,
            config,
            on_epoch=interrupt_at(3),
            checkpoint_dir=tmp_path / "b",
            log_path=tmp_path / "log.jsonl",
        )
    assert json.loads((tmp_path / "b" / "state.json").read_text())["progress"]["epoch"] == 2
    with pytest.raises(CheckpointError, match="another train"):
        fit(
            seeded_model(),
            train,
            valid,
            TrainConfig(**{**config.__dict__, "lr": 0.1}),
            checkpoint_dir=tmp_path / "b",
            resume=True,
        )
    resumed = MADE(8, [12], num_masks="unlimited", seed=3)  # its initial weights do not matter
    history = fit(
        resumed, train, valid, config, checkpoint_dir=tmp_path / "b", resume=True, log_path=tmp_path / "log.jsonl"
    )
    assert history.epochs == 5 and [r["epoch"] for r in history.log] == [1, 2, 3, 4, 5]
    logged = [json.loads(line)["epoch"] for line in (tmp_path / "log.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4, 5]  # epoch 3, logged before the interruption, is not repeated
    for key, tensor in straight.state_dict().items():
        assert torch.equal(tensor, resumed.state_dict()[key]), key


def test_fit_refuses_a_checkpoint_of_other_data(tmp_path):
    train, valid = _digits_like()
    fit(MADE(8, [6]), train, valid, TrainConfig(epochs=1), checkpoint_dir=tmp_path)
    with pytest.raises(CheckpointError, match="another train_data"):
        fit(MADE(8, [6]), 1 - train, valid, TrainConfig(epochs=1), checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(CheckpointError, match="another model"):
        fit(MADE(8, [7]), train, valid, TrainConfig(epochs=1), checkpoint_dir=tmp_path, resume=True)


def test_a_spent_time_budget_stays_spent_after_a_kill_in_the_final_writes(data_file, tmp_path):
    """--max-minutes ended the training; killed while writing the results, the resumed run trains no more."""
    budget = [
        "--data",
        str(data_file),
        "--hidden",
        "16",
        "--masks",
        "3",
        "--batch-size",
        "20",
        "--lr",
        "0.01",
        "--epochs",
        "50",
        "--max-minutes",
        "0.00001",
        "--quiet",
    ]
    straight = run_cli([*budget, "--out", str(tmp_path / "straight")])
    assert straight.returncode == 0, straight.stderr
    for crash_at in ("write:model.safetensors", "write:metrics.json"):  # before and after the final evaluation
        run = tmp_path / crash_at.replace(":", "-")
        killed = run_cli([*budget, "--out", str(run)], crash_at=crash_at)
        assert killed.returncode == -signal.SIGKILL and not (run / "metrics.json").exists()
        finished = run_cli(["--resume", str(run), "--quiet"])
        assert finished.returncode == 0, finished.stderr
        assert (run / "model.safetensors").read_bytes() == (tmp_path / "straight" / "model.safetensors").read_bytes()
        ours, theirs = (json.loads((r / "metrics.json").read_text()) for r in (run, tmp_path / "straight"))
        assert ours["test_nll"] == theirs["test_nll"] and ours["epochs"] == theirs["epochs"] == 1
        assert epochs_logged(run) == [1]


def test_resume_never_follows_a_link_out_of_the_run_folder(data_file, tmp_path, capsys):
    run, victim = tmp_path / "run", tmp_path / "victim"
    assert (
        main(["train", "--data", str(data_file), "--out", str(run), "--hidden", "4", "--epochs", "1", "--quiet"]) == 0
    )
    (run / "metrics.json").unlink()
    victim.mkdir()
    names = [".notes.tmp", ".notes2.tmpfile", ".x.tmp.bak", "state-000001.safetensors"]
    for name in names:
        (victim / name).write_text("the user's")
    shutil.rmtree(run / "checkpoint")
    (run / "checkpoint").symlink_to("../victim")
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--quiet"]) == 2
    assert capsys.readouterr().err == (
        f"made: error: {run / 'checkpoint'}: a symbolic link inside a run folder; made "
        "follows no links there (replace it with the real file or folder)\n"
    )
    assert sorted(p.name for p in victim.iterdir()) == sorted(names)
    assert all((victim / name).read_text() == "the user's" for name in names)


def _rewrite_progress(directory, edit):
    record = json.loads((directory / "state.json").read_text())
    edit(record["progress"])
    (directory / "state.json").write_text(json.dumps(record))


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: p.update(step=p["step"] + 1),  # steps the run's epochs do not take
        lambda p: p.update(epoch=6, log=[*p["log"], *[{**p["log"][-1], "epoch": e} for e in range(3, 7)]]),
    ],
)
def test_fit_refuses_progress_that_does_not_fit_the_run(tmp_path, edit):
    train, valid = _digits_like()
    config = TrainConfig(epochs=5, batch_size=32)
    with pytest.raises(Interrupted):
        fit(seeded_model(), train, valid, config, on_epoch=interrupt_at(3), checkpoint_dir=tmp_path)
    _rewrite_progress(tmp_path, edit)
    with pytest.raises(CheckpointError, match="does not fit a run of 5 epochs of 5 steps; cannot resume"):
        fit(seeded_model(), train, valid, config, checkpoint_dir=tmp_path, resume=True)


def test_a_finished_checkpoint_is_not_trained_further(tmp_path):
    train, valid = _digits_like()
    config = TrainConfig(epochs=3, batch_size=32)
    first = fit(seeded_model(), train, valid, config, checkpoint_dir=tmp_path)
    assert json.loads((tmp_path / "state.json").read_text())["progress"]["finished"] is True
    again = fit(seeded_model(), train, valid, config, checkpoint_dir=tmp_path, resume=True)
    assert again.epochs == first.epochs == 3 and again.log == first.log
