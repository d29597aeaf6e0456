"""``made tune --storage postgresql://...`` as several machines use it, against a real PostgreSQL server.

The server is a throwaway one, started as a user would start their own: ``initdb`` into a temporary
folder, ``pg_ctl start`` on a free port with its unix socket in that folder, stopped (and the folder
removed) at teardown even when the test fails. Two ``made tune`` processes, each its own ``--out``,
play two machines sharing one study and one ``--share`` folder; ``made tune --collect`` then makes one
run folder of the best of both. Skipped only where no PostgreSQL binaries are installed.
"""

import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import optuna
import psycopg
import pytest

from made.cli import main
from made.tune.search import STARTING_TRIALS, budget_key

MINUTES = 0.25  # each machine's budget


def postgres_bin() -> Path | None:
    """The folder of PostgreSQL's server programs: initdb's on PATH (links followed), else the newest of
    Debian's versioned folders."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def server_account() -> pwd.struct_passwd | None:
    """The account the server runs as: PostgreSQL refuses root, so root (CI) lends it to an unprivileged
    one (postgres, else nobody); anyone else runs it themselves (None)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    pytest.fail("running as root with neither a postgres nor a nobody account to run PostgreSQL as")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """The URL of a fresh database on a throwaway PostgreSQL server."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL server programs (initdb, pg_ctl) on PATH or in /usr/lib/postgresql")
    account = server_account()
    folder = Path(tempfile.mkdtemp(prefix="made-postgres-"))
    as_server = {} if account is None else {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)

    def pg(program: str, *argv: str) -> None:
        done = subprocess.run([str(bin_dir / program), *argv], capture_output=True, text=True, **as_server)
        log = folder / "server.log"
        assert done.returncode == 0, f"{program}: {done.stderr}{log.read_text() if log.exists() else ''}"

    data, port = folder / "data", free_port()
    try:
        pg("initdb", "-D", str(data), "-U", "made", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions")
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        pg("pg_ctl", "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w", "-t", "60", "start")
        with psycopg.connect(f"postgresql://made@127.0.0.1:{port}/postgres", autocommit=True) as connection:
            connection.execute("CREATE DATABASE tunes")
        yield f"postgresql://made@127.0.0.1:{port}/tunes"
    finally:
        try:
            if (data / "postmaster.pid").exists():
                pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A small binary data set with structure, in train/valid/test splits."""
    rng = np.random.default_rng(0)

    def rows(n):
        first = rng.random((n, 1)) < 0.4
        return (first ^ (rng.random((n, 8)) < 0.15)).astype(np.uint8)

    path = tmp_path_factory.mktemp("data") / "small.npz"
    np.savez(path, train=rows(300), valid=rows(100), test=rows(100))
    return path


@pytest.fixture(scope="module")
def machines(postgres_url, data, tmp_path_factory):
    """Two tunes of one study at once, as two machines would run them: their run folders, the shared
    folder and the storage URL."""
    root = tmp_path_factory.mktemp("machines")
    outs, share = [root / "a", root / "b"], root / "shared"
    tunes = [
        subprocess.Popen(
            [sys.executable, "-m", "made", "tune", "--data", str(data), "--out", str(out), "--minutes", str(MINUTES)]
            + ["--storage", postgres_url, "--study-name", "small", "--share", str(share), "--jobs", "1"]
            + ["--train-options", "--epochs 10"],  # short trials: several per machine within the budget
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "OMP_NUM_THREADS": "1"},  # one core each, as on two small machines
        )
        for out in outs
    ]
    try:
        for tune in tunes:
            stdout, stderr = tune.communicate(timeout=300)
            assert tune.returncode == 0, stderr
            assert "chose " in stdout, stdout
    finally:
        for tune in tunes:
            tune.kill()  # a tune still running once the other failed (nothing to do for one that ended)
    return outs, share, postgres_url


def study_of(url):
    return optuna.load_study(study_name="small", storage=url)


def metrics_of(folder):
    return json.loads((Path(folder) / "metrics.json").read_text())


