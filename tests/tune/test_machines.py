"""made.tune.machines: publishing trials to a shared folder, choosing among every machine's, and the
study's tables created by machines starting at once (tests/tune/test_postgres.py runs them for real);
what 'made tune --collect' and --storage say when they cannot work."""

import json
import sys

import numpy as np
import optuna
import pytest
import sqlalchemy.exc

from made.cli import main
from made.tune import machines
from made.tune.machines import create_tables, machine_seed, publish_trial, shared_trials
from made.tune.search import SEARCH_SPACE, open_study


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "small.npz"
    sizes = {"train": 60, "valid": 20, "test": 20}
    np.savez(path, **{split: (rng.random((n, 6)) < 0.3).astype(np.uint8) for split, n in sizes.items()})
    return path


@pytest.fixture(scope="module")
def finished_run(data, tmp_path_factory):
    """A small finished 'made train' run."""
    run = tmp_path_factory.mktemp("runs") / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--epochs", "2", "--hidden", "16", "--quiet"]) == 0
    return run


def test_a_published_trial_is_whole_and_never_overwritten(finished_run, tmp_path, capsys):
    share = tmp_path / "shared"
    dest = publish_trial(finished_run, share, 7)
    assert dest == share / "trials" / "7"
    assert [p.name for p in (share / "trials").iterdir()] == ["7"]  # no temporary folder left behind
    metrics = json.loads((dest / "metrics.json").read_text())
    assert metrics == json.loads((finished_run / "metrics.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(dest), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["test_nll"] == pytest.approx(metrics["test_nll"], rel=1e-6)
    with pytest.raises(ValueError, match="holds a trial already; give each study its own shared folder"):
        publish_trial(finished_run, share, 7)  # trial 7 of another study sharing the folder
    assert json.loads((dest / "metrics.json").read_text()) == metrics
    with pytest.raises(FileNotFoundError):  # a run folder without its metrics: nothing half copied is left
        publish_trial(finished_run / "no such run", share, 8)
    assert [p.name for p in (share / "trials").iterdir()] == ["7"]


def test_shared_trials_are_every_machines_complete_published_ones_best_first(finished_run, tmp_path):
    study = optuna.create_study()
    for owner, value, published in (("a", 2.0, True), ("b", 1.0, True), ("a", 0.5, False), ("b", None, True)):
        trial = study.ask()
        trial.set_user_attr("owner", owner)
        if published:
            publish_trial(finished_run, tmp_path, trial.number)
        if value is None:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            study.tell(trial, value)
    # trial 2 finished but is not in the shared folder (a machine tuning without --share); 3 was pruned
    assert [t.number for t in shared_trials(study, tmp_path)] == [1, 0]


def test_machines_sharing_a_study_draw_with_different_seeds(tmp_path):
    one, other = machine_seed(0, "seconds:host1:/runs/a"), machine_seed(0, "seconds:host2:/runs/a")
    assert one != other and machine_seed(0, "seconds:host1:/runs/a") == one  # the same on every rerun
    assert machine_seed(1, "seconds:host1:/runs/a") != one
    assert all(0 <= s < 2**32 for s in (one, other))  # numpy's seed range, which the sampler uses

    def first_draws(seeds, name):
        """Each machine's first drawn settings, once the starting trials are taken, in a shared study."""
        studies = [open_study(tmp_path / str(seed), storage, name, {"data": "x"}, seed) for seed in seeds]
        draws = []
        for _ in range(2):
            for study in studies:
                trial = study.ask()
                draws.append({p.name: p.suggest(trial) for p in SEARCH_SPACE})
                study.tell(trial, 1.0)
        return draws[2:]

    storage = f"sqlite:///{tmp_path / 'study.db'}"
    same, different = first_draws([0, 0], "same seed"), first_draws([one, other], "machine seeds")
    assert same[0] == same[1]  # the same --seed alone: both machines draw the same settings
    assert different[0] != different[1]


def test_tables_created_by_another_machine_meanwhile_are_waited_for(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    real, calls = optuna.storages.RDBStorage, []

    def colliding(address):
        calls.append(address)
        if len(calls) == 1:  # the other machine created the type first
            raise sqlalchemy.exc.IntegrityError("CREATE TYPE studydirection", {}, Exception("duplicate key"))
        return real(address)

    monkeypatch.setattr(machines.time, "sleep", lambda seconds: None)
    monkeypatch.setattr(optuna.storages, "RDBStorage", colliding)
    create_tables(url)
    assert calls == [url, url]
    monkeypatch.setattr(optuna.storages, "RDBStorage", real)
    create_tables(url)  # the tables are there: nothing to do
    optuna.create_study(study_name="made", storage=url)


def test_collect_needs_the_study_and_the_shared_folder(tmp_path, capsys):
    assert main(["tune", "--out", str(tmp_path / "run"), "--collect", "--share", str(tmp_path)]) == 2
    assert "--collect needs --storage URL and --share DIR" in capsys.readouterr().err
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    argv = ["tune", "--out", str(tmp_path / "run"), "--collect", "--share", str(tmp_path), "--storage", storage]
    assert main([*argv, "--study-name", "typo"]) == 2
    assert "--study-name: no study 'typo' in --storage" in capsys.readouterr().err
    optuna.create_study(study_name="made", storage=storage)
    assert main(argv) == 2  # a study none of whose trials was published in --share
    assert f"--share {tmp_path}: no finished trial of study 'made' is there" in capsys.readouterr().err


def test_a_missing_database_driver_is_named(data, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now fails, as when it is not installed
    argv = ["tune", "--data", str(data), "--out", str(tmp_path / "run"), "--storage", "postgresql://u:secret@h/db"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "its driver psycopg is not installed; pip install 'psycopg[binary]'" in err
    assert "secret" not in err
