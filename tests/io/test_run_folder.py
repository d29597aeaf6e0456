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
    clear_result,
    copy_run,
    holds_run,
    is_finished,
    load_model,
    new_run_folder,
    read_args,
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


def test_clear_result_removes_the_result_and_nothing_else(tmp_path):
    out = finished_run(tmp_path / "tune")
    save_model(out / MEMBERS_DIR / "0", MADE(4, [8]))
    keep = [out / STUDY_FILE, out / "notes.txt", trial_folder(out, 0) / "notes.txt"]
    for path in keep:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("the user's")
    clear_result(out)
    assert not holds_run(out) and not is_finished(out) and not (out / MEMBERS_DIR).exists()
    assert not (out / WEIGHTS_FILE).exists() and not (out / LOG_FILE).exists()
    assert all(path.read_text() == "the user's" for path in keep)


def test_clear_result_follows_no_link_out_of_the_folder(tmp_path):
    out, victim = finished_run(tmp_path / "tune"), tmp_path / "victim"
    victim.mkdir()
    (victim / CONFIG_FILE).write_text("the user's")
    (out / MEMBERS_DIR).symlink_to(victim)
    with pytest.raises(CheckpointError, match="a symbolic link inside a run folder"):
        clear_result(out)
    assert (victim / CONFIG_FILE).read_text() == "the user's"
    assert is_finished(out)  # refused before anything was removed


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