def test_no_trial_is_lost_or_counted_twice(machines):
    outs, share, url = machines
    trials = study_of(url).get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))
    assert not [t.number for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    keys = [budget_key(out, shared=True) for out in outs]
    assert {t.user_attrs["owner"] for t in trials if t.state != optuna.trial.TrialState.WAITING} == set(keys)
    trained = []
    for out, key in zip(outs, keys):
        ours = [t for t in trials if t.user_attrs.get("owner") == key]
        # every trial a machine trained is in its own folder under its number, and no other
        started = {t.number for t in ours if t.user_attrs.get("outcome") != "no time left to evaluate it"}
        assert {int(p.name) for p in (out / "trials").iterdir()} == started
        complete = [t for t in ours if t.state == optuna.trial.TrialState.COMPLETE]
        assert complete, f"{out} finished no trial"
        for t in complete:
            folder = out / "trials" / str(t.number)
            assert metrics_of(folder)["valid_nll"] == t.value
            assert metrics_of(share / "trials" / str(t.number)) == metrics_of(folder)
        trained += started
    assert len(trained) == len(set(trained))  # no trial trained by both
    # nor the same settings twice: the starting trials are queued once, and the machines' samplers differ
    drawn = [tuple(sorted(t.params.items())) for t in trials if t.state != optuna.trial.TrialState.WAITING]
    assert len(drawn) == len(set(drawn))
    for values in STARTING_TRIALS:
        assert [t.params for t in trials].count(values) == 1
    published = {int(p.name) for p in (share / "trials").iterdir()}
    assert published == {t.number for t in trials if t.state == optuna.trial.TrialState.COMPLETE}


def test_each_machine_keeps_its_own_budget(machines):
    outs, _, url = machines
    study = study_of(url)
    for out in outs:
        used, metrics = study.user_attrs[budget_key(out, shared=True)], metrics_of(out)
        # its own seconds (those its session counted, to its last save), not both machines': it trained until
        # its own budget, less the reserve for its end, was spent
        assert metrics["tune"]["seconds"] <= used and used > MINUTES * 60 / 2
        # and began no trial once its budget was spent (its session began its seconds before it wrote them)
        began = datetime.fromtimestamp((out / "metrics.json").stat().st_mtime - metrics["tune"]["seconds"])
        ours = [t for t in study.get_trials() if t.user_attrs.get("owner") == budget_key(out, shared=True)]
        assert max(t.datetime_start for t in ours) <= began + timedelta(minutes=MINUTES)


def test_each_machine_ends_with_an_evaluable_run_folder(machines, capsys):
    outs, _, _ = machines
    for out in outs:
        capsys.readouterr()
        assert main(["eval", str(out), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["test_nll"] == pytest.approx(metrics_of(out)["test_nll"], rel=1e-6)


def test_collect_chooses_the_best_of_every_machine_on_validation(machines, tmp_path, capsys):
    outs, share, url = machines
    complete = study_of(url).get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    best = min(complete, key=lambda t: (t.value, t.number))
    base = ["tune", "--storage", url, "--study-name", "small", "--share", str(share), "--collect"]
    assert main([*base, "--out", str(tmp_path / "best"), "--no-mixture"]) == 0
    chosen = metrics_of(tmp_path / "best")
    assert chosen["tune"]["chosen_trials"] == [best.number] and chosen["valid_nll"] == best.value
    assert chosen["tune"]["trials_finished"] == len(complete) and chosen["tune"]["tunes"] == 2
    # a mixture of both machines' trials replaces the best trial only when its validation NLL is lower
    assert main([*base, "--out", str(tmp_path / "mixed")]) == 0
    mixed = metrics_of(tmp_path / "mixed")
    assert mixed["valid_nll"] <= best.value
    assert set(mixed["tune"]["chosen_trials"]) <= {t.number for t in complete}
    for run in (tmp_path / "best", tmp_path / "mixed"):
        capsys.readouterr()
        assert main(["eval", str(run), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["test_nll"] == pytest.approx(metrics_of(run)["test_nll"], rel=1e-6)
    # each machine's own tune ended on the best of the trials published by then, its own among them
    for out, key in zip(outs, (budget_key(out, shared=True) for out in outs)):
        own = min(t.value for t in complete if t.user_attrs["owner"] == key)
        assert metrics_of(out)["valid_nll"] <= own
