"""made tune against hostile folders, studies and signals (issue 25): what it may write, what the study
records, and how it stops. Each case goes through the command line."""

import json
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import optuna
import pytest

from made.cli import main
from made.io.run import STUDY_FILE, TRIALS_DIR, trial_folder


def write_csv(path, rows, header="2020,2021,2022,2023,2024,2025"):
    path.write_text(header + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    return path


def binary_rows(n, seed=0):
    rng = np.random.default_rng(seed)
    first = rng.random((n, 1)) < 0.4
    return (first ^ (rng.random((n, 6)) < 0.15)).astype(int)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A .csv whose header line is numeric (years), so only --header tells it from a data row."""
    return write_csv(tmp_path_factory.mktemp("data") / "years.csv", binary_rows(300))


def tune(data, out, *extra):
    return main(["tune", "--data", str(data), "--header", "--out", str(out), "--minutes", "0.15", "--jobs", "1",
                 "--quiet", *extra])  # fmt: skip


@pytest.fixture(scope="module")
def tuned(data, tmp_path_factory):
    """A finished tune into a folder whose name has URL characters in it."""
    out = tmp_path_factory.mktemp("tune") / "run?x=1#y"
    assert tune(data, out) == 0
    return out


def study_of(run):
    return optuna.load_study(
        study_name="made", storage=f"sqlite:///{run / STUDY_FILE}".replace("?", "%3F").replace("#", "%23")
    )


def error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("made: error: ") and "\n" not in err, err
    return err


def test_the_study_lies_in_out_whatever_its_name(tuned):
    assert (tuned / STUDY_FILE).is_file()
    assert sorted(p.name for p in tuned.parent.iterdir()) == [tuned.name]  # no run/ or run?x=... beside it


def test_header_reaches_every_trial(tuned):
    trials = [t for t in study_of(tuned).trials if (trial_folder(tuned, t.number) / "config.json").exists()]
    assert trials
    for trial in trials:
        config = json.loads((trial_folder(tuned, trial.number) / "config.json").read_text())
        assert config["data"]["header"] is True
    metrics = json.loads((tuned / "metrics.json").read_text())
    assert metrics["valid_nll"] > 0
    # 300 rows split 80/10/10: the header line is not a row
    log = (trial_folder(tuned, trials[0].number) / "config.json").read_text()
    assert '"header": true' in log


def test_a_tune_folder_copied_elsewhere_trains_no_new_trial(data, tuned, tmp_path, capsys):
    copy = tmp_path / "moved"
    shutil.copytree(tuned, copy)
    before = [t.number for t in study_of(copy).trials]
    assert tune(data, copy, "--device", "cpu") == 0  # another --device is no other study
    assert [t.number for t in study_of(copy).trials] == before
    assert "chose" in capsys.readouterr().out


def test_a_data_file_changed_between_sessions_is_refused_by_name(data, tuned, tmp_path, capsys):
    copy, changed = tmp_path / "copy", tmp_path / "years.csv"
    shutil.copytree(tuned, copy)
    write_csv(changed, binary_rows(300, seed=1))
    assert tune(changed, copy) == 2
    err = error_line(capsys)
    assert f"{changed} changed since study 'made' was started" in err and "restore the file" in err
    assert tune(data, copy, "--split-seed", "3") == 2
    assert "was started with --split-seed 0, not 3" in error_line(capsys)


def test_the_users_files_are_never_deleted(data, tmp_path, capsys):
    out = tmp_path / "out"
    (out / "members").mkdir(parents=True)
    (out / "members" / "notes.txt").write_text("mine")
    (out / "log.jsonl").write_text("mine")
    assert tune(data, out) == 2
    assert "holds files made did not write" in error_line(capsys)
    assert tune(data, out, "--overwrite") == 2  # in the way of its result: refused, never written over
    assert "log.jsonl: made did not write this, and made tune writes or replaces log.jsonl" in error_line(capsys)
    assert (out / "members" / "notes.txt").read_text() == "mine" and (out / "log.jsonl").read_text() == "mine"
    assert sorted(p.name for p in out.iterdir()) == ["log.jsonl", "members"]  # no study either


def test_a_mixture_is_not_replaced_without_overwrite(tuned, tmp_path, capsys):
    mixture = tmp_path / "mixture"
    shutil.copytree(tuned, mixture)
    shutil.rmtree(mixture / TRIALS_DIR)
    (mixture / STUDY_FILE).unlink()
    config = json.loads((mixture / "config.json").read_text())
    (mixture / "config.json").write_text(json.dumps({**config, "mixture": {}}))
    before = sorted(p.name for p in mixture.iterdir())
    assert main(["tune", "--out", str(mixture), "--minutes", "0.1"]) == 2
    assert "holds a run of made mix; choose another --out, or pass --overwrite" in error_line(capsys)
    assert sorted(p.name for p in mixture.iterdir()) == before


def test_a_study_linked_out_of_the_folder_is_refused_before_any_write(data, tmp_path, capsys):
    out, victim = tmp_path / "out", tmp_path / "victim.db"
    out.mkdir()
    (out / STUDY_FILE).symlink_to(victim)
    assert tune(data, out) == 2
    assert "study.db: a symbolic link inside a run folder" in error_line(capsys)
    assert not victim.exists() and sorted(p.name for p in out.iterdir()) == [STUDY_FILE]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--out", ""], "--out is empty; name the run folder"),
        (["--storage", "not a url"], "--storage 'not a url': not a database URL"),
        (
            ["--storage", "postgresql://me@host/db"],
            "its driver psycopg is not installed; pip install 'psycopg[binary]'",
        ),
        (["--storage", "mysql://me:secret@host/db"], "--storage mysql://me:***@host/db: its driver MySQLdb"),
        (["--storage", "nosuch://host/db"], "SQLAlchemy knows no database 'nosuch'"),
        (["--storage", "sqlite:////nonexistent/x.db"], "--storage: cannot open the database (unable to open"),
        (["--train-options=--bogus"], "--train-options: unrecognized arguments: --bogus"),
        (["--train-options=--patience 0"], "--train-options: argument --patience: expected an integer of at least 1"),
    ],
)
def test_bad_options_are_one_line_errors_that_name_the_option(data, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as where psycopg is not installed
    argv = ["tune", "--data", str(data), "--out", str(tmp_path / "run"), *argv]
    assert main(argv) == 2
    assert message in error_line(capsys)
    assert sorted(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--minutes", "inf"], "argument --minutes: expected a finite number above 0 and at most 1e+06, got 'inf'"),
        (["--minutes", "1e308"], "argument --minutes: expected a finite number above 0 and at most 1e+06"),
        (["--seed", "-1"], "argument --seed: expected an integer from 0 to 4,294,967,295, got '-1'"),
        (["--seed", str(2**64)], "argument --seed: expected an integer from 0 to 4,294,967,295"),
        (["--jobs", "0"], "argument --jobs: expected an integer from 1 to 1,024"),
        (["--train-options", "--bogus"], "--train-options: expected one argument (a value that begins with '-' is"),
    ],
)
def test_tune_options_are_refused_under_their_own_name(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exit_:
        main(["tune", "--out", str(tmp_path / "run"), *argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("made tune: error: ") and message in err and "max-minutes" not in err


def test_a_tune_whose_trials_all_score_validation_infinite_says_why(tmp_path, capsys):
    rng = np.random.default_rng(0)
    valid = rng.normal(size=(20, 2))
    valid[0, 0] = 1e30  # probability 0 under every trial, in float32
    data = tmp_path / "far.npz"
    np.savez(data, train=rng.normal(size=(200, 2)), valid=valid, test=rng.normal(size=(20, 2)))
    argv = ["tune", "--data", str(data), "--train-options=--schema auto", "--out", str(tmp_path / "run")]
    assert main([*argv, "--minutes", "0.4", "--jobs", "1", "--quiet"]) == 2
    err = error_line(capsys)
    assert "no trial has a finite validation NLL: each gave a validation row probability 0" in err


def test_ctrl_c_stops_cleanly_and_the_study_resumes(data, tmp_path):
    """A real SIGINT to a tune training two trials at once: exit 130 with a hint, no abort, and the same
    command then finishes the tune."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "made", "tune", "--data", str(data), "--header", "--out", str(out),
               "--minutes", "0.3", "--jobs", "2", "--quiet"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (trial_folder(out, 0) / "log.jsonl").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "Run the same command again to continue the tune" in err and "terminate called" not in err
    states = {t.state for t in optuna.load_study(study_name="made", storage=f"sqlite:///{out / STUDY_FILE}").trials}
    assert optuna.trial.TrialState.RUNNING not in states
    again = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert (out / "metrics.json").is_file() and main(["eval", str(out)]) == 0
