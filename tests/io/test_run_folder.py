"""made.io.run: the run folder's operations touch only the names they own and follow no link."""

import json

import pytest

from made import MADE
from made.config import RunSettings
from made.io.atomic import CheckpointError
from made.io.run import (
    ARGS_FILE,
    CONFIG_FILE,
    LOG_FILE,
    MEMBERS_DIR,
    STUDY_FILE,
    WEIGHTS_FILE,
    built_beside,
    claim_folder,
    copy_run,
    foreign_files,
    is_finished,
    load_model,
    new_run_folder,
    read_args,
    read_metrics,
    run_writer,
    save_model,
    trial_folder,
    write_args,
    write_metrics,
)
from made.pipeline import resumed_settings


def finished_run(folder):
    """A single model's finished run folder, as 'made train' leaves it (its files, tiny)."""
    save_model(folder, MADE(4, [8]))
    (folder / LOG_FILE).write_text("{}\n")
    write_metrics(folder, {"test_nll": 1.0})
    return folder


def tune_folder(folder):
    """A finished tune's folder: its study, a trial, and the result (a single model's files)."""
    out = finished_run(folder)
    (out / STUDY_FILE).write_text("the study")
    finished_run(trial_folder(out, 0))
    return out


def test_a_result_swapped_in_replaces_the_old_one_and_nothing_else(tmp_path):
    out = tune_folder(tmp_path / "tune")
    claim = claim_folder(out, "tune", overwrite=True)
    keep = [out / "notes.txt", trial_folder(out, 0) / "notes.txt"]
    for path in keep:
        path.write_text("the user's")
    with built_beside(claim) as work:
        save_model(work / MEMBERS_DIR / "0", MADE(4, [8]))
        write_metrics(work, {"test_nll": 2.0})
    assert (out / MEMBERS_DIR / "0" / CONFIG_FILE).is_file() and read_metrics(out) == {"test_nll": 2.0}
    assert not (out / WEIGHTS_FILE).exists() and not (out / LOG_FILE).exists()  # the old result, moved aside
    assert (out / STUDY_FILE).read_text() == "the study" and is_finished(trial_folder(out, 0))
    assert all(path.read_text() == "the user's" for path in keep)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tune"]  # nothing left beside it


def test_a_failed_result_leaves_the_old_one_whole(tmp_path):
    out = tune_folder(tmp_path / "tune")
    with pytest.raises(KeyboardInterrupt):
        with built_beside(claim_folder(out, "tune", overwrite=False)) as work:
            write_metrics(work, {"test_nll": 2.0})
            raise KeyboardInterrupt
    assert read_metrics(out) == {"test_nll": 1.0} and sorted(p.name for p in tmp_path.iterdir()) == ["tune"]


def test_a_claim_follows_no_link_out_of_the_folder(tmp_path):
    out, victim = finished_run(tmp_path / "tune"), tmp_path / "victim"
    victim.mkdir()
    (victim / CONFIG_FILE).write_text("the user's")
    (out / MEMBERS_DIR).symlink_to(victim)
    with pytest.raises(CheckpointError, match="a symbolic link inside a run folder"):
        claim_folder(out, "mix", overwrite=True)
    assert (victim / CONFIG_FILE).read_text() == "the user's"
    assert is_finished(out)


@pytest.mark.parametrize(
    "files, command, message",
    [
        ({"notes.txt": "x"}, "train", "holds files made did not write"),
        ({"log.jsonl": "x"}, "mix", "holds files made did not write"),
        ({"model.safetensors": "x"}, "tune", "holds files made did not write"),  # no run: a made name is the user's
        ({"members/notes.txt": "x"}, "mix", "holds files made did not write"),
    ],
)
def test_a_folder_holding_the_users_files_is_refused_without_overwrite(tmp_path, files, command, message):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert foreign_files(tmp_path) == sorted(n.split("/")[0] for n in files)
    with pytest.raises(ValueError, match=message):
        claim_folder(tmp_path, command, overwrite=False)


def test_overwrite_writes_beside_the_users_files_but_never_over_them(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    assert claim_folder(tmp_path, "mix", overwrite=True).replaces is None
    (tmp_path / LOG_FILE).write_text("the user's log")
    with pytest.raises(ValueError, match="made did not write this, and made train writes or replaces log.jsonl"):
        claim_folder(tmp_path, "train", overwrite=True)
    mixture = finished_run(tmp_path / "mixture")
    (mixture / CONFIG_FILE).write_text('{"mixture": {}}')
    (mixture / MEMBERS_DIR / "notes.txt").parent.mkdir()
    (mixture / MEMBERS_DIR / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="made mix writes or replaces members there"):
        claim_folder(mixture, "mix", overwrite=True)


def test_each_command_knows_whose_run_a_folder_holds(tmp_path):
    run = finished_run(tmp_path / "run")
    write_args(run, {})
    assert run_writer(run) == "train" and run_writer(tune_folder(tmp_path / "tune")) == "tune"
    with pytest.raises(ValueError, match="holds a run of made train; choose another --out, or pass --overwrite"):
        claim_folder(run, "tune", overwrite=False)
    assert claim_folder(run, "tune", overwrite=True).replaces == "train"
    assert claim_folder(tmp_path / "tune", "tune", overwrite=False).replaces is None  # a tune continues its own
    with pytest.raises(ValueError, match="--out is empty"):
        claim_folder("", "mix", overwrite=True)


def test_copy_run_makes_a_loadable_run_without_the_metrics(tmp_path):
    source, dest = finished_run(tmp_path / "trial"), tmp_path / "out"
    dest.mkdir()
    copy_run(source, dest)
    model, _ = load_model(dest)
    assert model.num_inputs == 4 and (dest / LOG_FILE).read_text() == "{}\n"
    assert not is_finished(dest)  # the caller writes its own metrics


def test_args_round_trip_and_refuse_another_format_version(tmp_path):
    options = RunSettings().to_json()
    write_args(tmp_path, options)
    assert read_args(tmp_path) == (options, f"{tmp_path / ARGS_FILE}: options")
    record = json.loads((tmp_path / ARGS_FILE).read_text())
    (tmp_path / ARGS_FILE).write_text(json.dumps({**record, "format_version": 9}))
    with pytest.raises(CheckpointError, match=r"args.json: unknown format_version 9"):
        read_args(tmp_path)


def test_resumed_settings_take_the_changes_and_refuse_a_finished_run(tmp_path):
    write_args(tmp_path, RunSettings().to_json())
    assert resumed_settings(tmp_path, {"quiet": True}) == RunSettings().replace(quiet=True)
    write_metrics(tmp_path, {})
    with pytest.raises(ValueError, match="has finished already"):
        resumed_settings(tmp_path)


def test_a_new_run_replaces_an_old_one_only_when_complete(tmp_path):
    out = finished_run(tmp_path / "run")
    with pytest.raises(ValueError, match="already holds a run"):
        with new_run_folder(out, {"new": True}, overwrite=False):
            pass
    with pytest.raises(KeyboardInterrupt):
        with new_run_folder(out, {"new": True}, overwrite=True) as work:
            assert work != out and read_args(work)[0] == {"new": True}
            raise KeyboardInterrupt
    assert is_finished(out) and sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the old run whole
    with new_run_folder(out, {"new": True}, overwrite=True) as work:
        save_model(work, MADE(4, [8]))
    assert read_args(out)[0] == {"new": True} and not is_finished(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
