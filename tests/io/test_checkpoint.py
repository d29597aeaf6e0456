import dataclasses
import json
import os

import pytest
import torch
from conftest import all_binary
from safetensors.torch import load_file, save_file

from made import MADE
from made.io.atomic import CheckpointError
from made.io.run import load_model, save_model


def test_round_trip_gives_identical_log_likelihoods(tmp_path):
    model = MADE(7, [12, 9], num_masks=3, direct=True, conditioning=True, ordering="random", seed=5)
    model.set_mask(2)
    save_model(tmp_path, model, {"note": "x"})
    loaded, config = load_model(tmp_path)
    x = all_binary(7, torch.float32)
    assert torch.equal(model.log_prob(x), loaded.log_prob(x))
    assert torch.equal(model.log_prob(x, ensemble=3), loaded.log_prob(x, ensemble=3))
    assert config["note"] == "x" and config["model"]["num_masks"] == 3
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_refuses_bad_checkpoints(tmp_path):
    save_model(tmp_path, MADE(5, [8]))
    weights = load_file(tmp_path / "model.safetensors")

    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "format_version": 99}))
    with pytest.raises(CheckpointError, match="format_version"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({**config, "model": {**config["model"], "evil": 1}}))
    with pytest.raises(CheckpointError, match="keys"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(config))

    save_file({k: v for k, v in weights.items() if k != "output.bias"}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="missing"):
        load_model(tmp_path)
    save_file({**weights, "output.bias": torch.zeros(9)}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="shape"):
        load_model(tmp_path)
    flipped = weights["hidden.0.mask"].clone()
    flipped[0, 0] = ~flipped[0, 0]
    save_file({**weights, "hidden.0.mask": flipped}, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match="masks"):
        load_model(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x80\x04pickle")
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(tmp_path)
    with pytest.raises(CheckpointError, match="not a run folder"):
        load_model(tmp_path / "nope")


# ------------------------------------------------------------- schema and size
from made.io.atomic import atomic_write  # noqa: E402
from made.io.training_state import (  # noqa: E402
    clear_training_state,
    has_training_state,
    load_training_state,
    save_training_state,
)
from made.model.config import MADEConfig  # noqa: E402
from made.model.settings import json_hints, older_defaults, setting_of  # noqa: E402
from made.training.loop import TrainConfig, make_optimizer  # noqa: E402


def test_the_schema_covers_every_model_argument():
    import inspect

    assert set(json_hints(MADEConfig)) == set(inspect.signature(MADE).parameters)
    from made.io.checkpoint import check_model_settings

    check_model_settings(MADE(3, [4], num_masks="unlimited", ordering=[2, 0, 1]).config.to_dict(), "model")


def test_older_configs_are_completed_with_the_settings_added_since():
    """A 0.1 config (no sorted_degrees, blocks, dropout) gets the values that rebuild its model; a 0.3
    config is left as it is."""
    old = {k: v for k, v in MADE(3, [4]).config.to_dict().items() if k not in ("sorted_degrees", "blocks", "dropout")}
    assert older_defaults(MADEConfig, old) == {**old, "sorted_degrees": False, "blocks": [], "dropout": 0.0}
    new = MADE(3, [4], blocks=["residual"], dropout=0.5).config.to_dict()
    assert older_defaults(MADEConfig, new) == new
    added = {spec.name for spec in dataclasses.fields(MADEConfig) if setting_of(spec).added_in == "0.3"}
    assert added == {"blocks", "dropout"}


@pytest.mark.parametrize(
    "change, message",
    [
        ({"seed": True}, "model.seed must be an integer"),
        ({"num_inputs": "5"}, "model.num_inputs must be an integer"),
        ({"direct": 0}, "model.direct must be true/false"),
        ({"hidden_sizes": [8, 0]}, "hidden_sizes has a value outside"),
        ({"activation": "gelu"}, "activation has a value outside"),
        ({"resample": "some"}, "model.resample must be one of"),
        ({"num_masks": 10**9}, "num_masks has a value outside"),
        ({"hidden_sizes": [10**9]}, "more weights than the weights file holds"),
        ({"num_inputs": 10**15}, "more weights than the weights file holds"),
    ],
)
def test_refuses_settings_of_the_wrong_type_or_value(tmp_path, change, message):
    """Checked before anything is built: 10^9 hidden units or 10^15 inputs are never allocated."""
    save_model(tmp_path, MADE(5, [8]))
    config = json.loads((tmp_path / "config.json").read_text())
    (tmp_path / "config.json").write_text(json.dumps({**config, "model": {**config["model"], **change}}))
    with pytest.raises(CheckpointError, match=message):
        load_model(tmp_path)


def test_atomic_write_leaves_nothing_when_the_writer_fails(tmp_path):
    def failing(tmp):
        open(tmp, "w").write("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "x.json", failing)
    assert list(tmp_path.iterdir()) == []
    atomic_write(tmp_path / "x.json", lambda tmp: open(tmp, "w").write("{}"))
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask():
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


# ---------------------------------------------------------------- training state
def _trained(seed=0):
    torch.manual_seed(seed)
    model = MADE(6, [10], num_masks=3, seed=seed)
    optimizer = make_optimizer(model, TrainConfig())
    x = (torch.rand(20, 6) < 0.5).float()
    for step in range(4):
        model.mask_for_step(step)
        optimizer.zero_grad()
        (-model.log_prob(x).mean()).backward()
        optimizer.step()
    return model, optimizer


LOG = [{"epoch": e, "train_nll": 5.0, "valid_nll": 4.5, "best_valid_nll": 4.5, "seconds": e / 3} for e in (1, 2, 3)]
PROGRESS = {
    "epoch": 3,
    "step": 12,
    "best_valid_nll": 4.5,
    "best_epoch": 2,
    "seconds": 1.0,
    "log": LOG,
    "fingerprint": {"model": "m"},
    "finished": False,
}


def test_training_state_round_trip(tmp_path):
    model, optimizer = _trained()
    generator = torch.Generator().manual_seed(7)
    torch.rand(3, generator=generator)  # a state other than the seed's
    best = {k: v.clone() for k, v in MADE(6, [10], num_masks=3).state_dict().items()}
    torch.manual_seed(123)
    global_state = torch.get_rng_state()
    save_training_state(tmp_path, model, optimizer, generator, PROGRESS, best)
    assert has_training_state(tmp_path)
    torch.manual_seed(0)
    fresh = MADE(6, [10], num_masks=3)
    fresh_opt = make_optimizer(fresh, TrainConfig())
    fresh_gen = torch.Generator()
    progress, best_loaded = load_training_state(tmp_path, fresh, fresh_opt, fresh_gen, PROGRESS["fingerprint"])
    assert progress == PROGRESS
    assert torch.equal(torch.get_rng_state(), global_state)
    assert torch.equal(fresh_gen.get_state(), generator.get_state())
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, fresh.state_dict()[key]) and torch.equal(best[key], best_loaded[key])
    for a, b in zip(optimizer.state_dict()["state"].values(), fresh_opt.state_dict()["state"].values()):
        assert all(torch.equal(a[name], b[name]) for name in a)
    clear_training_state(tmp_path)
    assert not has_training_state(tmp_path) and list(tmp_path.iterdir()) == []


def _saved_state(tmp_path):
    model, optimizer = _trained()
    save_training_state(tmp_path, model, optimizer, torch.Generator(), PROGRESS, model.state_dict())
    return json.loads((tmp_path / "state.json").read_text())


def _load_into_fresh(tmp_path, fingerprint=None):
    model = MADE(6, [10], num_masks=3)
    return load_training_state(tmp_path, model, make_optimizer(model, TrainConfig()), torch.Generator(), fingerprint)


def test_training_state_refuses_tampering(tmp_path):
    record = _saved_state(tmp_path)
    state_file = tmp_path / record["files"]["state"]
    tensors = load_file(state_file)

    with pytest.raises(CheckpointError, match="another model"):
        _load_into_fresh(tmp_path, {"model": "other"})
    (tmp_path / "state.json").write_text(json.dumps({**record, "format_version": 9}))
    with pytest.raises(CheckpointError, match="format_version"):
        _load_into_fresh(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({**record, "progress": {**record["progress"], "step": "12"}}))
    with pytest.raises(CheckpointError, match="progress.step must be an integer"):
        _load_into_fresh(tmp_path)
    evil = {**record, "files": {**record["files"], "state": "../../etc/passwd"}}
    evil["sha256"] = {evil["files"]["state"]: "0", record["files"]["best"]: record["sha256"][record["files"]["best"]]}
    (tmp_path / "state.json").write_text(json.dumps(evil))
    with pytest.raises(CheckpointError, match="not a checkpoint file name"):
        _load_into_fresh(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps(record))

    save_file({**tensors, "optimizer.0.exp_avg": torch.zeros(3)}, state_file)
    with pytest.raises(CheckpointError, match="not the file state.json was written with"):
        _load_into_fresh(tmp_path)  # the hash catches any change ...
    digest = __import__("hashlib").sha256(state_file.read_bytes()).hexdigest()
    (tmp_path / "state.json").write_text(
        json.dumps({**record, "sha256": {**record["sha256"], record["files"]["state"]: digest}})
    )
    with pytest.raises(CheckpointError, match="optimizer.0.exp_avg has shape"):
        _load_into_fresh(tmp_path)  # ... and with a matching hash, the shape check
    save_file({k: v for k, v in tensors.items() if k != "rng.order"}, state_file)
    digest = __import__("hashlib").sha256(state_file.read_bytes()).hexdigest()
    (tmp_path / "state.json").write_text(
        json.dumps({**record, "sha256": {**record["sha256"], record["files"]["state"]: digest}})
    )
    with pytest.raises(CheckpointError, match="RNG states"):
        _load_into_fresh(tmp_path)
    state_file.write_bytes(b"\x80\x04pickle")
    with pytest.raises(CheckpointError, match="not the file"):
        _load_into_fresh(tmp_path)


def test_leftovers_of_an_unfinished_save_are_ignored_and_removed(tmp_path):
    record = _saved_state(tmp_path)
    (tmp_path / "state-000009.safetensors").write_bytes(b"from a save that never committed")
    (tmp_path / ".state.json.abc_1234.tmp.json").write_text("{half")  # as mkstemp names it
    progress, _ = _load_into_fresh(tmp_path)
    assert progress["epoch"] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*record["files"].values(), "state.json"])


