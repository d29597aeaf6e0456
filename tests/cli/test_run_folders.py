"""Every command that writes a run folder (made train, made mix) refuses a folder holding what it did
not write unless --overwrite, and never deletes a file it did not write (issue 25). Through the CLI."""

import json

import numpy as np
import pytest

from made.cli import main

TINY = ["--hidden", "8", "--epochs", "1", "--quiet"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "bits.npz"
    np.savez(
        path,
        **{s: (rng.random((n, 5)) < 0.3).astype(np.uint8) for s, n in (("train", 80), ("valid", 20), ("test", 20))},
    )
    return path


@pytest.fixture(scope="module")
def runs(data, tmp_path_factory):
    folder = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        assert main(["train", "--data", str(data), "--out", str(folder / str(seed)), "--seed", str(seed), *TINY]) == 0
    return [str(folder / "0"), str(folder / "1")]


def users_files(out):
    """The issue's folder: no run, only the user's members/notes.txt and log.jsonl."""
    (out / "members").mkdir(parents=True)
    (out / "members" / "notes.txt").write_text("mine")
    (out / "log.jsonl").write_text("mine")


def error_line(capsys):
    err = capsys.readouterr().err.strip()
    assert err.startswith("made: error: ") and "\n" not in err, err
    return err


def test_mix_never_deletes_the_users_files(runs, tmp_path, capsys):
    out = tmp_path / "out"
    users_files(out)
    assert main(["mix", *runs, "--out", str(out)]) == 2
    assert "holds files made did not write; choose another --out, or pass --overwrite" in error_line(capsys)
    assert main(["mix", *runs, "--out", str(out), "--overwrite"]) == 2
    assert "out/members: made did not write this, and made mix writes or replaces members there" in error_line(capsys)
    assert (out / "members" / "notes.txt").read_text() == "mine" and (out / "log.jsonl").read_text() == "mine"
    (out / "members" / "notes.txt").unlink()
    (out / "members").rmdir()
    assert main(["mix", *runs, "--out", str(out), "--overwrite"]) == 0  # written beside log.jsonl
    assert (out / "log.jsonl").read_text() == "mine" and main(["eval", str(out)]) == 0
    assert main(["mix", *runs, "--out", str(out), "--overwrite"]) == 0  # replacing its own mixture
    assert (out / "log.jsonl").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # nothing left beside it


def test_an_empty_out_is_refused_not_the_current_folder(runs, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "log.jsonl").write_text("mine")
    assert main(["mix", *runs, "--out", ""]) == 2
    assert "--out is empty; name the run folder" in error_line(capsys)
    assert main(["train", "--out", "", *TINY]) == 2
    assert "--out is empty" in error_line(capsys)
    assert main(["train", "--resume", ""]) == 2
    assert "--resume is empty" in error_line(capsys)
    assert (
        sorted(p.name for p in tmp_path.iterdir()) == ["log.jsonl"] and (tmp_path / "log.jsonl").read_text() == "mine"
    )


def test_train_never_deletes_the_users_files(data, tmp_path, capsys):
    out = tmp_path / "out"
    users_files(out)
    assert main(["train", "--data", str(data), "--out", str(out), *TINY]) == 2
    assert "holds files made did not write" in error_line(capsys)
    assert main(["train", "--data", str(data), "--out", str(out), "--overwrite", *TINY]) == 2
    assert "log.jsonl: made did not write this, and made train writes or replaces log.jsonl" in error_line(capsys)
    (out / "log.jsonl").unlink()
    assert main(["train", "--data", str(data), "--out", str(out), "--overwrite", *TINY]) == 0
    (out / "notes.txt").write_text("mine")  # beside a run now: replacing the run keeps it
    assert main(["train", "--data", str(data), "--out", str(out), "--overwrite", "--seed", "3", *TINY]) == 0
    assert (out / "members" / "notes.txt").read_text() == "mine" and (out / "notes.txt").read_text() == "mine"
    assert json.loads((out / "args.json").read_text())["options"]["seed"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_run_is_replaced_only_with_overwrite_and_never_by_another_command(data, runs, tmp_path, capsys):
    out = tmp_path / "mixed"
    assert main(["mix", *runs, "--out", str(out)]) == 0
    assert main(["mix", *runs, "--out", str(out)]) == 2
    assert "already holds a mixture; choose another --out, or pass --overwrite" in error_line(capsys)
    assert main(["train", "--data", str(data), "--out", str(out), *TINY]) == 2
    assert "holds a run of made mix; choose another --out, or pass --overwrite" in error_line(capsys)
    assert main(["mix", *runs, "--out", runs[0], "--overwrite"]) == 2
    assert "is one of the runs mixed" in error_line(capsys)


def test_mix_names_the_option_two_runs_differ_in(tmp_path, capsys):
    rng = np.random.default_rng(0)
    real = tmp_path / "real.npz"
    np.savez(
        real, **{s: rng.normal(size=(n, 3)).astype(np.float32) for s, n in (("train", 80), ("valid", 20), ("test", 20))}
    )
    folders = [str(tmp_path / "one"), str(tmp_path / "three")]
    for folder, components in zip(folders, ("1", "3")):
        argv = ["train", "--data", str(real), "--schema", "auto", "--components", components, "--out", folder, *TINY]
        assert main(argv) == 0
    capsys.readouterr()
    assert main(["mix", *folders, "--out", str(tmp_path / "mixed")]) == 2
    err = error_line(capsys)
    assert f"{folders[1]} and {folders[0]} differ in --components (3 and 1) in column 1" in err
    assert "other data" not in err and not (tmp_path / "mixed").exists()