@pytest.mark.parametrize("num_masks", [4, "unlimited"])
def test_reloaded_model_evaluates_and_trains_on_the_same_masks(tmp_path, num_masks):
    model = MADE(6, [10], num_masks=num_masks, direct=True, seed=9)
    model.mask_for_step(6)
    save_model(tmp_path, model)
    config = json.loads((tmp_path / "config.json").read_text())
    if num_masks == 4:
        assert config["masks"] == {"pool_seeds": model.mask_seeds, "current_seed": model.mask_seeds[2], "position": 2}
    else:
        assert config["masks"]["pool_seeds"] is None and config["masks"]["position"] is None
    loaded, _ = load_model(tmp_path)
    x = all_binary(6, torch.float32)
    assert torch.equal(loaded.log_prob(x, ensemble=4), model.log_prob(x, ensemble=4))
    for step in (0, 5, 13):
        model.mask_for_step(step)
        loaded.mask_for_step(step)
        assert int(loaded.mask_seed) == int(model.mask_seed)
        assert torch.equal(loaded.log_prob(x), model.log_prob(x))


def test_stored_pool_seeds_are_the_ones_used(tmp_path):
    model = MADE(5, [8], num_masks=3, seed=2)
    model.mask_seeds = [7, 8, 9]  # other seeds than the model's seed derives: the files carry them
    save_model(tmp_path, model)
    loaded, _ = load_model(tmp_path)
    assert loaded.mask_seeds == [7, 8, 9]
    config = json.loads((tmp_path / "config.json").read_text())
    for bad in ([1, 2], [1, 2, "x"], [1, 2, -3], "seeds"):
        config["masks"]["pool_seeds"] = bad
        (tmp_path / "config.json").write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match="pool_seeds"):
            load_model(tmp_path)


def test_a_config_whose_pool_seeds_were_edited_is_refused(tmp_path):
    """Issue 25, item 6: config.json's pool_seeds edited (reordered, or one changed) while the weights file
    holds the pool it was trained with: the model would evaluate other masks, so loading is refused."""
    model = MADE(5, [8], num_masks=3, seed=2)
    save_model(tmp_path, model)
    config = json.loads((tmp_path / "config.json").read_text())
    seeds = config["masks"]["pool_seeds"]
    for edited in ([seeds[i] for i in (0, 2, 1)], [seeds[0], seeds[1], seeds[2] + 1]):
        config["masks"]["pool_seeds"] = edited
        (tmp_path / "config.json").write_text(json.dumps(config))
        with pytest.raises(CheckpointError, match=r"^[^\n]*config.json: 'masks.pool_seeds' differs from the mask pool"):
            load_model(tmp_path)


@pytest.mark.parametrize("ordering", ["natural", "random"])
def test_models_saved_before_degrees_were_sorted_still_load_with_their_masks(tmp_path, ordering):
    """made 0.1 drew fixed degrees unsorted and wrote no 'sorted_degrees': such a folder loads as it was."""
    model = MADE(12, [30, 20], direct=True, ordering=ordering, sorted_degrees=False).double()
    save_model(tmp_path, model)
    config = json.loads((tmp_path / "config.json").read_text())
    del config["model"]["sorted_degrees"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded, _ = load_model(tmp_path)
    assert not loaded.sorted_degrees
    for a, b in zip(model.masked_layers(), loaded.masked_layers()):
        assert torch.equal(a.mask, b.mask)
    x = all_binary(12)
    torch.testing.assert_close(loaded.double().log_prob(x), model.log_prob(x), rtol=0, atol=0)
    assert not torch.equal(MADE(12, [30, 20], ordering=ordering).hidden[0].mask, model.hidden[0].mask)


def test_a_made_0_2_run_folder_loads_with_its_pool(tmp_path):
    """made 0.2 wrote no pool tensor and no 'blocks'/'dropout' settings: the pool comes from config.json."""
    model = MADE(6, [12], num_masks=3, seed=4).double()
    model.mask_seeds = [7, 8, 9]
    save_model(tmp_path, model)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["mask_pool"]
    save_file(tensors, tmp_path / "model.safetensors")
    config = json.loads((tmp_path / "config.json").read_text())
    del config["model"]["blocks"], config["model"]["dropout"]
    (tmp_path / "config.json").write_text(json.dumps(config))
    loaded, _ = load_model(tmp_path)
    assert loaded.mask_seeds == [7, 8, 9]
    x = all_binary(6)
    torch.testing.assert_close(loaded.double().log_prob(x, ensemble=3), model.log_prob(x, ensemble=3))


@pytest.mark.parametrize(
    "edit, field",
    [
        ({"epoch": -5}, "progress.epoch"),
        ({"epoch": 10**6}, "does not match its log"),
        ({"seconds": -1e9}, "progress.seconds"),
        ({"best_epoch": 7}, "does not match its log"),
        ({"best_valid_nll": None, "step": 0}, "progress.step"),
        (
            {"log": [*LOG[:2], {**LOG[2], "note": "x"}]},
            r"progress.log\[2\]: missing keys \[\], unknown keys \['note'\]",
        ),
        ({"log": [LOG[0], LOG[2], LOG[1]]}, r"progress.log\[1\].epoch must be 2"),
        ({"log": [*LOG[:2], {**LOG[2], "train_nll": "low"}]}, r"progress.log\[2\].train_nll must be a number"),
    ],
)
def test_progress_outside_its_range_is_refused(tmp_path, edit, field):
    record = _saved_state(tmp_path)
    (tmp_path / "state.json").write_text(json.dumps({**record, "progress": {**record["progress"], **edit}}))
    with pytest.raises(CheckpointError, match=field):
        _load_into_fresh(tmp_path)


def test_only_files_the_checkpoint_names_exactly_are_deleted(tmp_path):
    others = [".notes.tmp", ".notes2.tmpfile", ".x.tmp.bak", ".state.json.tmp", "state-1.safetensors", "notes.txt"]
    for name in others:
        (tmp_path / name).write_text("the user's")
    record = _saved_state(tmp_path)
    _load_into_fresh(tmp_path)
    clear_training_state(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)
    assert record["files"]["state"] not in others


def test_a_checkpoint_folder_with_a_link_is_refused_and_nothing_is_deleted(tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "state-000001.safetensors").write_text("the user's")
    checkpoint = tmp_path / "checkpoint"
    _saved_state(checkpoint)
    (checkpoint / "state-000002.safetensors").symlink_to(victim / "state-000001.safetensors")
    for act in (lambda: _load_into_fresh(checkpoint), lambda: clear_training_state(checkpoint)):
        with pytest.raises(CheckpointError, match="state-000002.safetensors: a symbolic link inside a run folder"):
            act()
    assert (victim / "state-000001.safetensors").read_text() == "the user's"


def test_a_run_folder_with_linked_weights_is_refused(tmp_path):
    save_model(tmp_path / "run", MADE(5, [8]))
    (tmp_path / "run" / "model.safetensors").rename(tmp_path / "elsewhere.safetensors")
    (tmp_path / "run" / "model.safetensors").symlink_to(tmp_path / "elsewhere.safetensors")
    with pytest.raises(CheckpointError, match="model.safetensors: a symbolic link"):
        load_model(tmp_path / "run")


def test_a_fifo_in_place_of_the_weights_is_not_a_regular_file(tmp_path):
    save_model(tmp_path, MADE(5, [8]))
    (tmp_path / "model.safetensors").unlink()
    os.mkfifo(tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model.safetensors: not a regular file"):
        load_model(tmp_path)


def test_a_failed_atomic_write_names_the_file_not_its_temporary(tmp_path):
    (tmp_path / "log.jsonl").mkdir()
    with pytest.raises(OSError) as raised:
        atomic_write(tmp_path / "log.jsonl", lambda tmp: open(tmp, "w").close())
    assert raised.value.filename == str(tmp_path / "log.jsonl")
    assert [p.name for p in tmp_path.iterdir()] == ["log.jsonl"]  # no temporary file left


def test_importing_and_writing_never_change_the_umask(tmp_path):
    """The file-creation mask is read, not set and restored (a race for threaded callers)."""
    import subprocess
    import sys

    code = (
        "import os; real = os.umask\n"
        "def refuse(mask): raise AssertionError('umask changed')\n"
        "os.umask = refuse\n"
        "import made, made.cli, made.io.atomic, made.training.loop\n"
        f"made.io.atomic.write_json({str(tmp_path / 'x.json')!r}, {{'a': 1}})\n"
        f"assert oct(os.stat({str(tmp_path / 'x.json')!r}).st_mode & 0o777) == oct(0o666 & ~0o022)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin"},
        preexec_fn=lambda: __import__("os").umask(0o022),
    )
    assert result.returncode == 0, result.stderr
